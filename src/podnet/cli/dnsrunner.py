"""Run cluster DNS beside a node: informers feed the zone, the server answers on the host
end of the node link, and `kube-system/kube-dns` (10.96.0.10) leads there.

The kube-dns Service has no selector (the server is not a pod here); its EndpointSlice
is written by this runner, as the EndpointSlice mirroring of a hand-made Endpoints would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import Callable
from typing import Any

from podnet.api.errors import StatusError
from podnet.api.resources import Registry, ResourceType
from podnet.client.informer import Informer
from podnet.client.rest import ApiClient
from podnet.util.tasks import cancel_and_wait

log = logging.getLogger("podnet.dns")

DNS_SERVICE_IP = "10.96.0.10"
MANAGER = "podnet-dns"


def _rt(group: str, plural: str) -> ResourceType:
    rt = Registry.builtin().get(group, "v1", plural)
    assert rt is not None
    return rt


def kube_dns_objects(address: str, port: int = 53) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Service and EndpointSlice that make 10.96.0.10 reach the DNS server (pure)."""
    labels = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
              "kubernetes.io/name": "CoreDNS"}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels,
                     "annotations": {"prometheus.io/scrape": "false"}},
        "spec": {"clusterIP": DNS_SERVICE_IP, "clusterIPs": [DNS_SERVICE_IP],
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP",
                            "targetPort": port}]},
    }
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns-podnet", "namespace": "kube-system",
                     "labels": {"kubernetes.io/service-name": "kube-dns",
                                "endpointslice.kubernetes.io/managed-by": "podnet-dns"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True, "serving": True,
                                                              "terminating": False}}],
        "ports": [{"name": "dns", "port": port, "protocol": "UDP"},
                  {"name": "dns-tcp", "port": port, "protocol": "TCP"}],
    }
    return service, endpoint_slice


async def ensure_kube_dns(client: ApiClient, address: str, port: int = 53) -> None:
    service, endpoint_slice = kube_dns_objects(address, port)
    for rt, obj in ((_rt("", "services"), service),
                    (_rt("discovery.k8s.io", "endpointslices"), endpoint_slice)):
        await client.patch(rt, obj["metadata"]["name"], obj, "kube-system",
                           patch_type="apply", field_manager=MANAGER, force=True)


def _modified(handler: Callable[[str, Any], None], _old: Any, new: Any) -> None:
    handler("MODIFIED", new)


async def run_dns(client: ApiClient, host: str, stop: asyncio.Event, port: int = 53,
                  *, manage_service: bool = True, pods: Informer | None = None) -> None:
    """Serve DNS on host:port until `stop`; with `manage_service`, point kube-dns here.

    `pods`: an informer of every pod that someone else runs (the agent's, in its process),
    used instead of a watch of our own."""
    from podnet.dns.records import Zone, ZoneFeeder
    from podnet.dns.server import DnsServer

    zone = Zone()
    feeder = ZoneFeeder(zone)
    informers = [
        (Informer(client, _rt("", "services")), feeder.on_service),
        (Informer(client, _rt("discovery.k8s.io", "endpointslices")), feeder.on_slice),
        (pods or Informer(client, _rt("", "pods")), feeder.on_pod),
    ]
    for inf, handler in informers:
        inf.on_add(functools.partial(handler, "ADDED"))
        inf.on_update(functools.partial(_modified, handler))
        inf.on_delete(functools.partial(handler, "DELETED"))
    server = DnsServer(zone, host, port)
    # Answers come from a worker process the server starts (and stops in `finally`);
    # SERVFAIL until the first full sync, never a premature NXDOMAIN.
    await server.start()
    log.info("component=dns event=serving address=%s:%d worker_pid=%s", host, server.port,
             server.worker.pid if server.worker else None)
    tasks = [asyncio.create_task(inf.run()) for inf, _ in informers if inf is not pods]
    try:
        for inf, _ in informers:
            await asyncio.wait_for(inf.synced.wait(), 30)
        feeder.mark_synced()
        # The zone is now mostly long-lived objects: keep the collector off them (this
        # raised the server's QPS by about a quarter in bench/dns).
        gc.collect()
        gc.freeze()
        if manage_service:
            try:
                await ensure_kube_dns(client, host, port)
            except StatusError:
                log.exception("component=dns event=kube-dns-service-failed")
        await stop.wait()
    finally:
        await cancel_and_wait(tasks)
        with contextlib.suppress(Exception):
            await server.stop()
