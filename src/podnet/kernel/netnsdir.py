"""/run/netns, where named network namespaces are mounted (as `ip netns` keeps them), and
keeping it on a tmpfs.

Why: every named namespace is a file in /run/netns with the namespace bind-mounted on it.
/run is a tmpfs on a usual Linux host, but not everywhere (containers, CI images, this
project's CI machine), and on a disk filesystem creating that file is slow: a journal-less
ext4 scans past every inode deleted in the last minutes before it allocates one, which
cost 0.1 to 1 ms per pod sandbox in a 100-pod burst. The names only mean something while the
machine is up, so a tmpfs is what they belong on.

We mount one only where nothing is named yet (mounting over names would hide them from
`ip netns`), label it with our source name so it is told from anyone else's, and take it
away only when it is empty again: a plain umount, which the kernel refuses while any
namespace is mounted under it, so two clusters on one machine never pull it from under
each other.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from podnet.kernel import mounts
from podnet.kernel.netns import NETNS_DIR

SOURCE = "podnet-netns"  # the mount's source field: what tells our tmpfs from others
MS_REC = 0x4000
MS_SHARED = 1 << 20
MEMORY_FS = frozenset({"tmpfs", "ramfs"})

_prepared: set[str] = set()


def is_prepared(path: Path = NETNS_DIR) -> bool:
    """Whether `path` is a mount point, as `ip netns add` makes it (a bind mount of itself
    when nothing else is mounted there), so mounts under it propagate to every mount
    namespace. Remembered once true, until `release_tmpfs` takes ours away."""
    key = str(path)
    if key in _prepared:
        return True
    if mounts.mount_at(path) is not None:
        _prepared.add(key)
        return True
    return False


def ensure_tmpfs(path: Path = NETNS_DIR) -> bool:
    """Mount a tmpfs at `path` when the filesystem under it is on disk and no namespace
    is named there yet; True when this call mounted it. Made shared, as `ip` makes
    /run/netns, so namespace mounts show in mount namespaces made later."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    below = mounts.containing(path)
    if below is not None and below.fs_type in MEMORY_FS:
        return False
    if any(path.iterdir()):
        return False
    mounts.mount_tmpfs(path, 1, 0o755, source=SOURCE)
    libc = mounts.libc()
    target = str(path).encode()
    if libc.mount(None, target, None, MS_SHARED | MS_REC, None) != 0:
        err = ctypes.get_errno()
        libc.umount2(target, 0)
        raise OSError(err, f"make {path} shared: {os.strerror(err)}")
    _prepared.add(str(path))
    return True


def release_tmpfs(path: Path = NETNS_DIR) -> bool:
    """Unmount the tmpfs `ensure_tmpfs` mounted, if it is the top mount at `path` and no
    namespace is named in it; True when it went."""
    top = mounts.mount_at(path)
    if top is None or top.source != SOURCE or top.fs_type != "tmpfs":
        return False
    try:
        if any(path.iterdir()):
            return False
    except FileNotFoundError:
        return False
    if mounts.libc().umount2(str(path).encode(), 0) != 0:
        err = ctypes.get_errno()
        if err in (errno.EBUSY, errno.EINVAL, errno.ENOENT):
            return False  # in use again (another cluster), or already gone
        raise OSError(err, f"umount {path}: {os.strerror(err)}")
    _prepared.discard(str(path))
    return True
