"""The controller manager: every controller, sharing one set of informers, until told
to stop — podnet's kube-controller-manager (plus the apiserver's `kubernetes` Service
reconciler, which lives here because it only needs the API)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from podnet.api.resources import Registry
from podnet.client.informer import SharedInformers
from podnet.client.rest import ApiClient
from podnet.controllers.base import Controller, Deps, Sleep
from podnet.controllers.common import Clock, SystemClock
from podnet.controllers.deployment import DeploymentController
from podnet.controllers.endpoints_controller import EndpointsController, EndpointSliceController
from podnet.controllers.events import EventRecorder
from podnet.controllers.garbagecollector import GarbageCollector
from podnet.controllers.kubernetes_service import KubernetesServiceController
from podnet.controllers.loadbalancer import LoadBalancerController
from podnet.controllers.namespace import NamespaceController
from podnet.controllers.replicaset import ReplicaSetController
from podnet.controllers.scheduler import SchedulerController
from podnet.controllers.serviceaccount import ServiceAccountController

log = logging.getLogger(__name__)

ALL = (
    "deployment", "replicaset", "endpointslice", "endpoints", "namespace",
    "serviceaccount", "garbagecollector", "kubernetes-service", "service-lb", "scheduler",
)


class ControllerManager:
    """Builds the controllers (their informers are shared), runs them until `stop`.

    `apiserver_address` is (ip, port) of the API server as pods should reach it; without
    it the `kubernetes` Service is not managed. `enabled` picks controllers by name.
    """

    def __init__(
        self,
        client: ApiClient,
        clock: Clock | None = None,
        apiserver_address: tuple[str, int] | None = None,
        *,
        enabled: Sequence[str] = ALL,
        workers: int = 2,
        sleep: Sleep = asyncio.sleep,
        registry: Registry | None = None,
        host: str = "",
    ) -> None:
        self.client = client
        self.clock = clock or SystemClock()
        self.workers = workers
        self.informers = SharedInformers(client, sleep=sleep)
        registry = registry or Registry.builtin()

        def deps(component: str) -> Deps:
            recorder = EventRecorder(client, component, self.clock, host=host)
            return Deps(client, self.informers, self.clock, recorder, sleep)

        unknown = set(enabled) - set(ALL)
        if unknown:
            raise ValueError(f"unknown controllers: {sorted(unknown)}; known: {list(ALL)}")
        self.controllers: list[Controller] = []
        if "deployment" in enabled:
            self.controllers.append(DeploymentController(deps("deployment-controller")))
        if "replicaset" in enabled:
            self.controllers.append(ReplicaSetController(deps("replicaset-controller")))
        if "endpointslice" in enabled:
            self.controllers.append(EndpointSliceController(deps("endpointslice-controller")))
        if "endpoints" in enabled:
            self.controllers.append(EndpointsController(deps("endpoint-controller")))
        if "namespace" in enabled:
            self.controllers.append(NamespaceController(deps("namespace-controller"), registry))
        if "serviceaccount" in enabled:
            self.controllers.append(ServiceAccountController(deps("serviceaccount-controller")))
        if "garbagecollector" in enabled:
            self.controllers.append(
                GarbageCollector(deps("garbage-collector-controller"), registry=registry)
            )
        if "scheduler" in enabled:
            self.controllers.append(SchedulerController(deps("default-scheduler")))
        if "service-lb" in enabled:
            self.controllers.append(LoadBalancerController(deps("service-lb-controller")))
        if "kubernetes-service" in enabled and apiserver_address is not None:
            ip, port = apiserver_address
            self.controllers.append(
                KubernetesServiceController(deps("kube-apiserver"), ip, port)
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Start informers, wait for them to sync, run workers until `stop` is set."""
        self.informers.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            synced = asyncio.ensure_future(self.informers.wait_synced())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({synced, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not synced.done():
                synced.cancel()
                stopped.cancel()
                return
            log.info("component=controller-manager event=synced controllers=%d",
                     len(self.controllers))
            for c in self.controllers:
                if isinstance(c, KubernetesServiceController):
                    c.start()
                tasks.append(asyncio.create_task(c.run(self.workers), name=c.name))
            if not stopped.done():
                await stopped
        finally:
            for c in self.controllers:
                c.queue.shutdown()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.informers.stop()
