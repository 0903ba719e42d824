"""Which pod events make the agent sync a pod: its own node's pods, except the version
its own status write made (syncing on that echo would find nothing to do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podnet.agent.agent import Agent, PodRecord
from podnet.agent.network import NodeNetwork


def _pod(uid: str, rv: str, node: str = "node-0") -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "namespace": "default",
                         "resourceVersion": rv},
            "spec": {"nodeName": node}}


def _agent(tmp_path: Path) -> Agent:
    return Agent(client=object(), net=NodeNetwork("unit", "node-0", 0),  # type: ignore[arg-type]
                 state_dir=tmp_path, run_dir=tmp_path / "run")


def test_pods_of_this_node_are_queued(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    agent._on_pod_event(_pod("a", "5"))
    agent._on_pod_event(_pod("b", "6", node="node-1"))
    agent._on_pod_event({"metadata": {"uid": "c"}, "spec": {}})  # not bound yet
    assert len(agent.queue) == 1


def test_the_echo_of_our_own_status_write_is_not_queued(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    rec = PodRecord("a", "default", "a", written_rv="7")
    agent.records["a"] = rec
    agent._on_pod_event(_pod("a", "7"))
    assert len(agent.queue) == 0
    agent._on_pod_event(_pod("a", "8"))  # anyone else's change after it
    assert len(agent.queue) == 1
