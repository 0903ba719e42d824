"""A tmpfs of our own for state that lives only as long as the processes it describes.

Why: the agent creates about a dozen small files per pod (container state, FIFOs, the
launcher's spec, resolv.conf, hosts, hostname, the IPAM record). Creating a file costs
microseconds on tmpfs but can cost most of a millisecond on a disk filesystem (0.75 ms
on this machine's ext4 with `discard`), on the event loop, in the middle of a pod burst.
None of that state outlives a reboot in any useful way (the processes and namespaces it
names are gone then), which is why the kubelet and container runtimes keep theirs under
/run. /run is not a tmpfs everywhere, so the agent mounts one where it wants it.

The mount lives in the host's mount namespace, so it survives the agent (a restarted
agent adopts its pods from it) and goes only when asked to, by path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
from dataclasses import dataclass
from pathlib import Path

MNT_DETACH = 2
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8


@functools.cache
def libc() -> ctypes.CDLL:
    """libc through ctypes, for the calls Python 3.11 lacks (mount, umount2, setns,
    unshare): one handle for the whole kernel package."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo, the parts we read."""

    point: str
    fs_type: str
    source: str


def _unescape(s: str) -> str:
    return s.encode().decode("unicode_escape") if "\\" in s else s


def _mounts() -> list[Mount]:
    """This mount namespace's mounts, in mount order (a later one covers an earlier one
    at the same point)."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) > 4 and len(tail) > 1:
                out.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    return out


def mount_at(path: Path) -> Mount | None:
    """The mount exactly at `path` that is seen there (the last one), or None."""
    target = os.path.realpath(path)
    found = [m for m in _mounts() if m.point == target]
    return found[-1] if found else None


def containing(path: Path) -> Mount | None:
    """The mount whose filesystem holds `path`: the deepest mount point above it."""
    target = os.path.realpath(path)
    best: Mount | None = None
    for m in _mounts():
        inside = target == m.point or target.startswith(m.point.rstrip("/") + "/")
        if inside and (best is None or len(m.point) >= len(best.point)):
            best = m
    return best


def fs_type(path: Path) -> str:
    """The filesystem type of the mount exactly at `path` ("" when none is)."""
    m = mount_at(path)
    return m.fs_type if m else ""


def ensure_tmpfs(path: Path, size_mb: int, mode: int = 0o700) -> bool:
    """Mount a tmpfs of at most `size_mb` at `path` unless one is already there (made by
    an earlier run); returns True when this call mounted it. Raises OSError otherwise."""
    path.mkdir(parents=True, exist_ok=True)
    if fs_type(path) == "tmpfs":
        return False
    mount_tmpfs(path, size_mb, mode)
    return True


def mount_tmpfs(path: Path, size_mb: int, mode: int, source: str = "tmpfs") -> None:
    """mount -t tmpfs -o nosuid,nodev,noexec,size=…,mode=… `source` `path`; the source
    names whose mount it is in /proc/self/mountinfo. Raises OSError."""
    opts = f"size={size_mb}m,mode={mode:o}".encode()
    if libc().mount(source.encode(), str(path).encode(), b"tmpfs",
                    MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs at {path}: {os.strerror(err)}")


def unmount(path: Path) -> bool:
    """Detach whatever is mounted at `path` (and only there); False when nothing was."""
    if libc().umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return False
        raise OSError(err, f"umount {path}: {os.strerror(err)}")
    return True
