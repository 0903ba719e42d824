"""podnet's kube-scheduler: binds pending pods to nodes through the `binding` subresource.

It lives in the control plane, as kube-scheduler does, not in a node agent: several
agents can then share one API server without racing to bind the same pod, and a burst
of pods is scheduled on the control plane's core while the node's core starts them.

One work key stands for "the pending pods": a round decides every pending pod in creation
order (each decision sees the ones before it, so pods spread as the pure
`scheduling.pick` says). As in kube-scheduler, deciding and binding are separate cycles:
a decided pod is *assumed* on its node (later decisions count it there) and its binding
is posted in the background, so the next round never waits for the last one's bindings.
Before this, a burst of 100 pods went as rounds of 1, 2 and 97 pods, each waiting for
all its bindings: the first pods were bound 30 ms after they were seen, the rest 280 ms.
An assumption ends when the informer shows the pod bound or gone, or when its binding
fails (the pod is then decided again).
A pod that fits nowhere gets kube-scheduler's `FailedScheduling` event and a
`PodScheduled=False` (`Unschedulable`) condition with the same message, once per message;
it is tried again when nodes change. A bound pod gets the `Scheduled` event, posted once
the bindings go quiet (`_post_events`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from podnet.api.errors import StatusError
from podnet.controllers.base import NODES, PODS, Controller, Deps
from podnet.controllers.common import JSON, name_of, namespace_of, rfc3339
from podnet.controllers.scheduling import node_ready, pick

log = logging.getLogger(__name__)

ROUND = "pending"  # the one work key
BIND_PARALLEL = 32
# Scheduled events wait until no binding has been posted for this long (seconds), or the
# oldest has waited EVENT_MAX_DELAY: see `_post_events`.
EVENT_QUIET = 1.0
EVENT_MAX_DELAY = 5.0


def _pending(pod: Mapping[str, Any]) -> bool:
    return not (pod.get("spec") or {}).get("nodeName")


def _created(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


class SchedulerController(Controller):
    name = "default-scheduler"

    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self.pods = deps.informers.informer(PODS)
        self.nodes = deps.informers.informer(NODES)
        self.pods.on_add(self._pod_changed)
        self.pods.on_update(lambda _old, new: self._pod_changed(new))
        # A pod leaving frees a place; a node arriving or changing may fit a waiting pod.
        self.pods.on_delete(self._pod_deleted)
        self.nodes.on_add(lambda _obj: self._round_if_waiting())
        self.nodes.on_update(self._node_changed)
        self._unschedulable: dict[str, str] = {}  # pod uid → the message last reported
        self._assumed: dict[str, JSON] = {}  # pod uid → the pod as assumed, nodeName set
        self._binds = asyncio.Semaphore(BIND_PARALLEL)
        self._tasks: set[asyncio.Task[None]] = set()
        self._events: list[tuple[JSON, str, float]] = []  # Scheduled events not posted yet
        self._posting = False
        self._last_bind = 0.0  # loop time of the last binding posted
        self.event_quiet = EVENT_QUIET
        self.event_max_delay = EVENT_MAX_DELAY

    def _pod_changed(self, pod: JSON) -> None:
        if _pending(pod):
            self.queue.add(ROUND)
        else:
            self._assumed.pop(_uid(pod), None)

    def _pod_deleted(self, pod: JSON) -> None:
        self._assumed.pop(_uid(pod), None)
        self._round_if_waiting()

    def _round_if_waiting(self) -> None:
        if self._unschedulable:
            self.queue.add(ROUND)

    def _node_changed(self, old: JSON, new: JSON) -> None:
        # Heartbeats change only timestamps; what matters to a decision is the rest.
        if self._unschedulable and (old.get("spec") != new.get("spec") or node_ready(old) !=
                                    node_ready(new) or _labels(old) != _labels(new)):
            self.queue.add(ROUND)

    async def run(self, workers: int = 1) -> None:
        # Connections for the bindings in flight at once, before the first burst needs them.
        await self.client.warm(BIND_PARALLEL)
        await super().run(workers)

    async def sync(self, key: str) -> None:
        pending = sorted((p for p in self.pods.cache.list()
                          if _pending(p) and _uid(p) not in self._assumed), key=_created)
        live = {_uid(p) for p in pending}
        for uid in list(self._unschedulable):
            if uid not in live:
                del self._unschedulable[uid]
        if not pending:
            return
        nodes = self.nodes.cache.list()
        placed = [p for p in self.pods.cache.list()
                  if not _pending(p) and _uid(p) not in self._assumed]
        placed += self._assumed.values()
        failures: list[tuple[JSON, str]] = []
        for pod in pending:
            decision = pick(pod, nodes, placed)
            if decision.node is not None:
                assumed = {**pod, "spec": {**(pod.get("spec") or {}),
                                           "nodeName": decision.node}}
                self._assumed[_uid(pod)] = assumed
                placed.append(assumed)
                self._spawn(self._binding_cycle(pod, decision.node))
            elif decision.message:
                failures.append((pod, decision.message))
        for pod, message in failures:
            await self._unschedulable_pod(pod, message)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _binding_cycle(self, pod: JSON, node: str) -> None:
        """Post one binding; on failure forget the assumption and decide again."""
        uid = _uid(pod)
        try:
            async with self._binds:
                ok = await self._bind(pod, node)
        except Exception as err:  # the API refused or is away: decide again, later
            log.info("component=scheduler event=bind-failed pod=%s/%s err=%s",
                     namespace_of(pod), name_of(pod), err)
            self._assumed.pop(uid, None)
            self.queue.add_rate_limited(ROUND)
            return
        if not ok:
            self._assumed.pop(uid, None)
            self.queue.add(ROUND)
            return
        # Events are for people reading `kubectl describe`: one poster sends them in
        # order, after the bindings (kube-scheduler's broadcaster sends them async too).
        now = asyncio.get_running_loop().time()
        self._last_bind = now
        self._events.append((pod, node, now))
        if not self._posting:
            self._posting = True
            self._spawn(self._post_events())

    async def _post_events(self) -> None:
        """Post the Scheduled events once the bindings have gone quiet.

        The API server is one event loop that every component shares. Posted in the middle
        of a burst, a Scheduled event per pod was a quarter of the burst's writes, and the
        pods' own writes (bindings, the agent's status) queued behind them. So events wait
        until no binding has been posted for `event_quiet` seconds, and never longer than
        `event_max_delay` after their binding: `kubectl describe` shows them a second
        later, and a steady stream of pods still gets its events.
        """
        loop = asyncio.get_running_loop()
        try:
            while self._events:
                now = loop.time()
                wait = min(self._last_bind + self.event_quiet,
                           self._events[0][2] + self.event_max_delay) - now
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                pod, node, _ = self._events.pop(0)
                await self.recorder.normal(
                    pod, "Scheduled",
                    f"Successfully assigned {namespace_of(pod)}/{name_of(pod)} to {node}")
        finally:
            self._posting = False

    async def _bind(self, pod: JSON, node: str) -> bool:
        """Post the binding; False when the pod went away or was bound meanwhile."""
        ns, name = namespace_of(pod), name_of(pod)
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": ns,
                             "uid": (pod.get("metadata") or {}).get("uid")},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            await self.client.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/binding",
                                      body=body)
        except StatusError as err:
            if err.code in (404, 409):
                return False  # deleted, or bound by someone else meanwhile
            raise
        self._unschedulable.pop(str((pod.get("metadata") or {}).get("uid")), None)
        return True

    async def _unschedulable_pod(self, pod: JSON, message: str) -> None:
        uid = str((pod.get("metadata") or {}).get("uid"))
        if self._unschedulable.get(uid) == message:
            return
        self._unschedulable[uid] = message
        await self.recorder.warning(pod, "FailedScheduling", message)
        cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                "lastTransitionTime": rfc3339(self.clock.now()), "reason": "Unschedulable",
                "message": message}
        try:
            # Strategic merge: conditions merge by type, so nothing else written meanwhile
            # (by a kubelet, say) is lost.
            await self.client.patch(PODS, name_of(pod), {"status": {"conditions": [cond]}},
                                    namespace_of(pod), patch_type="strategic",
                                    subresource="status", field_manager=self.name)
        except StatusError as err:
            if err.code != 404:
                raise


def _uid(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def _labels(node: Mapping[str, Any]) -> Any:
    return (node.get("metadata") or {}).get("labels")
