"""The proxy's one effectful loop: watch Services and EndpointSlices, program the node.

Informers keep the current objects; a change to a Service or one of its EndpointSlices
marks that Service dirty. Each sync takes the dirty Services, asks the change tracker
(`tracker.py`, pure) which of their ports changed, turns those into one nftables
transaction (`tables.py`, pure) and applies it in the node's network namespace — so a
sync's cost follows what changed, not the cluster's size. Bursts coalesce with no fixed
delay: whatever changes while a sync runs is picked up by the next one.

The first sync (and any sync after a failed apply) is a full one: the table is replaced
(stale chains of a previous run go with it) and loaded in bounded transactions; only
then is `synced` set. UDP conntrack entries pointing at removed endpoints are flushed so
DNS keeps working across backend changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from podnet.api.resources import Registry, ResourceType
from podnet.client.informer import Informer, object_key
from podnet.client.rest import ApiClient
from podnet.kernel.run import run
from podnet.proxy import ir, nft, ruleset, tables
from podnet.proxy.healthcheck import HealthServers, Target
from podnet.proxy.tracker import ServiceTracker, health_target
from podnet.proxy.views import ServicePort, endpoints_for
from podnet.util.tasks import cancel_and_wait

log = logging.getLogger("podnet.proxy")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Hold off the cyclic garbage collector. A cold sync makes a few hundred thousand
    small objects that live on (pieces, map elements); while they are made, the collector
    would rescan the whole heap — informer caches included — again and again, which
    measured twice the sync's Python time at 10,000 Services. Nothing the sync makes is
    cyclic, so collection can wait until it is done."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _rt(group: str, plural: str) -> ResourceType:
    rt = Registry.builtin().get(group, "v1", plural)
    assert rt is not None
    return rt


def _slice_service(obj: Mapping[str, Any]) -> str | None:
    """`ns/name` of the Service an EndpointSlice belongs to (by its label)."""
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{meta.get('namespace', '')}/{name}" if name else None


def desired(services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]],
            node: ruleset.NodeInfo) -> ir.Ruleset:
    """The whole ruleset for these objects (pure: what the proxier programs, piece by
    piece, and what `trace` explains)."""
    by_service: dict[str, list[Mapping[str, Any]]] = {}
    for sl in slices:
        key = _slice_service(sl)
        if key:
            by_service.setdefault(key, []).append(sl)
    t = ServiceTracker(node)
    for svc in services:
        meta = svc.get("metadata") or {}
        t.changes(str(meta.get("namespace") or "default"), str(meta.get("name") or ""), svc,
                  by_service.get(object_key(svc), []))
    return ruleset.assemble(node, t.pieces.values())


def health_targets(services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]],
                   node_name: str) -> dict[int, Target]:
    """healthCheckNodePort → what it reports: ready endpoints of the Service on this node."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc_name:
            by_service.setdefault((meta.get("namespace", ""), svc_name), []).append(sl)
    out: dict[int, Target] = {}
    for svc in services:
        for port in ServicePort.from_service(svc):
            hc = port.health_check_node_port
            if not hc or hc in out:
                continue
            eps = endpoints_for(port, by_service.get((port.namespace, port.name), []))
            out[hc] = health_target(port, eps, node_name)
    return out


class Proxier:
    def __init__(self, client: ApiClient, netns: str, node: ruleset.NodeInfo) -> None:
        self.client = client
        self.netns = netns
        self.node = node
        self.services = Informer(client, _rt("", "services"))
        self.slices = Informer(client, _rt("discovery.k8s.io", "endpointslices"))
        self.slices.cache.add_index("service", lambda o: [k] if (k := _slice_service(o))
                                    else [])
        self.tracker = ServiceTracker(node)
        self.tables = tables.Tables(node)
        self.needs_full = True  # the first sync, and any after a failed apply
        self.applied_udp: frozenset[str] = frozenset()
        self._pending: set[str] = set()
        self._dirty = asyncio.Event()
        self.syncs = 0
        self.last_sync_ms = 0.0
        self.synced = asyncio.Event()
        self.health = HealthServers(netns, node.node_ip)

    def _mark(self, key: str | None) -> None:
        if key:
            self._pending.add(key)
            self._dirty.set()

    def _slice_updated(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self._mark(_slice_service(old))  # a relabelled slice leaves its old Service
        self._mark(_slice_service(new))

    def _watch(self) -> None:
        self.services.on_add(lambda o: self._mark(object_key(o)))
        self.services.on_update(lambda _old, new: self._mark(object_key(new)))
        self.services.on_delete(lambda o: self._mark(object_key(o)))
        self.slices.on_add(lambda o: self._mark(_slice_service(o)))
        self.slices.on_update(self._slice_updated)
        self.slices.on_delete(lambda o: self._mark(_slice_service(o)))

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.services.run()), asyncio.create_task(self.slices.run())]
        try:
            await asyncio.wait_for(self.services.synced.wait(), 30)
            await asyncio.wait_for(self.slices.synced.wait(), 30)
            self._watch()
            await self.sync()  # the initial full sync, before anything is served
            self.synced.set()
            while not stop.is_set():
                waiter = asyncio.create_task(stop.wait())
                dirty = asyncio.create_task(self._dirty.wait())
                await asyncio.wait({waiter, dirty}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                dirty.cancel()
                if stop.is_set():
                    break
                try:
                    await self.sync()
                except Exception:
                    log.exception("component=proxy event=sync-failed")
                    await asyncio.sleep(0.5)
                    self._dirty.set()
        finally:
            await cancel_and_wait(tasks)

    def _changed(self) -> Iterator[tuple[ir.PortKey, ir.Piece | None]]:
        """The tracker's answer for every Service marked since the last sync, computed
        as it is pulled (a cold sync overlaps this with the kernel's work)."""
        pending, self._pending = sorted(self._pending), set()
        for i, key in enumerate(pending):
            ns, _, name = key.partition("/")
            try:
                found = self.tracker.changes(ns, name, self.services.cache.get(key),
                                             self.slices.cache.by_index("service", key))
            except ValueError as err:
                # One Service we cannot serve (say, an unknown protocol) must not stop
                # the others; its ports keep what they had until it changes again.
                log.warning("component=proxy event=service-skipped service=%s error=%s",
                            key, err)
                continue
            except BaseException:
                self._pending.update(pending[i:])  # not done: the next sync retries them
                raise
            try:
                yield from found.items()
            except GeneratorExit:  # a full sync stopped early (its apply failed)
                self._pending.update(pending[i + 1:])
                raise

    def _everything(self) -> Iterator[ir.Piece]:
        """Every piece, for a full sync: the marked Services' fresh ones first (made
        lazily), then those of the Services that did not change."""
        fresh: set[ir.PortKey] = set()
        for key, pc in self._changed():
            fresh.add(key)
            if pc is not None:
                yield pc
        for key, pc in list(self.tracker.pieces.items()):
            if key not in fresh:
                yield pc

    async def sync(self) -> None:
        self._dirty.clear()
        t0 = time.perf_counter()
        statements = 0
        changed = 0
        try:
            if self.needs_full:
                counts: list[int] = []
                scripts = self.tables.load(self._everything())
                with paused_gc():
                    await nft.apply_each(self.netns, tables.texts(scripts, counts))
                statements = sum(counts)
                self.needs_full = False
            else:
                changes = dict(self._changed())
                changed = len(changes)
                script = self.tables.update(changes)
                statements = tables.statement_count(script)
                if script:
                    await nft.apply(self.netns, tables.text(script))
        except BaseException:
            self.needs_full = True  # the model no longer says what the kernel holds
            raise
        udp = self.tracker.udp_endpoints()
        gone_udp, self.applied_udp = self.applied_udp - udp, udp
        for ip in sorted(gone_udp):
            await self._flush_udp(ip)
        try:
            await self.health.update(self.tracker.health_targets())
        except OSError:
            log.exception("component=proxy event=healthcheck-failed")
        self.syncs += 1
        self.last_sync_ms = (time.perf_counter() - t0) * 1e3
        log.info("component=proxy event=sync ports=%d changed=%d statements=%d ms=%.1f",
                 len(self.tracker.pieces), changed, statements, self.last_sync_ms)

    async def _flush_udp(self, ip: str) -> None:
        """Stale UDP conntrack entries would keep sending to a gone endpoint."""
        with contextlib.suppress(Exception):
            await run("ip", "netns", "exec", self.netns, "conntrack", "-D", "-p", "udp",
                      "--reply-src", ip, check=False)

    async def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self.health.close()
        with contextlib.suppress(Exception):
            await nft.delete_table(self.netns)
