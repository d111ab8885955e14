"""A small tmpfs for the tests that fill a disk. small_tmpfs() mounts one
for the test and unmounts it after; where one cannot be mounted (not root,
no permission in a container) the test is skipped with the reason, exit
code 77, which ctest reports as skipped rather than passed."""
import contextlib
import errno
import os
import subprocess
import sys
import tempfile

SKIPPED = 77  # SKIP_RETURN_CODE in cmake/tests.cmake


def skip(why):
    print("SKIP: %s" % why)
    sys.exit(SKIPPED)


@contextlib.contextmanager
def small_tmpfs(size):
    """Yields (tmp, mnt): a temporary directory, and a tmpfs of size ("2m")
    mounted at tmp/mnt."""
    if os.geteuid() != 0:
        skip("mounting a tmpfs needs root")
    with tempfile.TemporaryDirectory() as tmp:
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            skip("cannot mount a tmpfs here: " + r.stderr.strip())
        try:
            yield tmp, mnt
        finally:
            subprocess.run(["umount", "-l", mnt])


def fill(path):
    """Writes zeros to path until the file system is full. The test needs
    room to free afterwards, so a file system already full is an error."""
    written = 0
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
                written += 65536
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    assert written > 0, "the tmpfs was full before the ballast: mount a larger one"
