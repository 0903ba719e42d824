"""The agent's tmpfs: mounted once, found again by a second call (a restarted agent),
removed by path, and nothing left mounted afterwards."""

from __future__ import annotations

import os
from pathlib import Path

from podnet.kernel import mounts
from tests.kernel.hoststate import snapshot


def test_tmpfs_is_mounted_once_reused_and_unmounted(tmp_path: Path) -> None:
    before = snapshot()
    where = tmp_path / "agent" / "run"
    try:
        assert mounts.ensure_tmpfs(where, 4) is True
        assert mounts.fs_type(where) == "tmpfs"
        assert (os.stat(where).st_mode & 0o777) == 0o700
        (where / "state.json").write_text("{}")
        # A restarted agent finds it, with what the first one left in it.
        assert mounts.ensure_tmpfs(where, 4) is False
        assert (where / "state.json").read_text() == "{}"
        # The size cap holds.
        big = where / "big"
        try:
            big.write_bytes(b"x" * (5 << 20))
            raise AssertionError("a 4 MiB tmpfs took 5 MiB")
        except OSError as err:
            assert err.errno == 28  # ENOSPC
    finally:
        assert mounts.unmount(where) is True
    assert mounts.fs_type(where) == ""
    assert not (where / "state.json").exists()  # the files went with the mount
    assert mounts.unmount(where) is False  # nothing there any more
    assert snapshot() == before


def test_mount_points_with_spaces_are_found(tmp_path: Path) -> None:
    where = tmp_path / "a dir" / "run"
    mounts.ensure_tmpfs(where, 1)
    try:
        assert mounts.fs_type(where) == "tmpfs"
        assert mounts.ensure_tmpfs(where, 1) is False
    finally:
        mounts.unmount(where)
    assert mounts.fs_type(where) == ""
