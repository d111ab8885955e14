/* chorus web chat widget. Embed with one tag:
 *
 *   <script src="https://chat.example.com/widget.js" defer></script>
 *
 * Options are data attributes on that tag: data-title (header text),
 * data-container (id of an element to render into instead of a floating
 * panel), data-open ("true": start opened). It talks to the chorusd that
 * served it over the chat WebSocket (/v1/chat/ws; protocol in
 * docs/channels.md), keeps the conversation id in localStorage so a reload
 * resumes it, acknowledges what it has shown, reconnects with backoff and
 * resumes from the last sequence number it rendered, so nothing is lost or
 * shown twice. A window whose socket another one replaced (the daemon keeps
 * chat.max_followers per conversation) waits for its visitor to come back
 * to it before following again, so open tabs never take turns closing each
 * other. No framework, no innerHTML: every bit of text from the
 * server goes into the page as text nodes. */
(function () {
    "use strict";

    var script = document.currentScript;
    if (!script || window.__chorusChat) {
        return;
    }
    window.__chorusChat = true;

    var base = new URL(script.src, document.baseURI);
    var wsBase = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/v1/chat/ws";
    var storeKey = "chorus.chat." + base.host;
    var opts = {
        title: script.getAttribute("data-title") || "Chat with us",
        container: script.getAttribute("data-container"),
        open: script.getAttribute("data-open") === "true"
    };

    var state = {
        conversation: null, /* id, also in localStorage */
        lastSeq: 0,         /* highest seq rendered */
        ackedSeq: 0,        /* highest seq acknowledged to the server */
        ws: null,
        ready: false,
        retries: 0,
        outbox: [],         /* {id, text, accepted, waiting} sent or queued, not yet echoed */
        replaced: false,    /* another window took the conversation over */
        ended: false,
        status: "active"
    };

    try {
        state.conversation = window.localStorage.getItem(storeKey);
    } catch (e) {
        state.conversation = null; /* storage blocked: no resume across reloads */
    }

    /* ---- DOM ------------------------------------------------------------- */

    function el(tag, cls, attrs) {
        var n = document.createElement(tag);
        if (cls) {
            n.className = cls;
        }
        if (attrs) {
            Object.keys(attrs).forEach(function (k) {
                n.setAttribute(k, attrs[k]);
            });
        }
        return n;
    }

    if (!document.querySelector("link[data-chorus-chat]")) {
        var css = el("link", null, { rel: "stylesheet", href: new URL("/widget.css", base).href,
                                     "data-chorus-chat": "" });
        document.head.appendChild(css);
    }

    var inline = !!opts.container;
    var root = el("section", "chorus-chat" + (inline ? " chorus-chat--inline" : ""),
                  { "aria-label": opts.title });
    var launcher = null;
    var panelId = "chorus-chat-panel";
    var panel = el("div", "chorus-chat__panel", { id: panelId });
    var header = el("header", "chorus-chat__header");
    var title = el("h2", "chorus-chat__title");
    title.textContent = opts.title;
    header.appendChild(title);
    var conn = el("span", "chorus-chat__conn", { role: "status" });
    header.appendChild(conn);
    var closeBtn = null;
    if (!inline) {
        closeBtn = el("button", "chorus-chat__close", { type: "button", "aria-label": "Close chat" });
        closeBtn.textContent = "\u00d7";
        header.appendChild(closeBtn);
    }
    var log = el("div", "chorus-chat__log", { role: "log", "aria-live": "polite",
                                              "aria-relevant": "additions", tabindex: "0",
                                              "aria-label": "Conversation" });
    var typing = el("div", "chorus-chat__typing", { "aria-live": "polite" });
    var choices = el("div", "chorus-chat__choices", { role: "group", "aria-label": "Suggested replies" });
    var form = el("form", "chorus-chat__form");
    var inputId = "chorus-chat-input";
    var label = el("label", "chorus-chat__sr", { "for": inputId });
    label.textContent = "Type your message";
    var input = el("input", "chorus-chat__input", { id: inputId, type: "text", autocomplete: "off",
                                                   placeholder: "Type a message\u2026",
                                                   maxlength: "4000", enterkeyhint: "send" });
    var send = el("button", "chorus-chat__send", { type: "submit" });
    send.textContent = "Send";
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(send);
    panel.appendChild(header);
    panel.appendChild(log);
    panel.appendChild(typing);
    panel.appendChild(choices);
    panel.appendChild(form);

    if (!inline) {
        launcher = el("button", "chorus-chat__launcher", { type: "button", "aria-expanded": "false",
                                                           "aria-controls": panelId });
        launcher.textContent = opts.title;
        root.appendChild(launcher);
        panel.hidden = true;
    }
    root.appendChild(panel);

    function mount() {
        var host = inline ? document.getElementById(opts.container) : document.body;
        (host || document.body).appendChild(root);
        if (opts.open || inline) {
            setOpen(true, false);
        }
    }

    function setOpen(open, focus) {
        if (launcher) {
            panel.hidden = !open;
            launcher.setAttribute("aria-expanded", open ? "true" : "false");
        }
        if (open) {
            connect();
            if (focus) {
                /* an ended conversation's input is disabled: its way on is
                 * the button that starts a new one */
                (state.ended && choices.firstChild ? choices.firstChild : input).focus();
            }
        } else if (launcher && focus) {
            launcher.focus();
        }
    }

    if (launcher) {
        launcher.addEventListener("click", function () {
            setOpen(panel.hidden, true);
        });
        closeBtn.addEventListener("click", function () {
            setOpen(false, true);
        });
        panel.addEventListener("keydown", function (ev) {
            if (ev.key === "Escape") {
                setOpen(false, true);
            }
        });
    }

    /* ---- rendering -------------------------------------------------------- */

    /* Appends text to parent with [title](https://...) and bare http(s) URLs
     * as links; everything else stays text. */
    function appendRich(parent, text) {
        var re = /\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s<]+[^\s<.,;:!?)])/g;
        var at = 0;
        var m;
        while ((m = re.exec(text)) !== null) {
            if (m.index > at) {
                parent.appendChild(document.createTextNode(text.slice(at, m.index)));
            }
            var a = el("a", null, { href: m[2] || m[3], target: "_blank", rel: "noopener noreferrer" });
            a.textContent = m[1] || m[3];
            parent.appendChild(a);
            at = re.lastIndex;
        }
        if (at < text.length) {
            parent.appendChild(document.createTextNode(text.slice(at)));
        }
    }

    function scrollDown() {
        log.scrollTop = log.scrollHeight;
    }

    /* Entries go above the messages still being sent: those are the
     * newest, and their echoes come after whatever the server has before
     * them. */
    function addToLog(n) {
        log.insertBefore(n, log.querySelector("[data-pending]"));
    }

    function addBubble(from, text, seq) {
        var b = el("div", "chorus-chat__msg chorus-chat__msg--" + from);
        if (seq) {
            b.setAttribute("data-seq", String(seq));
        }
        var who = el("span", "chorus-chat__sr");
        who.textContent = from === "user" ? "You said: " : from === "bot" ? "Assistant: " :
            from === "agent" ? "Agent: " : "";
        b.appendChild(who);
        appendRich(b, text);
        if (seq) {
            addToLog(b);
        } else {
            log.appendChild(b);
        }
        scrollDown();
        return b;
    }

    function clearChoices() {
        while (choices.firstChild) {
            choices.removeChild(choices.firstChild);
        }
    }

    function showChoices(list) {
        clearChoices();
        (list || []).forEach(function (c) {
            var b;
            if (c.url) {
                b = el("a", "chorus-chat__choice chorus-chat__choice--link",
                       { href: c.url, target: "_blank", rel: "noopener noreferrer" });
            } else {
                b = el("button", "chorus-chat__choice", { type: "button" });
                b.addEventListener("click", function () {
                    sendText(c.value || c.title, true);
                });
            }
            b.textContent = c.title;
            choices.appendChild(b);
        });
    }

    function note(text) {
        var n = el("div", "chorus-chat__note");
        n.textContent = text;
        addToLog(n);
        scrollDown();
    }

    function setTyping(on) {
        typing.textContent = on ? "Assistant is typing\u2026" : "";
        typing.classList.toggle("chorus-chat__typing--on", !!on);
    }

    function setConn(text) {
        conn.textContent = text;
    }

    function setEnded(ended) {
        /* Disabling the focused input (or removing a focused button) would
         * drop focus to the page's body, out of the panel, where Escape no
         * longer closes it and Tab starts over from the page's top: the
         * button that starts a new conversation takes focus instead. */
        var active = document.activeElement;
        var hadFocus = !!active && (active === input || active === send || choices.contains(active));
        state.ended = ended;
        input.disabled = ended;
        send.disabled = ended;
        if (ended) {
            clearChoices();
            var again = el("button", "chorus-chat__choice", { type: "button" });
            again.textContent = "Start a new conversation";
            again.addEventListener("click", restart);
            choices.appendChild(again);
            if (hadFocus) {
                again.focus();
            }
        }
    }

    /* ---- protocol --------------------------------------------------------- */

    function frame(obj) {
        if (state.ws && state.ready && state.ws.readyState === WebSocket.OPEN) {
            state.ws.send(JSON.stringify(obj));
            return true;
        }
        return false;
    }

    var ackTimer = null;
    function scheduleAck() {
        if (ackTimer) {
            return;
        }
        ackTimer = setTimeout(function () {
            ackTimer = null;
            if (state.lastSeq > state.ackedSeq && frame({ type: "ack", seq: state.lastSeq })) {
                state.ackedSeq = state.lastSeq;
            }
        }, 200);
    }

    function newId() {
        var a = new Uint8Array(9);
        window.crypto.getRandomValues(a);
        return Array.prototype.map.call(a, function (x) {
            return ("0" + x.toString(16)).slice(-2);
        }).join("");
    }

    function sendText(text, fromChoice) {
        text = text.trim();
        if (!text || state.ended) {
            return;
        }
        var m = { id: newId(), text: text, accepted: false, waiting: false, tries: 0, timer: null };
        state.outbox.push(m);
        /* shown at once, marked as sending: the server echoes it (with its
         * seq, in the transcript's order) once its turn is recorded */
        var b = addBubble("user", text, 0);
        b.className += " chorus-chat__msg--pending";
        b.setAttribute("data-pending", m.id);
        b.firstChild.textContent = "Sending: ";
        clearChoices();
        comeBack(); /* sent once ready, with the rest of the outbox */
        frame({ type: "message", id: m.id, text: m.text });
        if (!fromChoice) {
            input.value = "";
        }
    }

    function outboxed(id) {
        for (var i = 0; i < state.outbox.length; i++) {
            if (state.outbox[i].id === id) {
                return state.outbox[i];
            }
        }
        return null;
    }

    /* A message leaves the outbox only once the transcript has it: its echo,
     * or an ack naming the seq it got. An ack with seq 0 only says that its
     * turn is running; that turn can still fail, or die with the daemon, so
     * the message stays, marked accepted, and goes again on a turn_failed
     * and on the next connection. */
    function settle(id) {
        state.outbox = state.outbox.filter(function (m) {
            if (m.id === id && m.timer) {
                window.clearTimeout(m.timer);
            }
            return m.id !== id;
        });
        dropPending(id);
    }

    /* A message the server refused (busy: too many turns queued for the
     * conversation; at_capacity, unavailable) or whose turn failed (the
     * server could not record it) goes again after the server's Retry-After,
     * if it is still unsent: 1 s when busy, 5 s otherwise, doubling for each
     * refusal in a row, up to 30 s. */
    function retryDelay(code) {
        return code === "busy" ? 1000 :
            code === "turn_failed" || code === "at_capacity" || code === "unavailable" ? 5000 : 0;
    }

    function resendLater(m, delay) {
        m.accepted = false;
        m.waiting = true;
        m.tries++;
        if (m.timer) {
            window.clearTimeout(m.timer);
        }
        m.timer = window.setTimeout(function () {
            m.timer = null;
            if (state.outbox.indexOf(m) >= 0 && !m.accepted) {
                frame({ type: "message", id: m.id, text: m.text });
            }
        }, Math.min(30000, delay * Math.pow(2, Math.min(m.tries - 1, 5))));
    }

    /* The status line says so while a message waits to go again, whatever
     * else the server echoes meanwhile. */
    function showOutbox() {
        setConn(state.outbox.some(function (m) { return m.waiting; }) ?
                "Not sent yet \u2014 trying again" : "");
    }

    /* The bubble shown while a message was on its way: its echo (or an ack
     * saying it already has one) takes over. */
    function dropPending(id) {
        var nodes = log.querySelectorAll("[data-pending]");
        for (var i = 0; i < nodes.length; i++) {
            if (nodes[i].getAttribute("data-pending") === id) {
                log.removeChild(nodes[i]);
            }
        }
    }

    function onEntry(f) {
        if (!f.seq || f.seq <= state.lastSeq) {
            return; /* already shown: a resume overlapped what we had */
        }
        state.lastSeq = f.seq;
        if (f.type === "message") {
            if (f.from === "user") {
                if (f.id) {
                    settle(f.id);
                    showOutbox();
                }
                clearChoices();
            }
            /* a person from the agent console, or the desk's own notices */
            var from = f.from === "user" || f.from === "agent" || f.from === "system" ? f.from : "bot";
            addBubble(from, f.text || "", f.seq);
            if (f.from === "bot") {
                showChoices(f.choices);
            }
        } else if (f.type === "handoff") {
            state.status = "handoff";
            clearChoices();
            note("You are being connected to a person" + (f.queue ? " (" + f.queue + ")" : "") +
                 ". Please stay in this window.");
        } else if (f.type === "end") {
            state.status = "ended";
            note("This conversation has ended.");
            setEnded(true);
        }
        scheduleAck();
    }

    function onFrame(f) {
        var m;
        switch (f.type) {
        case "ready":
            if (state.conversation === f.conversation && typeof f.last_seq === "number" &&
                f.last_seq < state.lastSeq) {
                /* The server's log ends before what is shown here: it lost
                 * entries (a restart rebuilt the conversation with fewer),
                 * and would number its next ones with seqs shown here,
                 * which would be dropped as seen. What is shown is not its
                 * transcript any more: show its log again from the start. */
                redraw();
                break;
            }
            state.ready = true;
            state.retries = 0;
            if (state.conversation !== f.conversation) {
                state.conversation = f.conversation;
                state.lastSeq = 0;
                try {
                    window.localStorage.setItem(storeKey, f.conversation);
                } catch (e) { /* no resume across reloads */ }
            }
            showOutbox();
            setEnded(f.status === "ended");
            /* resend what was typed but never echoed, also what an earlier
             * connection's server had accepted (it may have died with its
             * turn) or refused (now, not when its timer says): ids make it
             * safe */
            state.outbox.forEach(function (o) {
                if (o.timer) {
                    window.clearTimeout(o.timer);
                    o.timer = null;
                }
                o.accepted = false;
                frame({ type: "message", id: o.id, text: o.text });
            });
            break;
        case "typing":
            setTyping(f.on);
            break;
        case "message":
        case "handoff":
        case "end":
            setTyping(false);
            onEntry(f);
            break;
        case "ack":
            if (f.seq) { /* already in the transcript */
                settle(f.id);
                showOutbox();
            } else if ((m = outboxed(f.id)) !== null) { /* seq 0: its turn runs, its echo to come */
                m.accepted = true;
                m.waiting = false;
                m.tries = 0;
                showOutbox();
            }
            break;
        case "error":
            if (f.code === "conversation_not_found") {
                forget();
            } else if (f.code === "replaced") {
                state.replaced = true;
                setConn("This conversation continued in another window \u2014 type here to" +
                        " continue here");
            } else if (retryDelay(f.code) && f.id) {
                /* refused, or its turn failed: never echoed, so still ours to
                 * send (if it is ours: every window on the conversation hears
                 * a turn_failed), again in a while */
                if ((m = outboxed(f.id)) !== null) {
                    resendLater(m, retryDelay(f.code));
                    showOutbox();
                }
            } else if (f.code !== "history_truncated") {
                setConn("Problem: " + (f.message || f.code));
            }
            break;
        default:
            break;
        }
    }

    function forget() {
        state.conversation = null;
        state.lastSeq = 0;
        state.ackedSeq = 0;
        try {
            window.localStorage.removeItem(storeKey);
        } catch (e) { /* nothing stored */ }
    }

    function restart() {
        forget();
        while (log.firstChild) {
            log.removeChild(log.firstChild);
        }
        setEnded(false);
        clearChoices();
        if (state.ws) {
            state.ws.onclose = null;
            state.ws.close(1000, "new conversation");
            state.ws = null;
        }
        connect();
        input.focus();
    }

    /* Shows the conversation again from the first entry the server holds,
     * on a new socket; the messages still being sent stay, below it. */
    function redraw() {
        Array.prototype.slice.call(log.childNodes).forEach(function (n) {
            if (!n.hasAttribute || !n.hasAttribute("data-pending")) {
                log.removeChild(n);
            }
        });
        clearChoices();
        state.lastSeq = 0;
        state.ackedSeq = 0;
        var ws = state.ws;
        state.ws = null;
        state.ready = false;
        if (ws) {
            ws.onclose = null;
            ws.close(1000, "replay from the start");
        }
        connect();
    }

    /* Follows the conversation again in a window another one replaced. */
    function comeBack() {
        if (state.replaced) {
            state.replaced = false;
            state.retries = 0;
            connect();
        }
    }

    function connect() {
        if (state.ws) {
            return;
        }
        var url = wsBase;
        if (state.conversation) {
            url += "?conversation=" + encodeURIComponent(state.conversation) +
                   "&last_seq=" + state.lastSeq;
        }
        var ws = new WebSocket(url);
        state.ws = ws;
        state.ready = false;
        if (state.retries > 0) {
            setConn("Reconnecting\u2026");
        }
        ws.onmessage = function (ev) {
            var f;
            if (state.ws !== ws) {
                return; /* a socket given up for a new one */
            }
            try {
                f = JSON.parse(ev.data);
            } catch (e) {
                return;
            }
            onFrame(f);
        };
        ws.onclose = function () {
            state.ws = null;
            state.ready = false;
            setTyping(false);
            if (state.replaced) {
                return; /* until the visitor comes back to this window */
            }
            state.retries++;
            setConn("Offline \u2014 reconnecting\u2026");
            var delay = Math.min(10000, 300 * Math.pow(2, Math.min(state.retries, 6)));
            setTimeout(connect, delay / 2 + Math.random() * delay / 2);
        };
    }

    input.addEventListener("focus", comeBack);
    form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        sendText(input.value, false);
    });

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", mount);
    } else {
        mount();
    }
})();
