"""The .deb (cmake/package.cmake, packaging/): built with cpack from this build
tree, installed with dpkg into a fresh root the test makes, running the
maintainer scripts against that root (dpkg --root --force-script-chrootless,
DPKG_ROOT), then removed and purged.

Checks the installed files and their modes, the conffiles, the `chorus`
system user and its directories (sysusers.d, tmpfiles.d), that Depends names
the package of every shared library the binary needs, that the unit passes
`systemd-analyze verify` where it exists, and that the installed chorusd
accepts the installed configuration (`--check`, paths moved into the root
with command-line overrides). A remove keeps the data and the conffiles; a
purge deletes them.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, run_tests  # noqa: E402

BUILD = os.environ.get("CHORUS_BUILD_DIR", "build")
STATE = {}


def run(cmd, check=True, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    return p


def dpkg(root, *args, check=True):
    cmd = ["dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends",
           "--log=" + os.path.join(root, "dpkg.log")]
    if os.geteuid() != 0:
        cmd.append("--force-not-root")
    return run(cmd + list(args), check=check)


def package():
    """Builds the .deb once into a temporary directory; returns its path."""
    if "deb" not in STATE:
        out = tempfile.mkdtemp(prefix="chorus-pkg-")
        STATE["tmp"] = out
        # The tree ctest runs in is built: package it as it is through its
        # install script, instead of cpack's usual rebuild of every target
        # while other tests use the binaries. gzip: quicker, same contents.
        run(["cpack", "-G", "DEB", "-B", out, "--config",
             os.path.join(BUILD, "CPackConfig.cmake"), "-D", "CPACK_INSTALL_CMAKE_PROJECTS=",
             "-D", "CPACK_INSTALL_SCRIPTS=" + os.path.join(BUILD, "cmake_install.cmake"),
             "-D", "CPACK_DEBIAN_COMPRESSION_TYPE=gzip"])
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1, debs
        STATE["deb"] = os.path.join(out, debs[0])
    return STATE["deb"]


def fresh_root():
    root = tempfile.mkdtemp(prefix="chorus-root-", dir=STATE["tmp"])
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    return root


def installed_root():
    if "root" not in STATE:
        deb = package()
        root = fresh_root()
        dpkg(root, "-i", deb)
        STATE["root"] = root
    return STATE["root"]


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def passwd_entry(root, name, db="passwd"):
    with open(os.path.join(root, "etc", db)) as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name:
                return fields
    return None


def test_files_and_modes():
    root = installed_root()
    expect = {
        "usr/bin/chorusd": 0o755,
        "usr/bin/chorusctl": 0o755,
        "etc/chorus/chorusd.json": 0o644,
        "etc/chorus/guardrails.json": 0o644,
        "lib/systemd/system/chorusd.service": 0o644,
        "usr/lib/sysusers.d/chorus.conf": 0o644,
        "usr/lib/tmpfiles.d/chorus.conf": 0o644,
        "usr/share/chorus/flows/welcome.json": 0o644,
        "usr/share/doc/chorus/operations.md": 0o644,
        "usr/share/doc/chorus/README.md": 0o644,
    }
    for rel, want in expect.items():
        path = os.path.join(root, rel)
        assert os.path.isfile(path), "missing " + rel
        assert mode(path) == want, "%s has mode %o, want %o" % (rel, mode(path), want)
        st = os.lstat(path)
        assert st.st_uid == 0 and st.st_gid == 0, "%s not owned by root" % rel
    assert not os.path.exists(os.path.join(root, "usr/local")), "files under /usr/local"
    assert not os.path.exists(os.path.join(root, "usr/share/chorus/flows/tests")), \
        "the flows' conversation tests are not example flows"
    status = dpkg(root, "-s", "chorus").stdout
    assert "Status: install ok installed" in status, status
    conffiles = run(["dpkg-query", "--root=" + root, "-W", "-f=${Conffiles}", "chorus"]).stdout
    for f in ("/etc/chorus/chorusd.json", "/etc/chorus/guardrails.json"):
        assert f in conffiles, "%s is not a conffile: %s" % (f, conffiles)


def test_installed_config_and_unit():
    root = installed_root()
    with open(os.path.join(root, "etc/chorus/chorusd.json")) as f:
        conf = f.read()
    for want in ('"data_dir": "/var/lib/chorus"', '"flows_dir": "/usr/share/chorus/flows"',
                 '"secrets_dir": "/etc/chorus/secrets"'):
        assert want in conf, want
    assert '"production": "promoted"' in conf, conf  # installed servers promote
    with open(os.path.join(root, "lib/systemd/system/chorusd.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/bin/chorusd --config /etc/chorus/chorusd.json\n" in unit, unit
    assert "User=chorus\n" in unit and "ReadWritePaths=/var/lib/chorus\n" in unit
    # The installed chorusd accepts the installed configuration, with the
    # paths that point into / moved into the root.
    p = run([os.path.join(root, "usr/bin/chorusd"), "--check",
             "--config", os.path.join(root, "etc/chorus/chorusd.json"),
             "--data-dir", os.path.join(root, "var/lib/chorus"),
             "--flows", os.path.join(root, "usr/share/chorus/flows")], check=False)
    assert p.returncode == 0, p.stdout
    assert ": ok" in p.stdout, p.stdout
    if shutil.which("systemd-analyze"):
        # The installed unit as it is, except that ExecStart runs the binary
        # installed in the root (verify needs it to exist; the root is no
        # bootable system for `verify --root`).
        unit_dir = tempfile.mkdtemp(dir=STATE["tmp"])
        with open(os.path.join(unit_dir, "chorusd.service"), "w") as f:
            f.write(unit.replace("ExecStart=/usr/bin/chorusd",
                                 "ExecStart=" + os.path.join(root, "usr/bin/chorusd")))
        p = run(["systemd-analyze", "verify", os.path.join(unit_dir, "chorusd.service")],
                check=False)
        assert p.returncode == 0 and "chorusd.service" not in p.stdout, p.stdout


def test_installed_daemon_serves():
    """The installed chorusd on the installed configuration (paths into the
    root, a port the kernel picks) starts, migrates a new database, loads
    the installed flows into production and answers; the chat API stays
    closed while no key is configured."""
    root = installed_root()
    os.environ["CHORUSD"] = os.path.join(root, "usr/bin/chorusd")  # read by the harness
    d = Daemon(config=os.path.join(root, "etc/chorus/chorusd.json"),
               args=["--flows", os.path.join(root, "usr/share/chorus/flows")])
    with d:
        d.wait_log(event="flows_loaded", timeout=60)
        status, _, body = d.request("GET", "/readyz")
        assert status == 200, (status, body)
        status, _, body = d.request("POST", "/v1/chat/conversations", b"")
        assert status == 401, (status, body)
        assert os.path.exists(os.path.join(d.data_dir, "chorus.db"))


def test_user_and_directories():
    root = installed_root()
    with open(os.path.join(root, "usr/lib/sysusers.d/chorus.conf")) as f:
        assert any(line.split()[:2] == ["u", "chorus"] for line in f if line.strip()
                   and not line.startswith("#"))
    with open(os.path.join(root, "usr/lib/tmpfiles.d/chorus.conf")) as f:
        tmpfiles = f.read()
    assert "d /var/lib/chorus 0750 chorus chorus -" in tmpfiles, tmpfiles
    user = passwd_entry(root, "chorus")
    assert user is not None, "postinst made no chorus user"
    uid, gid, home, shell = int(user[2]), int(user[3]), user[5], user[6]
    assert 0 < uid < 1000, "chorus is not a system user: uid %d" % uid
    assert home == "/var/lib/chorus" and shell.endswith("nologin"), user
    group = passwd_entry(root, "chorus", "group")
    assert group is not None and int(group[2]) == gid, group
    data = os.path.join(root, "var/lib/chorus")
    st = os.stat(data)
    assert stat.S_ISDIR(st.st_mode) and mode(data) == 0o750, "%o" % mode(data)
    assert (st.st_uid, st.st_gid) == (uid, gid), (st.st_uid, st.st_gid, uid, gid)
    secrets = os.path.join(root, "etc/chorus/secrets")
    st = os.stat(secrets)
    assert mode(secrets) == 0o750 and (st.st_uid, st.st_gid) == (0, gid), (mode(secrets), st)


def test_depends_cover_linked_libraries():
    deb = package()
    depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    names = {d.strip().split()[0] for d in depends.replace("|", ",").split(",") if d.strip()}
    assert "tzdata" in names, depends  # the queues' business hours read its zones
    assert "procps" in names, depends  # the unit's ExecReload runs /bin/kill
    binary = os.path.join(BUILD, "chorusd")
    needed = [line.split()[1] for line in run(["objdump", "-p", binary]).stdout.splitlines()
              if line.strip().startswith("NEEDED")]
    assert needed, "objdump found no NEEDED entries"
    multiarch = run(["gcc", "-print-multiarch"]).stdout.strip() or "x86_64-linux-gnu"
    for lib in needed:
        if lib.startswith("ld-linux") or lib.startswith("libasan") or lib.startswith("libubsan"):
            continue
        out = run(["dpkg", "-S", "*/%s/%s" % (multiarch, lib)], check=False).stdout
        owners = {pkg.strip().split(":")[0] for line in out.splitlines() if ": " in line
                  for pkg in line.split(": ")[0].split(",")}
        assert owners, "no package owns " + lib
        assert owners & names, "%s (from %s) is not in Depends: %s" % (owners, lib, depends)


def test_remove_keeps_data_purge_deletes_it():
    deb = package()
    root = fresh_root()
    dpkg(root, "-i", deb)
    db = os.path.join(root, "var/lib/chorus/chorus.db")
    with open(db, "w") as f:
        f.write("data")
    dpkg(root, "-r", "chorus")
    assert not os.path.exists(os.path.join(root, "usr/bin/chorusd"))
    assert os.path.exists(db), "remove deleted the data"
    assert os.path.exists(os.path.join(root, "etc/chorus/chorusd.json")), "remove took a conffile"
    dpkg(root, "--purge", "chorus")
    assert not os.path.exists(os.path.join(root, "var/lib/chorus")), "purge kept the data"
    assert not os.path.exists(os.path.join(root, "etc/chorus")), "purge kept /etc/chorus"


if __name__ == "__main__":
    try:
        run_tests(globals())
    finally:
        if "tmp" in STATE:
            shutil.rmtree(STATE["tmp"], ignore_errors=True)
