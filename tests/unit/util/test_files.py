"""util.files.write_file: whole content replaced, atomic writes leave no temporary file."""

from __future__ import annotations

import os
from pathlib import Path

from podnet.util.files import write_file


def test_writes_and_replaces(tmp_path: Path) -> None:
    p = tmp_path / "hosts"
    write_file(p, "127.0.0.1 localhost\n10.244.0.5 web-0\n")
    write_file(p, "short\n")  # truncated, not overlaid
    assert p.read_text() == "short\n"
    write_file(p, b"\x00\xffbytes")
    assert p.read_bytes() == b"\x00\xffbytes"


def test_atomic_leaves_only_the_file(tmp_path: Path) -> None:
    p = tmp_path / "state.json"
    write_file(p, '{"pid": 1}', atomic=True)
    write_file(p, '{"pid": 2}', atomic=True)
    assert p.read_text() == '{"pid": 2}'
    assert sorted(os.listdir(tmp_path)) == ["state.json"]


def test_mode_honours_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_file(tmp_path / "a", "x")
        write_file(tmp_path / "b", "x", mode=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o600
