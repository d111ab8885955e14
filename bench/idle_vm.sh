#!/bin/bash
# bench/idle_vm.sh [BUILD_DIR [SOURCE_DIR]]: the channels benchmark's idle
# WebSocket figure (bench/channels.sh, part 5) at full size on a host that
# cannot hold it itself. One socket is one descriptor: where the open-file
# limit (ulimit -Hn) is below IDLE and the process may not raise it (no
# CAP_SYS_RESOURCE, as in many sandboxes), chorusd cannot accept that many.
#
# This boots an emulated Debian 12 machine (qemu with TCG, so no /dev/kvm is
# needed) whose kernel and limits are its own, installs there the Debian
# package built afresh from BUILD_DIR (cpack), starts chorusd with channels.sh's
# configuration, opens IDLE idle web conversations on it with channels.sh's
# client (bench/channels/ws_idle.mjs) and prints the daemon's RSS. The binary
# and its libraries are the ones a Debian 12 host runs, so the figure is the
# daemon's; emulation slows the run (about 75 conversations a second, so
# 100,000 take about 25 minutes), not the figure. The guest's console, with
# the client's progress every 10,000, is VM_DIR/console.log.
#
# Needs root (debootstrap, chroot), debootstrap, qemu-system-x86 and e2fsprogs,
# and the network the first time: the guest's tree is built once in VM_DIR and
# kept. Environment: IDLE (100000), VM_DIR (BUILD_DIR/idle-vm), VM_MEM (12G),
# VM_CPUS (2), MIRROR (http://deb.debian.org/debian).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
src=$(cd "${2:-$(dirname "$0")/..}" && pwd)
idle=${IDLE:-100000}
vm=${VM_DIR:-$build/idle-vm}
mem=${VM_MEM:-12G}
cpus=${VM_CPUS:-2}
mirror=${MIRROR:-http://deb.debian.org/debian}
root="$vm/root"

[ "$(id -u)" = 0 ] || { echo "idle_vm: needs root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap qemu-system-x86_64 mke2fs cpack python3; do
    command -v "$tool" > /dev/null || {
        echo "idle_vm: $tool not found (apt-get install debootstrap qemu-system-x86 e2fsprogs cmake python3)" >&2
        exit 1
    }
done
case "$idle" in '' | *[!0-9]*) echo "idle_vm: IDLE must be a number, got '$idle'" >&2; exit 1 ;; esac
ws="$src/tests/node/node_modules/ws"
[ -d "$ws" ] || sh "$src/scripts/install-node-deps.sh"

# Unmounts what in_root mounted (also on any exit: a tree left with the
# host's /dev bound inside must never be removed).
unmount_root() {
    for m in dev sys proc; do
        if mountpoint -q "$root/$m"; then umount -l "$root/$m"; fi
    done
}
trap unmount_root EXIT

# Runs a shell command as root inside the guest's tree, with /proc, /sys and
# /dev mounted for the packages' scripts while it runs.
in_root() {
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    mount --bind /dev "$root/dev"
    local rc=0
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        DEBIAN_FRONTEND=noninteractive /bin/sh -c "$1" || rc=$?
    unmount_root
    return $rc
}

# ---- the guest's tree, once -------------------------------------------------
if [ ! -e "$root/.chorus-idle-vm" ]; then
    echo "idle_vm: building the guest's Debian 12 tree in $root (once, a few minutes)"
    unmount_root
    rm -rf --one-file-system "$root"
    mkdir -p "$vm"
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$vm/debootstrap.log" 2>&1 ||
        { tail -5 "$vm/debootstrap.log" >&2; exit 1; }
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    in_root "apt-get update -q && apt-get install -y -q --no-install-recommends \
        linux-image-amd64 nodejs curl iproute2" > "$vm/apt.log" 2>&1 ||
        { tail -5 "$vm/apt.log" >&2; exit 1; }
    touch "$root/.chorus-idle-vm"
fi

# ---- this build's package and the client --------------------------------------
rm -f "$build"/chorus_*.deb
(cd "$build" && cpack -G DEB > "$vm/cpack.log" 2>&1) || { tail -5 "$vm/cpack.log" >&2; exit 1; }
debs=("$build"/chorus_*.deb)
deb=${debs[0]}
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/chorus.deb"
in_root "apt-get install -y -q --reinstall /tmp/chorus.deb" > "$vm/install.log" 2>&1 ||
    { tail -5 "$vm/install.log" >&2; exit 1; }
rm -rf "$root/opt/idle"
mkdir -p "$root/opt/idle/node_modules"
cp -a "$src/bench/channels/flows" "$src/bench/channels/ws_idle.mjs" "$root/opt/idle/"
cp -a "$ws" "$root/opt/idle/node_modules/"
# channels.sh's configuration (bench/channels/chorusd.json.in) with one
# setting changed: pings every hour instead of every 30 s. Natively the
# conversations are measured seconds after they open, before any ping; here
# the first ones wait over twenty minutes for the last, and 100,000 pings
# every 30 s under emulation would load the daemon and the client the native
# run never sees, and close sockets whose pong a slowed client sends past the
# deadline.
keyhash=$(printf '%s' bench-key-1 | sha256sum | cut -d' ' -f1)
sed "s/@KEYHASH@/$keyhash/" "$src/bench/channels/chorusd.json.in" |
    python3 -c 'import json, sys
config = json.load(sys.stdin)
config["websocket"] = {"ping_interval_ms": 3600000}
json.dump(config, sys.stdout, indent=1)' > "$root/opt/idle/chorusd.json"

# The guest's first and only process: channels.sh part 5 with that
# configuration, its result on the console, then power off.
cat > "$root/opt/idle/init.sh" << 'EOF'
#!/bin/bash
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t tmpfs tmpfs /tmp
ip link set lo up
ulimit -n 1048576
sysctl -q -w net.core.somaxconn=4096
idle=$(sed -n 's/.* idle=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "guest: kernel $(uname -r), $(nproc) cpus, $(free -m | awk '/Mem/{print $2}') MiB," \
     "open files $(ulimit -n), $(chorusd --version 2>&1 | head -1)"
cd /opt/idle
mkdir -p /tmp/data
chorusd --listen 127.0.0.1:7000 --config chorusd.json --data-dir /tmp/data \
    --flows flows 2> /tmp/chorusd.log &
cpid=$!
for _ in $(seq 1200); do
    curl -sf http://127.0.0.1:7000/readyz > /dev/null && break
    sleep 0.5
done
if curl -sf http://127.0.0.1:7000/readyz > /dev/null; then
    NODE_PATH=/opt/idle/node_modules node --max-old-space-size=8192 ws_idle.mjs 7000 "$cpid" "$idle" 2
else
    echo "guest: chorusd did not become ready"
    cat /tmp/chorusd.log
fi
kill "$cpid"
wait "$cpid"
echo "guest: chorusd exited with status $?"
tail -5 /tmp/chorusd.log | sed 's/^/guest: chorusd: /'
echo o > /proc/sysrq-trigger
sleep 60
EOF
chmod +x "$root/opt/idle/init.sh"

# ---- the machine ------------------------------------------------------------
kernels=("$root"/boot/vmlinuz-*)
initrds=("$root"/boot/initrd.img-*)
kernel=${kernels[-1]} initrd=${initrds[-1]}
image="$vm/root.img"
rm -f "$image"
mke2fs -q -t ext4 -d "$root" -F "$image" "$(($(du -sm "$root" | cut -f1) + 2048))M" > /dev/null
echo "idle_vm: booting the guest ($cpus cpus, $mem) to hold $idle idle conversations"
start=$(date +%s)
# transparent_hugepage=madvise: Debian 12's default, as on the hosts measured
timeout $((idle / 20 + 600)) qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max \
    -smp "$cpus" -m "$mem" -kernel "$kernel" -initrd "$initrd" \
    -append "root=/dev/vda rw console=ttyS0 quiet transparent_hugepage=madvise init=/opt/idle/init.sh idle=$idle" \
    -drive "file=$image,format=raw,if=virtio" -nic none -nographic -no-reboot > "$vm/console.log" 2>&1 || true
rm -f "$image"
tr -d '\r' < "$vm/console.log" | grep -aoE '(guest:|idle open=).*' |
    sed "s/^idle /chorus idle WebSocket conversations: /"
echo "idle_vm: $(($(date +%s) - start)) s in the guest"
grep -aq 'idle open=' "$vm/console.log" || { echo "idle_vm: no result; see $vm/console.log" >&2; exit 1; }
