"""The node agent's control loop: register the node, run the pods bound to it.

For every pod bound to this node the agent (1) makes the sandbox: an IP, a network
namespace, the pod's files and volumes; (2) asks `lifecycle.plan` what to start or stop
and does it through the `Runtime`; (3) writes the status `podstatus.build` computes.
Everything it learns comes from the API (informers) and from the runtime's exit
notifications; everything it says goes back through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import shutil
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from podnet.agent import (
    envvars,
    images,
    lifecycle,
    network,
    nodestatus,
    podfiles,
    podstatus,
    probes,
    volumes,
)
from podnet.agent.ipam import Ipam
from podnet.agent.runtime import ContainerSpec, Mount, Runtime, StartError
from podnet.api import errors
from podnet.api.resources import Registry, ResourceType
from podnet.client.informer import Informer, by_namespace, by_uid
from podnet.client.rest import ApiClient
from podnet.client.workqueue import WorkQueue
from podnet.kernel.nshelper import NetnsHelper
from podnet.util.clock import Clock, SystemClock, rfc3339
from podnet.util.files import write_file
from podnet.util.tasks import cancel_and_wait

log = logging.getLogger("podnet.agent")

HEARTBEAT_SECONDS = 10.0
HOST_RESOLV_CONF = "/etc/resolv.conf"
WORKERS = 24  # pods synced at once
AGENT_PORT = 10250
# Where the API server finds this node's agent (the kubelet's :10250 role).
AGENT_ENDPOINT_ANNOTATION = "podnet.io/agent-endpoint"


def _rt(reg: Registry, group: str, plural: str) -> ResourceType:
    rt = reg.get(group, "v1", plural)
    assert rt is not None
    return rt


@dataclass
class PodRecord:
    """What the agent holds for one pod between syncs (the kubelet's pod workers' memory)."""

    uid: str
    namespace: str
    name: str
    ip: str = ""
    netns: str = ""
    files_dir: Path | None = None
    backoff: dict[str, Any] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    last_term: dict[str, lifecycle.RuntimeState] = field(default_factory=dict)
    start_errors: dict[str, tuple[str, str, datetime]] = field(default_factory=dict)
    stopping: set[str] = field(default_factory=set)
    trackers: dict[str, dict[Any, probes.ProbeTracker]] = field(default_factory=dict)
    probe_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    last_status: dict[str, Any] | None = None
    written_rv: str = ""  # the resourceVersion our last status write made
    env_services: list[dict[str, Any]] | None = None


class Agent:
    def __init__(
        self,
        client: ApiClient,
        net: network.NodeNetwork,
        state_dir: Path,
        *,
        clock: Clock | None = None,
        agent_port: int = AGENT_PORT,
        ca_pem: bytes = b"",
        run_dir: Path | None = None,
    ) -> None:
        """`state_dir` keeps what may grow (logs, emptyDir and other volumes); `run_dir`
        (default `state_dir/run`; the caller mounts a tmpfs there) the small files made
        for every pod and container: runtime state, resolv.conf/hosts/hostname, the
        ServiceAccount token, the IPAM record."""
        self.client = client
        self.net = net
        self.state_dir = state_dir
        self.run_dir = run_dir or state_dir / "run"
        self.node_ip = str(net.node_ip)  # as text, as the pod status and env vars want it
        self.clock = clock or SystemClock()
        self.agent_port = agent_port
        self.ca_pem = ca_pem
        reg = Registry.builtin()
        self.pods_rt = _rt(reg, "", "pods")
        self.nodes_rt = _rt(reg, "", "nodes")
        self.services_rt = _rt(reg, "", "services")
        self.cm_rt = _rt(reg, "", "configmaps")
        self.secrets_rt = _rt(reg, "", "secrets")
        self.runtime = Runtime(self.run_dir / "runtime", on_exit=self._on_exit,
                               log_dir=state_dir / "logs")
        self.ipam = Ipam(net.pod_cidr, self.run_dir / "ipam.json")
        # Sandboxes are made in a helper process, under a GIL other than the loop's.
        self.nshelper = NetnsHelper()
        self.records: dict[str, PodRecord] = {}
        self.queue = WorkQueue()
        # Every pod, not only this node's (a kubelet watches `spec.nodeName=<node>`): the
        # DNS feeder beside the agent needs them all, and one watch decoded once serves
        # both (`run_dns(pods=agent.pods)`). The agent keeps to its own by nodeName.
        self.pods = Informer(client, self.pods_rt)
        self.pods.cache.add_index("uid", by_uid)
        self.services = Informer(client, self.services_rt)
        # Each container start reads its namespace's Services (their env vars): by index,
        # not by a scan of every Service in the cluster.
        self.services.cache.add_index("namespace", by_namespace)
        self.configmaps = Informer(client, self.cm_rt)
        self.secrets = Informer(client, self.secrets_rt)
        self._tasks: list[asyncio.Task[Any]] = []
        self._resolv: tuple[tuple[int, int], str] | None = None

    # ---- start-up -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await network.ensure_node(self.net)
        await self.register_node()
        self.pods.on_change(self._on_pod_event)
        informers = [self.pods, self.services, self.configmaps, self.secrets]
        self._tasks = [asyncio.create_task(i.run()) for i in informers]
        self._tasks += [asyncio.create_task(self._heartbeats(stop)),
                        asyncio.create_task(self._workers())]
        for inf in informers:
            await asyncio.wait_for(inf.synced.wait(), 30)
        await self.adopt()
        self.runtime.warm()  # the first pods after `podnet up` do not wait for it
        await self.nshelper.start()
        await self.client.warm(WORKERS)  # one connection per worker's status update
        await stop.wait()

    async def shutdown(self, remove_everything: bool) -> None:
        """Stop the loops; with `remove_everything`, also every pod and the node network."""
        await cancel_and_wait(self._tasks)
        await self.nshelper.close()
        for rec in list(self.records.values()):
            for t in [*rec.probe_tasks.values(), *rec.tasks]:
                t.cancel()
        if remove_everything:
            await self.runtime.stop_all(grace_seconds=2)
            for rec in list(self.records.values()):
                await self._teardown(rec)
            for uid in list(self.ipam.in_use()):
                self.ipam.release(uid)
            await network.teardown_node(self.net)
        else:
            self.runtime.detach()

    def _node_object(self, prev: dict[str, Any] | None) -> dict[str, Any]:
        node = nodestatus.build_node(
            name=self.net.node_name, node_index=self.net.node_index,
            pod_cidr=str(self.net.pod_cidr), internal_ip=str(self.net.node_ip),
            hostname=socket.gethostname(), capacity=_capacity(), agent_port=self.agent_port,
            now=self.clock.now(), prev=prev, **_machine_ids())
        node.setdefault("metadata", {}).setdefault("annotations", {})[
            AGENT_ENDPOINT_ANNOTATION] = f"https://127.0.0.1:{self.agent_port}"
        return node

    async def register_node(self) -> None:
        try:
            prev: dict[str, Any] | None = await self.client.get(self.nodes_rt,
                                                                self.net.node_name)
        except errors.StatusError as err:
            if err.code != 404:
                raise
            prev = None
        node = self._node_object(prev)
        if prev is None:
            stored = await self.client.create(self.nodes_rt, node)
        else:
            node["metadata"]["resourceVersion"] = prev["metadata"]["resourceVersion"]
            stored = await self.client.update(self.nodes_rt, node)
        stored["status"] = node["status"]
        await self.client.update_status(self.nodes_rt, stored)

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS)
            if stop.is_set():
                return
            try:
                node = await self.client.get(self.nodes_rt, self.net.node_name)
                await self.client.update_status(self.nodes_rt,
                                                nodestatus.heartbeat(node, self.clock.now()))
            except errors.StatusError as err:
                log.warning("component=agent event=heartbeat-failed err=%s", err)
                if err.code == 404:
                    with contextlib.suppress(errors.StatusError):
                        await self.register_node()

    # ---- pods -----------------------------------------------------------------------
    def _on_pod_event(self, *args: Any) -> None:
        for obj in args:
            if isinstance(obj, dict) and self._on_this_node(obj):
                meta = obj.get("metadata") or {}
                uid = meta.get("uid")
                rec = self.records.get(uid or "")
                if rec is not None and rec.written_rv and \
                        meta.get("resourceVersion") == rec.written_rv:
                    continue  # the version our own status write made: nothing new
                if uid:
                    self.queue.add(uid)

    def _on_this_node(self, pod: dict[str, Any]) -> bool:
        return (pod.get("spec") or {}).get("nodeName") == self.net.node_name

    def _on_exit(self, state: Any) -> None:
        self.queue.add(state.pod_uid)

    async def _workers(self, n: int = WORKERS) -> None:
        async def worker() -> None:
            while True:
                uid = await self.queue.get()
                try:
                    delay = await self.sync(uid)
                    self.queue.forget(uid)
                    if delay is not None:
                        self.queue.add_after(uid, delay)
                except errors.StatusError as err:
                    log.info("component=agent event=sync-retry pod=%s err=%s", uid, err)
                    self.queue.add_rate_limited(uid)
                except Exception:
                    log.exception("component=agent event=sync-failed pod=%s", uid)
                    self.queue.add_rate_limited(uid)
                finally:
                    self.queue.done(uid)

        await asyncio.gather(*(worker() for _ in range(n)))

    def _pod_by_uid(self, uid: str) -> dict[str, Any] | None:
        for pod in self.pods.cache.by_index("uid", uid):
            if self._on_this_node(pod):
                return pod
        return None

    async def adopt(self) -> None:
        """After a restart: keep running containers of pods still bound here (same
        processes, same IPs), remove the rest: processes, namespaces, addresses."""
        adopted = self.runtime.adopt()
        live = {(p.get("metadata") or {}).get("uid") for p in self.pods.cache.list()
                if self._on_this_node(p)}
        for state in adopted:
            if state.pod_uid not in live:
                await self.runtime.stop(state.pod_uid, state.name, grace_seconds=2)
                self.runtime.remove_pod(state.pod_uid)
            else:
                rec = self._record_for(state.pod_uid)
                if rec is not None and not rec.netns:
                    ip = self.ipam.ip_of(state.pod_uid)
                    if ip is not None:
                        rec.ip = str(ip)
                        rec.netns = self.net.pod_netns(state.pod_uid)
                        rec.files_dir = self.run_dir / "pods" / state.pod_uid
        for uid in list(self.ipam.in_use()):
            if uid not in live:
                await network.delete_pod_network(self.net, uid)
                self.ipam.release(uid)
        for live_uid in live:
            if live_uid:
                self.queue.add(live_uid)

    def _record_for(self, uid: str) -> PodRecord | None:
        pod = self._pod_by_uid(uid)
        if pod is None:
            return None
        rec = self.records.get(uid)
        if rec is None:
            meta = pod["metadata"]
            rec = PodRecord(uid, meta["namespace"], meta["name"])
            self.records[uid] = rec
        return rec

    def runtime_states(self, pod: dict[str, Any], rec: PodRecord
                       ) -> dict[str, lifecycle.RuntimeState]:
        """The runtime's facts in the shape lifecycle and podstatus want."""
        out: dict[str, lifecycle.RuntimeState] = {}
        spec = pod.get("spec") or {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            name = c.get("name", "")
            restarts = rec.restarts.get(name, 0)
            last = rec.last_term.get(name)
            if name in rec.start_errors:
                reason, message, when = rec.start_errors[name]
                out[name] = lifecycle.RuntimeState(
                    "waiting", reason=reason, message=message, start_error=reason,
                    finished_at=when, restart_count=restarts, last_termination=last)
                continue
            cs = self.runtime.state(rec.uid, name)
            if cs is None:
                continue
            if cs.running:
                out[name] = lifecycle.RuntimeState(
                    "running", pid=cs.pid, started_at=cs.started_at, restart_count=restarts,
                    last_termination=last, stopping=name in rec.stopping)
            else:
                special = cs.reason if cs.reason in ("StartError", "ContainerStatusUnknown",
                                                     "ContainerCannotRun") else None
                out[name] = lifecycle.RuntimeState(
                    "exited", pid=cs.pid, started_at=cs.started_at, finished_at=cs.finished_at,
                    exit_code=cs.exit_code, restart_count=restarts, reason=special,
                    message=cs.message or None, last_termination=last,
                    stopping=name in rec.stopping)
        return out

    def probe_results(self, rec: PodRecord) -> dict[str, probes.ContainerProbes]:
        return {name: probes.ContainerProbes.of(trackers)
                for name, trackers in rec.trackers.items()}

    async def sync(self, uid: str) -> float | None:
        """Bring one pod to its wanted state; returns seconds until it wants another look."""
        pod = self._pod_by_uid(uid)
        rec = self.records.get(uid)
        if pod is None:
            if rec is not None:
                await self._teardown(rec)
            return None
        rec = self._record_for(uid)
        assert rec is not None
        meta = pod["metadata"]
        now = self.clock.now()
        phase = (pod.get("status") or {}).get("phase")
        if not rec.netns and not meta.get("deletionTimestamp") and phase not in (
                "Succeeded", "Failed"):
            await self._make_sandbox(pod, rec)
        states = self.runtime_states(pod, rec)
        plan = lifecycle.plan(pod, states, self.probe_results(rec), now, rec.backoff)
        rec.backoff = dict(plan.backoff)
        await self._do_all(pod, rec, plan.actions)
        states = self.runtime_states(pod, rec)
        status = podstatus.build(pod, states, self.probe_results(rec), rec.ip or None,
                                 self.node_ip, now, pod.get("status") or {},
                                 waiting=plan.waiting)
        if status != rec.last_status:
            try:
                written = await self.client.patch(
                    self.pods_rt, rec.name, {"status": status}, rec.namespace,
                    patch_type="merge", subresource="status", field_manager="podnet-agent")
                rec.last_status = status
                rec.written_rv = (written.get("metadata") or {}).get("resourceVersion", "")
            except errors.StatusError as err:
                if err.code != 404:
                    raise
        if plan.ready_to_delete:
            with contextlib.suppress(errors.StatusError):
                await self.client.delete(self.pods_rt, rec.name, rec.namespace, grace_period=0,
                                         preconditions={"uid": uid})
            return None
        if plan.next_wakeup is not None:
            return max((plan.next_wakeup - now).total_seconds(), 0.05)
        return None

    async def _make_sandbox(self, pod: dict[str, Any], rec: PodRecord) -> None:
        ip = self.ipam.allocate(rec.uid)
        pn = await network.create_pod_network(self.net, rec.uid, ip, self.nshelper.run_groups)
        rec.ip, rec.netns = str(pn.ip), pn.netns
        files = self.run_dir / "pods" / rec.uid
        files.mkdir(parents=True, exist_ok=True)
        rec.files_dir = files
        await self._write_pod_files(pod, rec)

    async def _write_pod_files(self, pod: dict[str, Any], rec: PodRecord) -> None:
        assert rec.files_dir is not None
        spec = pod.get("spec") or {}
        files = str(rec.files_dir)
        write_file(f"{files}/resolv.conf", podfiles.resolv_conf(pod, self._host_resolv_conf()))
        write_file(f"{files}/hosts", podfiles.hosts_file(pod, [rec.ip]))
        write_file(f"{files}/hostname", podfiles.hostname_file(pod))
        if spec.get("automountServiceAccountToken", True) is not False:
            sa_dir = rec.files_dir / "serviceaccount"
            sa_dir.mkdir(exist_ok=True)
            token = await self._token(pod)
            for fname, data in podfiles.service_account_files(
                    token, self.ca_pem, rec.namespace).items():
                write_file(sa_dir / fname, data)

    def _host_resolv_conf(self) -> str:
        """The host's /etc/resolv.conf (dnsPolicy Default; ClusterFirst's options), read
        again only when it changed: every pod's files start from it."""
        try:
            st = os.stat(HOST_RESOLV_CONF)
        except FileNotFoundError:
            return ""
        key = (st.st_mtime_ns, st.st_size)
        if self._resolv is None or self._resolv[0] != key:
            with open(HOST_RESOLV_CONF, encoding="utf-8", errors="replace") as f:
                self._resolv = (key, f.read())
        return self._resolv[1]

    async def _token(self, pod: dict[str, Any], audience: str | None = None,
                     seconds: int = 3607) -> str:
        meta = pod["metadata"]
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else [],
                         "expirationSeconds": seconds,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                            "name": meta["name"], "uid": meta["uid"]}}}
        resp = await self.client.request(
            "POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token",
            body=body)
        return str(resp["status"]["token"])

    async def _do_all(self, pod: dict[str, Any], rec: PodRecord, actions: list[Any]) -> None:
        hooks: dict[str, list[Any]] = {}
        for action in actions:
            if isinstance(action, lifecycle.Start):
                await self._start(pod, rec, action.container, action.is_init)
            elif isinstance(action, lifecycle.Kill):
                rec.stopping.add(action.container)
                task = asyncio.create_task(self._kill(rec, action,
                                                      hooks.pop(action.container, [])))
                rec.tasks.add(task)
                task.add_done_callback(rec.tasks.discard)
            else:
                hooks.setdefault(getattr(action, "container", ""), []).append(action)

    async def _kill(self, rec: PodRecord, kill: Any, hooks: list[Any]) -> None:
        """preStop hooks, then SIGTERM, then SIGKILL after the grace period."""
        deadline = asyncio.get_running_loop().time() + max(kill.grace, 0)
        for hook in hooks:
            left = max(deadline - asyncio.get_running_loop().time(), 0.0)
            with contextlib.suppress(Exception):
                if isinstance(hook, lifecycle.ExecHook):
                    proc = await self.runtime.exec(rec.uid, hook.container, list(
                        images.exec_argv(self.image_of(rec.uid, hook.container), hook.command,
                                         host_program)))
                    await asyncio.wait_for(proc.wait(), left)
                elif isinstance(hook, lifecycle.SleepHook):
                    await asyncio.sleep(min(hook.seconds, left))
        left = max(deadline - asyncio.get_running_loop().time(), 0.0)
        try:
            await self.runtime.stop(rec.uid, kill.container, left)
        finally:
            rec.stopping.discard(kill.container)
            task = rec.probe_tasks.pop(kill.container, None)
            if task is not None:
                task.cancel()
            self.queue.add(rec.uid)

    async def _start(self, pod: dict[str, Any], rec: PodRecord, name: str,
                     is_init: bool) -> None:
        spec = pod.get("spec") or {}
        containers = spec.get("initContainers" if is_init else "containers") or []
        container = next(c for c in containers if c.get("name") == name)
        now = self.clock.now()
        previous = self.runtime.state(rec.uid, name)
        if previous is not None and not previous.running:
            rec.restarts[name] = rec.restarts.get(name, 0) + 1
            rec.last_term[name] = lifecycle.RuntimeState(
                "exited", pid=previous.pid, started_at=previous.started_at,
                finished_at=previous.finished_at, exit_code=previous.exit_code,
                message=previous.message or None)
        elif name in rec.start_errors:
            rec.restarts[name] = rec.restarts.get(name, 0)
        rec.start_errors.pop(name, None)
        if rec.env_services is None:
            rec.env_services = self.services.cache.by_index("namespace", rec.namespace)
        try:
            env = envvars.container_env(
                pod, container, rec.env_services, configmaps=self._configmap,
                secrets=self._secret, pod_ips=[rec.ip], host_ips=[self.node_ip],
                kubernetes_service=self._kubernetes_service())
        except envvars.ContainerConfigError as err:
            rec.start_errors[name] = ("CreateContainerConfigError", str(err), now)
            return
        resolved = images.resolve(container, host_program, env=env)
        if isinstance(resolved, images.Unrunnable):
            rec.start_errors[name] = (resolved.reason, resolved.message, now)
            return
        assert rec.files_dir is not None
        files = str(rec.files_dir)
        mounts = [Mount(f"{files}/resolv.conf", "/etc/resolv.conf", True),
                  Mount(f"{files}/hosts", "/etc/hosts"),
                  Mount(f"{files}/hostname", "/etc/hostname")]
        sa_dir = f"{files}/serviceaccount"
        if os.path.exists(sa_dir):
            mounts.append(Mount(sa_dir, "/var/run/secrets/kubernetes.io/serviceaccount", True))
        vol_paths: dict[str, Path] = {}
        try:
            if spec.get("volumes"):  # most pods have none: no thread hop for nothing
                vol_paths = await asyncio.to_thread(
                    volumes.materialise, self.volumes_dir(rec.uid), pod,
                    volumes.VolumeContext(configmaps=self._configmap, secrets=self._secret,
                                          pod_ips=(rec.ip,), host_ips=(self.node_ip,)))
        except volumes.VolumeError as err:
            rec.start_errors[name] = ("CreateContainerConfigError", str(err), now)
            return
        for vm in container.get("volumeMounts") or []:
            host = vol_paths.get(vm.get("name", ""))
            if host is not None:
                sub = vm.get("subPath")
                mounts.append(Mount(str(host / sub if sub else host), vm["mountPath"],
                                    bool(vm.get("readOnly"))))
        sc = {**(spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
        cspec = ContainerSpec(
            pod_uid=rec.uid, name=name, argv=tuple(resolved.argv),
            env=tuple(env.items()), netns=f"/run/netns/{rec.netns}",
            hostname=podfiles.hostname(pod), mounts=tuple(mounts),
            cwd=container.get("workingDir"), uid=sc.get("runAsUser"), gid=sc.get("runAsGroup"),
            # Each container has its own /run (and /tmp), as an image would: mount points for
            # the ServiceAccount directory are then made inside the container, not the host.
            tmpfs=PRIVATE_DIRS, stdin=bool(container.get("stdin")),
            stdin_once=bool(container.get("stdinOnce")), tty=bool(container.get("tty")))
        try:
            await self.runtime.start(cspec)
        except StartError as err:
            log.info("component=agent event=start-error pod=%s/%s container=%s err=%s",
                     rec.namespace, rec.name, name, err)
        self._start_probes(pod, rec, container)

    def image_of(self, uid: str, container: str) -> str:
        """The image a container of a pod bound here was started from ("" if unknown)."""
        pod = self._pod_by_uid(uid) or {}
        spec = pod.get("spec") or {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            if c.get("name") == container:
                return str(c.get("image") or "")
        return ""

    def _kubernetes_service(self) -> dict[str, Any] | None:
        return self.services.cache.get("default/kubernetes")

    def _configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.cache.get(f"{namespace}/{name}")

    def _secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.cache.get(f"{namespace}/{name}")

    # ---- probes ---------------------------------------------------------------------
    def _start_probes(self, pod: dict[str, Any], rec: PodRecord,
                      container: dict[str, Any]) -> None:
        name = container.get("name", "")
        old = rec.probe_tasks.pop(name, None)
        if old is not None:
            old.cancel()
        specs: dict[probes.ProbeKind, probes.ProbeSpec] = {}
        for kind in probes.ProbeKind:
            spec = probes.ProbeSpec.from_container(container, kind)
            if spec is not None:
                specs[kind] = spec
        if not specs:
            rec.trackers.pop(name, None)
            return
        started = self.clock.now()
        rec.trackers[name] = {k: probes.ProbeTracker.start(v, started)
                              for k, v in specs.items()}
        rec.probe_tasks[name] = asyncio.create_task(self._probe_loop(rec, name, container))

    async def _probe_loop(self, rec: PodRecord, name: str, container: dict[str, Any]
                          ) -> None:
        """Run this container's probes when due; wake the pod's sync on any change."""
        async def connect(host: str, port: int) -> tuple[asyncio.StreamReader,
                                                         asyncio.StreamWriter]:
            return await asyncio.open_connection(host, port)

        async def exec_fn(argv: Any, timeout: float) -> int:
            proc = await self.runtime.exec(rec.uid, name, list(images.exec_argv(
                self.image_of(rec.uid, name), argv, host_program)))
            try:
                return await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                return 1

        while True:
            trackers = rec.trackers.get(name) or {}
            dues = [d for d in (t.next_due() for t in trackers.values()) if d is not None]
            if not dues:
                return
            await asyncio.sleep(max((min(dues) - self.clock.now()).total_seconds(), 0.0))
            state = self.runtime.state(rec.uid, name)
            if state is None or not state.running:
                return
            started = (probes.ProbeKind.STARTUP not in trackers
                       or probes.ContainerProbes.of(trackers).startup == probes.Result.SUCCESS)
            active = set(probes.active_kinds(container, started))
            before = probes.ContainerProbes.of(trackers)
            for kind, tracker in list(trackers.items()):
                if kind not in active or not tracker.due(self.clock.now()):
                    continue
                ok, message = await probes.run_probe(tracker.spec, rec.ip, connect, exec_fn)
                trackers[kind] = tracker.record(ok, message, self.clock.now())
            if probes.ContainerProbes.of(trackers) != before:
                self.queue.add(rec.uid)

    async def _teardown(self, rec: PodRecord) -> None:
        for t in [*rec.probe_tasks.values(), *rec.tasks]:
            t.cancel()
        for st in self.runtime.states(rec.uid):
            if st.running:
                await self.runtime.stop(rec.uid, st.name, 0)
        self.runtime.remove_pod(rec.uid)
        await network.delete_pod_network(self.net, rec.uid)
        self.ipam.release(rec.uid)
        if rec.files_dir is not None:
            shutil.rmtree(rec.files_dir, ignore_errors=True)
        shutil.rmtree(self.volumes_dir(rec.uid).parent, ignore_errors=True)
        self.records.pop(rec.uid, None)

    def volumes_dir(self, uid: str) -> Path:
        """On disk, as the kubelet keeps them: an emptyDir may hold gigabytes."""
        return self.state_dir / "pods" / uid / "volumes"


def _private_dirs() -> tuple[str, ...]:
    """/run always; /tmp unless podnet itself (its Python, its package) lives under it,
    which a fresh tmpfs there would hide from the container's own programs."""
    import podnet

    ours = (sys.prefix, sys.executable, str(Path(podnet.__file__).resolve().parent))
    if any(p == "/tmp" or p.startswith("/tmp/") for p in ours):
        return ("/run",)
    return ("/run", "/tmp")


PRIVATE_DIRS = _private_dirs()


def host_program(name: str) -> str | None:
    """Where a host program is. `python`/`python3` images get podnet's own interpreter,
    whose environment has the official `kubernetes` client, so `load_incluster_config()`
    works in a pod as it does in a real cluster's python image with the client installed."""
    if name in ("python", "python3"):
        return sys.executable
    return shutil.which(name)


def _capacity() -> dict[str, Any]:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": os.cpu_count() or 1, "memory": mem, "pods": 110}


def _machine_ids() -> dict[str, str]:
    def read(p: str) -> str:
        try:
            return Path(p).read_text().strip()
        except OSError:
            return ""

    return {"machine_id": read("/etc/machine-id"),
            "boot_id": read("/proc/sys/kernel/random/boot_id"),
            "kernel_version": platform.release()}


def now_str(clock: Clock) -> str:
    return rfc3339(clock.now())
