#!/bin/sh
# Installs everything chorus needs to build, test and benchmark on Debian 12.
# Idempotent: packages already present are not touched, and when nothing is
# missing the script does no network access at all.
set -eu

# Build toolchain and libraries (DESIGN.md, "Conventions").
BUILD_PKGS="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libuv1-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev
  libwslay-dev libcmocka-dev node-llhttp libutf8proc-dev libpcre2-dev
  libsystemd-dev libmimalloc-dev"
# Test and benchmark tools: real HTTP/WebSocket clients, the browser for the
# widget test, and the peers the benchmarks run side by side.
TEST_PKGS="curl ca-certificates sqlite3 procps python3 openssl wrk
  nginx-light valgrind chromium"
# make package and its test: dpkg-shlibdeps computes the .deb's Depends;
# systemd provides systemd-sysusers/-tmpfiles (the postinst) and
# systemd-analyze (the unit check). Installing it starts nothing.
# file is what CPack's DEB generator runs to find the binaries dpkg-shlibdeps
# must read for the package's Depends.
TEST_PKGS="$TEST_PKGS dpkg-dev systemd file"
# Node.js runs the WebSocket and browser test clients. A machine that already
# has a Node.js with its own npm (NodeSource packages bundle npm and conflict
# with Debian's) keeps it; otherwise Debian's nodejs and npm are installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    TEST_PKGS="$TEST_PKGS nodejs npm"
fi

missing=""
for p in $BUILD_PKGS $TEST_PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# nginx-light's postinst tries to start the service; in a chroot or a
# container without an init that fails, so keep the service from starting.
if [ ! -x /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
