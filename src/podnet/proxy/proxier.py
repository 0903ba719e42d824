"""The proxy's one effectful loop: watch Services and EndpointSlices, program the node.

Informers keep the current objects; any change marks the state dirty; the loop then
computes the whole desired ruleset (`ruleset.build`, pure), turns the difference to what
the kernel holds into one atomic nftables transaction (`ruleset.diff`) and applies it in
the node's network namespace. Bursts coalesce naturally: whatever changed while a sync
ran is picked up by the next one, with no fixed delay. UDP conntrack entries pointing at
removed endpoints are flushed so DNS keeps working across backend changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from podnet.api.resources import Registry, ResourceType
from podnet.client.informer import Informer
from podnet.client.rest import ApiClient
from podnet.kernel.run import run
from podnet.proxy import nft, ruleset
from podnet.proxy.healthcheck import HealthServers, Target
from podnet.proxy.views import Endpoint, ServicePort, endpoints_for

log = logging.getLogger("podnet.proxy")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def _rt(group: str, plural: str) -> ResourceType:
    rt = Registry.builtin().get(group, "v1", plural)
    assert rt is not None
    return rt


def desired(services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]],
            node: ruleset.NodeInfo) -> tuple[ruleset.Ruleset, frozenset[str]]:
    """The ruleset for these objects (pure: what `sync` applies and `trace` explains), and
    the endpoint addresses UDP traffic may reach (for conntrack cleanup)."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sl in slices:
        meta = sl.get("metadata") or {}
        svc_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc_name:
            by_service.setdefault((meta.get("namespace", ""), svc_name), []).append(sl)
    ports: list[ServicePort] = []
    eps: dict[tuple[str, str, str, str], Sequence[Endpoint]] = {}
    for svc in services:
        for port in ServicePort.from_service(svc):
            ports.append(port)
            eps[port.key] = endpoints_for(port, by_service.get((port.namespace, port.name),
                                                              []))
    udp = frozenset(e.ip for p in ports if p.protocol == "UDP" for e in eps[p.key])
    return ruleset.build(ports, eps, node), udp


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
            local = sum(1 for e in eps if e.ready and e.node_name == node_name)
            out[hc] = Target(port.namespace, port.name, local)
    return out


class Proxier:
    def __init__(self, client: ApiClient, netns: str, node: ruleset.NodeInfo) -> None:
        self.client = client
        self.netns = netns
        self.node = node
        self.services = Informer(client, _rt("", "services"))
        self.slices = Informer(client, _rt("discovery.k8s.io", "endpointslices"))
        self.applied: ruleset.Ruleset | None = None
        self.applied_udp: frozenset[str] = frozenset()
        self._dirty = asyncio.Event()
        self.syncs = 0
        self.last_sync_ms = 0.0
        self.synced = asyncio.Event()
        self.health = HealthServers(netns, node.node_ip)

    def _mark(self, *_: Any) -> None:
        self._dirty.set()

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.services.run()), asyncio.create_task(self.slices.run())]
        try:
            await asyncio.wait_for(self.services.synced.wait(), 30)
            await asyncio.wait_for(self.slices.synced.wait(), 30)
            self.services.on_change(self._mark)
            self.slices.on_change(self._mark)
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
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    async def sync(self) -> None:
        self._dirty.clear()
        t0 = time.perf_counter()
        want, udp = desired(self.services.cache.list(), self.slices.cache.list(), self.node)
        # The first sync replaces whatever a previous run left, in one transaction.
        cmds = ruleset.full(want) if self.applied is None else ruleset.diff(self.applied, want)
        if cmds:
            await nft.apply(self.netns, cmds)
        gone_udp = self.applied_udp - udp
        self.applied, self.applied_udp = want, udp
        for ip in sorted(gone_udp):
            await self._flush_udp(ip)
        try:
            await self.health.update(health_targets(
                self.services.cache.list(), self.slices.cache.list(), self.node.node_name))
        except OSError:
            log.exception("component=proxy event=healthcheck-failed")
        self.syncs += 1
        self.last_sync_ms = (time.perf_counter() - t0) * 1e3
        log.info("component=proxy event=sync statements=%d ms=%.1f", len(cmds),
                 self.last_sync_ms)

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
