"""Garbage collection decisions, as a table: the dependent, its owners' states → action."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.controllers.garbagecollector import (
    Delete,
    Node,
    OwnerInfo,
    RemoveFinalizer,
    SetOwners,
    attempt_to_delete,
    process_deleting_owner,
)


def ref(uid: str, block: bool = True) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"rs-{uid}", "uid": uid,
            "controller": True, "blockOwnerDeletion": block}


def node(name: str, *owner_uids: str, deleting: bool = False, finalizers: tuple[str, ...] = (),
         unblocking: tuple[str, ...] = ()) -> Node:
    return Node.from_json({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                     "resourceVersion": "5",
                     "ownerReferences": [ref(u, u not in unblocking) for u in owner_uids],
                     **({"deletionTimestamp": "2024-05-01T12:00:00Z"} if deleting else {}),
                     "finalizers": list(finalizers)},
    })


ALIVE = OwnerInfo(deleting=False)
GONE = None
FOREGROUND = OwnerInfo(deleting=True, finalizers=("foregroundDeletion",))
BACKGROUND_DELETING = OwnerInfo(deleting=True)


def describe(actions: list[Any]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, Delete):
            out.append(f"delete {a.node.name} {a.policy}")
        elif isinstance(a, SetOwners):
            out.append(f"owners {a.node.name} -> {[r['uid'] for r in a.owners]}")
        elif isinstance(a, RemoveFinalizer):
            out.append(f"unfinalize {a.node.name} {a.finalizer}")
    return out


DEPENDENT_CASES = [
    # (why, node, owner states, has dependents, expected)
    ("owner alive", node("p", "a"), {"a": ALIVE}, False, []),
    ("owner gone", node("p", "a"), {"a": GONE}, False, ["delete p Background"]),
    ("owner state unknown: wait", node("p", "a"), {}, False, []),
    ("no owners", node("p"), {}, False, []),
    ("already being deleted", node("p", "a", deleting=True), {"a": GONE}, False, []),
    ("one of two owners gone: drop the reference", node("p", "a", "b"),
     {"a": ALIVE, "b": GONE}, False, ["owners p -> ['a']"]),
    ("all owners gone", node("p", "a", "b"), {"a": GONE, "b": GONE}, False,
     ["delete p Background"]),
    ("owner being deleted in background counts as alive", node("p", "a"),
     {"a": BACKGROUND_DELETING}, False, []),
    ("owner waits for dependents: delete", node("p", "a"), {"a": FOREGROUND}, False,
     ["delete p Background"]),
    ("owner waits and item has dependents: foreground", node("rs", "a"), {"a": FOREGROUND},
     True, ["delete rs Foreground"]),
    ("alive owner plus waiting owner: drop the waiting one", node("p", "a", "b"),
     {"a": ALIVE, "b": FOREGROUND}, False, ["owners p -> ['a']"]),
    ("own orphan finalizer chooses the policy", node("p", "a", finalizers=("orphan",)),
     {"a": GONE}, False, ["delete p Orphan"]),
]


@pytest.mark.parametrize(("why", "item", "owners", "deps", "expected"), DEPENDENT_CASES,
                         ids=[c[0] for c in DEPENDENT_CASES])
def test_attempt_to_delete(why: str, item: Node, owners: dict[str, Any], deps: bool,
                           expected: list[str]) -> None:
    assert describe(attempt_to_delete(item, owners, deps)) == expected


def owner(finalizer: str, deleting: bool = True) -> Node:
    return Node.from_json({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "rs", "namespace": "default", "uid": "o", "resourceVersion": "9",
                     "finalizers": [finalizer],
                     **({"deletionTimestamp": "2024-05-01T12:00:00Z"} if deleting else {})},
    })


def test_orphan_strips_references_then_finalizer() -> None:
    deps = [node("p1", "o", "x"), node("p2", "o")]
    assert describe(process_deleting_owner(owner("orphan"), deps)) == [
        "owners p1 -> ['x']", "owners p2 -> []", "unfinalize rs orphan"]


def test_foreground_waits_for_blocking_dependents() -> None:
    blocking = [node("p1", "o"), node("p2", "o", deleting=True)]
    assert describe(process_deleting_owner(owner("foregroundDeletion"), blocking)) == [
        "delete p1 Background"]


def test_foreground_finishes_when_only_non_blocking_dependents_remain() -> None:
    deps = [node("p1", "o", unblocking=("o",))]
    assert describe(process_deleting_owner(owner("foregroundDeletion"), deps)) == [
        "unfinalize rs foregroundDeletion"]
    assert describe(process_deleting_owner(owner("foregroundDeletion"), [])) == [
        "unfinalize rs foregroundDeletion"]


def test_owner_not_deleting_needs_nothing() -> None:
    assert process_deleting_owner(owner("orphan", deleting=False), [node("p", "o")]) == []
