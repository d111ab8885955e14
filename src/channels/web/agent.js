/* The agent console: lists the queues, claims a conversation, shows the
 * bot's summary and slots above what was said since the handoff, sends
 * replies on the customer's channel, releases the conversation to the bot at
 * a flow/node or closes it with a disposition. It talks only to the agent
 * API (/v1/agent/...) with the token the agent types (kept for this tab
 * only) and follows the event feed (/v1/agent/ws) to refresh. No framework,
 * no innerHTML: every bit of text goes in through textContent. */
(function () {
    "use strict";
    var state = { token: "", current: null, ws: null };
    function $(id) { return document.getElementById(id); }
    function el(tag, cls, text) {
        var e = document.createElement(tag);
        if (cls) { e.className = cls; }
        if (text !== undefined) { e.textContent = text; }
        return e;
    }
    function api(method, path, body) {
        var opts = { method: method, headers: { Authorization: "Bearer " + state.token } };
        if (body) {
            opts.headers["Content-Type"] = "application/json";
            opts.body = JSON.stringify(body);
        }
        return fetch(path, opts).then(function (r) {
            return r.json().then(function (j) {
                if (!r.ok) { throw new Error((j.error && j.error.message) || r.status); }
                return j;
            });
        });
    }
    function showError(e) { $("error").textContent = e ? String(e.message || e) : ""; }

    function renderQueues(data) {
        var box = $("queues");
        box.textContent = "";
        data.queues.forEach(function (q) {
            var sec = el("div", "ac-queue");
            sec.appendChild(el("h3", "", q.name + " — " + q.waiting + " waiting, " + q.claimed +
                " claimed" + (q.open ? "" : " (closed)")));
            q.conversations.forEach(function (h) {
                var row = el("div", "ac-item");
                row.setAttribute("data-handoff", h.id);
                var what = (h.state === "waiting" ? "#" + h.position + " " : "") + h.channel + " · " +
                    h.reason + " · " + h.waited_s + "s" + (h.agent ? " · " + h.agent : "");
                row.appendChild(el("span", "", what));
                var b = el("button", "", h.state === "waiting" ? "Claim" : "Open");
                b.addEventListener("click", function () {
                    (h.state === "waiting" ? api("POST", "/v1/agent/conversations/" + h.id + "/claim")
                        : api("GET", "/v1/agent/conversations/" + h.id))
                        .then(function (c) { showError(); open(c); refresh(); }).catch(showError);
                });
                row.appendChild(b);
                sec.appendChild(row);
            });
            var listed = q.conversations.filter(function (h) { return h.state === "waiting"; }).length;
            if (q.waiting > listed) {
                sec.appendChild(el("p", "ac-muted", "… and " + (q.waiting - listed) + " more waiting."));
            }
            if (!q.conversations.length) { sec.appendChild(el("p", "ac-muted", "Nobody waiting.")); }
            box.appendChild(sec);
        });
    }

    function open(c) {
        state.current = c.id;
        $("empty").hidden = true;
        $("conv").hidden = false;
        var s = c.summary || {};
        $("s-queue").textContent = c.queue;
        $("s-channel").textContent = c.channel;
        $("s-reason").textContent = c.reason;
        $("s-state").textContent = c.state + (c.agent ? " (" + c.agent + ")" : "");
        $("s-flow").textContent = s.flow || "—";
        $("s-last").textContent = (s.last_user || []).join(" / ") || "—";
        var dl = $("s-slots");
        dl.textContent = "";
        Object.keys(s.slots || {}).forEach(function (k) {
            dl.appendChild(el("dt", "", k));
            dl.appendChild(el("dd", "", s.slots[k]));
        });
        var ol = $("messages");
        ol.textContent = "";
        (c.messages || []).forEach(function (m) {
            var who = m.from === "agent" ? (m.agent || "agent") : m.from;
            ol.appendChild(el("li", "ac-msg ac-msg--" + m.from, who + ": " + m.text));
        });
        ol.scrollTop = ol.scrollHeight;
        if (!$("rel-flow").value && s.flow) { $("rel-flow").value = s.flow; }
    }

    function refresh() {
        api("GET", "/v1/agent/queues").then(renderQueues).catch(showError);
        if (state.current) {
            api("GET", "/v1/agent/conversations/" + state.current).then(open).catch(showError);
        }
    }

    /* Events come in bursts (a queue filling up); one listing answers them. */
    var refreshTimer = null;
    function refreshSoon() {
        if (refreshTimer) { return; }
        refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, 250);
    }

    function follow() {
        var proto = location.protocol === "https:" ? "wss:" : "ws:";
        var ws = new WebSocket(proto + "//" + location.host + "/v1/agent/ws?access_token=" +
            encodeURIComponent(state.token));
        state.ws = ws;
        ws.onopen = function () { $("conn").textContent = "Connected"; };
        ws.onmessage = refreshSoon;
        ws.onclose = function () {
            $("conn").textContent = "Offline; retrying";
            setTimeout(function () { if (state.ws === ws) { follow(); } }, 2000);
        };
    }

    $("login").addEventListener("submit", function (ev) {
        ev.preventDefault();
        state.token = $("token").value.trim();
        try { sessionStorage.setItem("chorus-agent-token", state.token); } catch (e) { /* none */ }
        refresh();
        follow();
    });
    $("reply").addEventListener("submit", function (ev) {
        ev.preventDefault();
        var text = $("reply-text").value.trim();
        if (!text || !state.current) { return; }
        api("POST", "/v1/agent/conversations/" + state.current + "/messages", { text: text })
            .then(function (c) { $("reply-text").value = ""; showError(); open(c); }).catch(showError);
    });
    $("release").addEventListener("submit", function (ev) {
        ev.preventDefault();
        api("POST", "/v1/agent/conversations/" + state.current + "/release",
            { flow: $("rel-flow").value.trim(), node: $("rel-node").value.trim() })
            .then(function (c) { showError(); open(c); refresh(); }).catch(showError);
    });
    $("close").addEventListener("submit", function (ev) {
        ev.preventDefault();
        api("POST", "/v1/agent/conversations/" + state.current + "/close",
            { disposition: $("disp").value.trim() })
            .then(function (c) { showError(); open(c); refresh(); }).catch(showError);
    });
    try {
        var saved = sessionStorage.getItem("chorus-agent-token");
        if (saved) { $("token").value = saved; }
    } catch (e) { /* none */ }
}());
