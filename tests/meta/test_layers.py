"""DESIGN.md's layer rules hold for the real tree, and the checker catches a breach."""

from __future__ import annotations

from pathlib import Path

from podnet.testing.layers import allowed, check_tree

ROOT = Path(__file__).resolve().parents[2]


def test_source_tree_follows_the_layer_rules() -> None:
    violations = check_tree(ROOT / "src" / "podnet")
    assert violations == [], "\n".join(map(str, violations))


def test_checker_catches_the_must_fail_fixture() -> None:
    found = check_tree(Path(__file__).parent / "fixtures" / "bad" / "podnet")
    assert sorted((v.importer, v.imported) for v in found) == [
        ("controllers", "apiserver"), ("controllers", "store"), ("dns", "kernel")]


def test_rules_table() -> None:
    assert allowed("apiserver", "store", ("sqlite",))
    assert not allowed("controllers", "store", ())
    assert allowed("proxy", "kernel", ("nft",))
    assert not allowed("dns", "kernel", ())
    assert allowed("trace", "proxy", ("ruleset",))
    assert not allowed("trace", "proxy", ("proxier",))
    assert allowed("cli", "apiserver", ())
    assert not allowed("controllers", "apiserver", ())
