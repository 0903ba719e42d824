"""The namespace directory's tmpfs (kernel/netnsdir.py), on a directory of the test's own
instead of /run/netns: mounted only over an empty directory on a disk filesystem, shared
as `ip` makes it, taken away only when empty and only if it is ours."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from podnet.kernel import mounts, netnsdir
from tests.kernel.hoststate import snapshot


def _on_disk(path: Path) -> bool:
    below = mounts.containing(path)
    return below is not None and below.fs_type not in netnsdir.MEMORY_FS


def _shared(path: Path) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        lines = [line.split(" - ")[0].split() for line in f]
    tops = [fields for fields in lines if fields[4] == str(path)]
    return any(opt.startswith("shared:") for opt in tops[-1][6:])


def test_an_empty_directory_on_disk_gets_a_shared_tmpfs_until_it_is_empty_again(
        tmp_path: Path) -> None:
    before = snapshot()
    where = tmp_path / "netns"
    if not _on_disk(tmp_path):
        # On a tmpfs already (a host whose /tmp is one): nothing to do, nothing done.
        assert netnsdir.ensure_tmpfs(where) is False
        assert mounts.mount_at(where) is None
        return
    try:
        assert netnsdir.ensure_tmpfs(where) is True
        top = mounts.mount_at(where)
        assert top == mounts.Mount(str(where), "tmpfs", netnsdir.SOURCE)
        assert _shared(where)
        assert netnsdir.is_prepared(where)
        assert netnsdir.ensure_tmpfs(where) is False  # a second agent: already there
        (where / "pod-a").touch()  # a namespace is named there: it stays
        assert netnsdir.release_tmpfs(where) is False
        assert mounts.mount_at(where) == top
        (where / "pod-a").unlink()
    finally:
        released = netnsdir.release_tmpfs(where)
    assert released is True
    assert mounts.mount_at(where) is None
    assert not netnsdir.is_prepared(where)
    assert netnsdir.release_tmpfs(where) is False  # nothing of ours left
    assert snapshot() == before


def test_names_already_there_are_never_hidden(tmp_path: Path) -> None:
    where = tmp_path / "netns"
    where.mkdir()
    (where / "someone-elses").touch()
    assert netnsdir.ensure_tmpfs(where) is False
    assert mounts.mount_at(where) is None
    assert (where / "someone-elses").exists()


def test_a_tmpfs_that_is_not_ours_is_left_alone(tmp_path: Path) -> None:
    where = tmp_path / "netns"
    assert mounts.ensure_tmpfs(where, 1) is True  # source "tmpfs", not ours
    try:
        assert netnsdir.release_tmpfs(where) is False
        assert mounts.fs_type(where) == "tmpfs"
    finally:
        assert mounts.unmount(where) is True


def test_a_busy_tmpfs_stays(tmp_path: Path) -> None:
    """Another cluster's namespace mounted under it between our look and our umount: the
    plain umount is refused and the mount stays."""
    where = tmp_path / "netns"
    if not _on_disk(tmp_path):
        pytest.fail("this test needs a disk filesystem under the test's tmp_path")
    assert netnsdir.ensure_tmpfs(where) is True
    inner = where / "sub"
    try:
        assert mounts.ensure_tmpfs(inner, 1) is True
        # The directory now holds a name, so release refuses before trying; call the
        # kernel directly to prove a plain umount is refused while something is mounted.
        libc = mounts.libc()
        assert libc.umount2(str(where).encode(), 0) != 0
        assert ctypes.get_errno() == 16  # EBUSY
        assert netnsdir.release_tmpfs(where) is False
    finally:
        mounts.unmount(inner)
        inner.rmdir()
        assert netnsdir.release_tmpfs(where) is True
