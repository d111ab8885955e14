#!/bin/sh
# scripts/systemd-boot-check.sh ROOT DEB: the package as an operator meets it
# on a fresh Debian 12 with systemd running. ROOT is a Debian 12 tree made
# with `debootstrap --variant=minbase bookworm ROOT` (it is changed: use a
# copy); DEB is the package `make package` built. The script installs DEB
# with apt (its Depends come from the archive), boots systemd as PID 1 of
# new PID and mount namespaces chrooted into ROOT, and checks, failing on the
# first step that does not hold:
#   systemd-analyze verify on the unit; systemctl enable --now chorusd; the
#   service active, run as the chorus user, ready on /readyz; systemctl
#   reload applied (SIGHUP, RELOADING=1 then READY=1); systemctl restart;
#   systemctl stop with a clean exit; after a second boot, chorusd started by
#   systemd on its own and ready.
# Needs root (mount, unshare, chroot) and the network for apt. Not part of
# `make test`: CI machines cannot build a Debian tree; run it by hand before
# a release (docs/operations.md).
set -eu
root=$(cd "${1:?usage: systemd-boot-check.sh ROOT DEB}" && pwd)
deb=${2:?usage: systemd-boot-check.sh ROOT DEB}
[ -f "$root/etc/debian_version" ] || { echo "$root is not a Debian tree" >&2; exit 2; }
[ -f "$deb" ] || { echo "$deb: no such package" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "systemd-boot-check.sh: run as root" >&2; exit 2; }

init_pid=""
cleanup() {
    [ -n "$init_pid" ] && kill -9 "$init_pid" 2> /dev/null || true
    sleep 1
    umount -l "$root/dev" "$root/proc" 2> /dev/null || true
    umount -l "$root" 2> /dev/null || true
}
trap cleanup EXIT
step() { printf '%-58s' "$1"; }
ok() { echo "ok${1:+ ($1)}"; }
fail() { echo "FAILED"; echo "$1" >&2; exit 1; }

# systemd sandboxes services with mount namespaces, which need the root to
# be a mount point: bind ROOT onto itself.
mount --bind "$root" "$root"
mount --bind /dev "$root/dev"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
if ls /usr/local/share/ca-certificates/*.crt > /dev/null 2>&1; then # a TLS proxy's CA, if any
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt" 2> /dev/null || true
fi
cp "$deb" "$root/tmp/chorus.deb"
step "apt-get install systemd curl ./chorus.deb"
chroot "$root" /bin/sh -c 'apt-get update -q > /dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd curl /tmp/chorus.deb' \
    > "$root/tmp/apt.log" 2>&1 || fail "$(tail -20 "$root/tmp/apt.log")"
ok
umount -l "$root/proc"

cat > "$root/root/boot-check-init.sh" << 'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys 2> /dev/null || true
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2> /dev/null || true
export container=other
exec /lib/systemd/systemd --system
EOF
chmod +x "$root/root/boot-check-init.sh"
# Boots systemd; sets init_pid. inside CMD runs CMD in its namespaces.
boot() {
    setsid unshare --pid --fork --mount --uts --ipc chroot "$root" /root/boot-check-init.sh \
        > "$root/root/boot-check.log" 2>&1 < /dev/null &
    init_pid=""
    for _ in $(seq 100); do
        init_pid=$(pgrep -f -n "^/lib/systemd/systemd --system" || true)
        [ -n "$init_pid" ] && break
        sleep 0.1
    done
    [ -n "$init_pid" ] || fail "systemd did not start: $(cat "$root/root/boot-check.log")"
    state=offline
    for _ in $(seq 300); do # until systemd answers on its bus, then until booted
        state=$(inside 'systemctl is-system-running --wait 2> /dev/null' || true)
        case "$state" in offline | "") sleep 0.1 ;; *) break ;; esac
    done
    case "$state" in running | degraded) ok "$state" ;; *) fail "system state: $state" ;; esac
}
inside() { nsenter -t "$init_pid" -m -p -u -i -r -w /bin/sh -c "$1"; }
# Waits up to 10 s for chorusd's /readyz to say ready; its last answer in $ready.
wait_ready() {
    ready=""
    for _ in $(seq 100); do
        ready=$(inside 'curl -sf http://127.0.0.1:8080/readyz' || true)
        case "$ready" in *'"ready"'*) return 0 ;; esac
        sleep 0.1
    done
    return 1
}
step "boot systemd (PID 1 of a new PID namespace)"
boot

step "systemd-analyze verify chorusd.service"
inside 'systemd-analyze verify /lib/systemd/system/chorusd.service' || fail "unit does not verify"
ok
step "systemctl enable --now chorusd"
inside 'systemctl enable --now chorusd' > /dev/null 2>&1 ||
    fail "$(inside 'systemctl status chorusd --no-pager; journalctl -u chorusd --no-pager | tail -20')"
ok
step "active, as the chorus user, /readyz ready"
wait_ready || fail "readyz: $ready"
user=$(inside 'systemctl show -p MainPID --value chorusd | xargs -I{} stat -c %U /proc/{}')
[ "$user" = chorus ] || fail "runs as $user"
ok "user $user"
step "systemctl reload chorusd"
inside 'systemctl reload chorusd' || fail "$(inside 'systemctl status chorusd --no-pager')"
for _ in $(seq 50); do
    inside 'journalctl -u chorusd --no-pager' | grep -q "event=reload status=applied" && break
    sleep 0.1
done
inside 'journalctl -u chorusd --no-pager' | grep -q "event=reload status=applied" ||
    fail "no event=reload status=applied in the journal"
ok "applied"
step "systemctl restart chorusd"
inside 'systemctl restart chorusd && systemctl is-active chorusd' > /dev/null || fail "restart"
ok
step "systemctl stop chorusd: clean exit"
inside 'systemctl stop chorusd'
inside 'journalctl -u chorusd --no-pager' | grep -q "event=stopped exit_code=0" || fail "no clean stop"
result=$(inside 'systemctl show -p Result --value chorusd')
[ "$result" = success ] || fail "Result=$result"
ok
step "systemctl poweroff, boot again"
inside 'systemctl poweroff' || true
for _ in $(seq 300); do
    kill -0 "$init_pid" 2> /dev/null || break
    sleep 0.1
done
kill -0 "$init_pid" 2> /dev/null && fail "systemd did not power off"
boot
step "chorusd started at boot, ready"
wait_ready || fail "after boot: $(inside 'systemctl status chorusd --no-pager')"
ok "$(inside 'systemctl is-enabled chorusd')"
echo "systemd-boot-check: all steps passed ($(inside 'systemctl --version | head -1'))"
