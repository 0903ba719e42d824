"""Namespace names and listing (no root: the directory is redirected to a temp dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.kernel import netns


def test_list_and_exists_read_the_netns_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns, "NETNS_DIR", tmp_path / "netns")
    assert netns.list_netns() == []  # no directory yet: no namespaces
    (tmp_path / "netns").mkdir()
    for name in ("podnet-b-n", "podnet-a-n"):
        (tmp_path / "netns" / name).touch()
    assert netns.list_netns() == ["podnet-a-n", "podnet-b-n"]
    assert netns.netns_exists("podnet-a-n") and not netns.netns_exists("podnet-c-n")


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b"])
def test_names_cannot_escape_the_directory(bad: str) -> None:
    with pytest.raises(ValueError):
        netns.netns_path(bad)


async def test_delete_of_a_missing_namespace_is_a_no_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns, "NETNS_DIR", tmp_path)
    assert await netns.delete_netns("podnet-never-made") is False


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "net/../../x"])
def test_sysctl_keys_stay_under_proc_sys(key: str) -> None:
    with pytest.raises(ValueError):
        netns.sysctl_in_netns("whatever", key, 1)
