"""Run components in the foreground: the API server, the controllers, or both (`serve`).

`podnet up` starts `podnet serve` in the background; `podnet apiserver` and
`podnet controllers` run one component each, talking only through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.cli.paths import ClusterPaths
from podnet.util.heap import keep_frozen
from podnet.util.tasks import cancel_and_wait

log = logging.getLogger("podnet.serve")

# The host end of the node link: where pods reach the API server (the `kubernetes`
# Service's endpoint). See docs/architecture.md, "Network layout".
DEFAULT_ADVERTISE_ADDRESS = "10.250.0.1"


@dataclass
class ServeOptions:
    paths: ClusterPaths
    host: str = "127.0.0.1"
    port: int = 6443
    store_url: str = ""
    advertise_address: str = DEFAULT_ADVERTISE_ADDRESS
    controllers: bool = True
    apiserver: bool = True
    agent: bool = True
    node_name: str = "node-0"
    node_index: int = 0
    kubeconfig: Path | None = None  # for `controllers` alone


def _write_status(paths: ClusterPaths, components: dict[str, Any]) -> None:
    tmp = paths.status_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "components": components}, indent=1))
    tmp.replace(paths.status_file)


async def build_apiserver(opts: ServeOptions) -> Any:
    """An ApiServer with PKI, authentication and ServiceAccount token signing set up."""
    from podnet.apiserver import authn, pki
    from podnet.apiserver.app import ApiServer, ServerConfig
    from podnet.cli import kubeconfig
    from podnet.store.url import open_store

    paths = opts.paths
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    (paths.state_dir / "data").mkdir(exist_ok=True)
    keys = await asyncio.to_thread(pki.ensure_pki, paths.state_dir,
                                   extra_ips=(opts.advertise_address,))
    issuer = authn.TokenIssuer(keys.sa_key_pem)
    static = authn.load_token_file(paths.token_file) if paths.token_file.exists() else {}
    store = open_store(opts.store_url or paths.store_url)
    server = ApiServer(
        store,
        ServerConfig(host=opts.host, port=opts.port),
        ssl_context=pki.server_ssl_context(keys),
    )

    async def still_valid(namespace: str, sa_name: str, sa_uid: str, pod_name: str | None,
                          pod_uid: str | None) -> bool:
        return await _binding_valid(server, namespace, sa_name, sa_uid, pod_name, pod_uid)

    server.authenticator = authn.Authenticator(static_tokens=static, token_issuer=issuer,
                                               still_valid=still_valid)
    server.token_issuer = issuer
    agent_ssl = pki.client_ssl_context(keys, admin=True)

    async def node_proxy(request: Any, info: Any, pod: dict[str, Any]) -> Any:
        """pods/{log,exec,attach,portforward}: relay to the agent serving the pod's node."""
        from podnet.api.errors import StatusError, service_unavailable
        from podnet.apiserver import nodeproxy

        node_name = (pod.get("spec") or {}).get("nodeName", "")
        nodes = server.registry.get("", "v1", "nodes")
        assert nodes is not None
        try:
            node = await server.storage.get(nodes, None, node_name)
        except StatusError:
            raise service_unavailable(f'node "{node_name}" not found') from None
        url = ((node.get("metadata") or {}).get("annotations") or {}).get(
            "podnet.io/agent-endpoint")
        if not url:
            raise service_unavailable(f'no node agent is serving node "{node_name}"')
        return await nodeproxy.proxy_pod_stream(request, info, pod, url, agent_ssl)

    server.node_proxy = node_proxy
    kubeconfig.write_admin_kubeconfig(
        paths.kubeconfig, f"https://{opts.host}:{opts.port}", keys,
        paths.context_name, paths.context_name)
    return server


async def _binding_valid(server: Any, namespace: str, sa_name: str, sa_uid: str,
                         pod_name: str | None, pod_uid: str | None) -> bool:
    """A ServiceAccount token stays valid while its ServiceAccount (and bound pod) exist."""
    if not await _exists_with_uid(server, "serviceaccounts", namespace, sa_name, sa_uid):
        return False
    return not pod_name or await _exists_with_uid(server, "pods", namespace, pod_name,
                                                   pod_uid or "")


async def _exists_with_uid(server: Any, plural: str, namespace: str, name: str,
                           uid: str) -> bool:
    from podnet.api.errors import StatusError

    rt = server.registry.get("", "v1", plural)
    try:
        obj = await server.storage.get(rt, namespace, name)
    except StatusError:
        return False
    return not uid or obj["metadata"].get("uid") == uid


async def run_controllers(opts: ServeOptions, stop: asyncio.Event) -> None:
    """Run the controller manager; if it fails, log it and start it again (with back-off)
    rather than taking the API server down with it."""
    from podnet.client.rest import ApiClient
    from podnet.controllers.manager import ControllerManager

    kubeconfig_path = opts.kubeconfig or opts.paths.kubeconfig
    delay = 0.5
    while not stop.is_set():
        client = ApiClient.from_kubeconfig(str(kubeconfig_path))
        try:
            manager = ControllerManager(
                client, apiserver_address=(opts.advertise_address, opts.port))
            await manager.run(stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("component=controllers event=failed restart_in=%.1fs", delay)
        finally:
            await client.close()
        if stop.is_set():
            break
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 10.0)


# The agent's tmpfs (kernel/mounts.py): ~10 KB per pod, so 110 pods fit many times over.
RUN_DIR_MB = 64


def node_network(opts: ServeOptions) -> Any:
    """This cluster's node: the host routes the Service and LoadBalancer ranges to it, so
    the host reaches ClusterIPs and LoadBalancer IPs through the node's proxy."""
    from podnet.agent.network import NodeNetwork

    return NodeNetwork(cluster=opts.paths.name, node_name=opts.node_name,
                       node_index=opts.node_index,
                       extra_host_routes=("10.96.0.0/12", "10.251.0.0/24"))


def agent_port(api_port: int) -> int:
    """The agent's port: 10250 for the default API port 6443, shifted alike for others so
    several clusters on one machine do not collide."""
    return api_port + (10250 - 6443)


async def run_agent(opts: ServeOptions, stop: asyncio.Event,
                    on_network: Any = None) -> None:
    """The node agent and its HTTPS endpoint; on stop, every pod and the node network go."""
    from podnet.agent.agent import Agent
    from podnet.agent.network import ensure_node
    from podnet.agent.server import AgentServer, server_ssl_context
    from podnet.apiserver import pki
    from podnet.cli.dnsrunner import run_dns
    from podnet.client.rest import ApiClient
    from podnet.kernel import mounts
    from podnet.proxy import hostports
    from podnet.proxy.proxier import Proxier
    from podnet.proxy.ruleset import NodeInfo

    keys = await asyncio.to_thread(pki.ensure_pki, opts.paths.state_dir,
                                   extra_ips=(opts.advertise_address,))
    client = ApiClient.from_kubeconfig(str(opts.kubeconfig or opts.paths.kubeconfig))
    net = node_network(opts)
    port = agent_port(opts.port)
    run_dir = opts.paths.agent_run_dir
    mounts.ensure_tmpfs(run_dir, RUN_DIR_MB)
    agent = Agent(client, net, opts.paths.state_dir / "agent", agent_port=port,
                  ca_pem=keys.ca_cert_pem, run_dir=run_dir)
    endpoint = AgentServer(agent, server_ssl_context(keys.server_cert_path,
                                                     keys.server_key_path, keys.ca_cert_pem),
                           "127.0.0.1", port)
    # The node's Service proxy (kube-proxy's role) runs beside the agent, in its process:
    # a component of its own that only shares the node network namespace.
    proxier = Proxier(client, net.netns, NodeInfo(node_ip=str(net.node_ip),
                                                   node_name=net.node_name))
    proxy_task: asyncio.Task[None] | None = None
    dns_task: asyncio.Task[None] | None = None
    try:
        await ensure_node(net)
        if on_network is not None:
            await on_network(str(net.host_ip))
        try:
            await hostports.install(net.cluster, net.host_link, str(net.node_ip))
        except Exception:
            log.exception("component=proxy event=hostports-failed")
        proxy_task = asyncio.create_task(proxier.run(stop))
        dns_task = asyncio.create_task(run_dns(client, str(net.host_ip), stop,
                                               pods=agent.pods))
        await endpoint.start()
        await agent.run(stop)
    finally:
        await endpoint.stop()
        for task in (proxy_task, dns_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        with contextlib.suppress(Exception):
            await hostports.remove(net.cluster)
        await proxier.shutdown()
        await agent.shutdown(remove_everything=True)
        mounts.unmount(run_dir)
        await client.close()


def _agent_running(paths: ClusterPaths) -> int | None:
    """The PID of this cluster's agent process if one still runs (checked by cmdline)."""
    from podnet.cli.cluster import _alive

    try:
        pid = int((paths.state_dir / "agent.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"agent" in args and str(paths.state_dir).encode() in args and _alive(pid):
        return pid
    return None


async def supervise_agent(opts: ServeOptions, stop: asyncio.Event, listen: Any) -> None:
    """Start `podnet agent` (or keep the one still running from before a crash), restart
    it if it dies, and on stop SIGTERM it by PID and wait while it removes its pods."""
    import sys

    from podnet.agent.network import ensure_node
    from podnet.cli.cluster import _alive

    paths = opts.paths
    net = node_network(opts)
    await ensure_node(net)
    await listen(str(net.host_ip))
    pid = _agent_running(paths)
    delay = 0.5
    while not stop.is_set():
        if pid is None:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "podnet.cli.main", "agent", "--name", paths.name,
                "--state-dir", str(paths.state_dir), "--port", str(opts.port),
                "--node-name", opts.node_name, "--node-index", str(opts.node_index),
                stdin=asyncio.subprocess.DEVNULL)
            pid = proc.pid
            (paths.state_dir / "agent.pid").write_text(str(pid))
        while not stop.is_set() and _alive(pid):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        if not stop.is_set():
            log.error("component=agent event=exited pid=%d restart_in=%.1fs", pid, delay)
            pid = None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10.0)
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(600):
            if not _alive(pid):
                break
            await asyncio.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (paths.state_dir / "agent.pid").unlink()


async def supervise_controllers(opts: ServeOptions, stop: asyncio.Event) -> None:
    """Run `podnet controllers` as a child that dies with this process (it holds no state
    worth outliving a crash: a restarted serve starts a new one); restart it if it dies,
    and on stop SIGTERM it by PID and wait for it."""
    import sys

    paths = opts.paths
    delay = 0.5
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "podnet.cli.main", "controllers", "--name", paths.name,
            "--state-dir", str(paths.state_dir), "--port", str(opts.port),
            "--die-with-parent", str(os.getpid()), stdin=asyncio.subprocess.DEVNULL)
        (paths.state_dir / "controllers.pid").write_text(str(proc.pid))
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(exited, 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            break
        log.error("component=controllers event=exited code=%s restart_in=%.1fs",
                  proc.returncode, delay)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 10.0)
    with contextlib.suppress(FileNotFoundError):
        (paths.state_dir / "controllers.pid").unlink()


async def serve(opts: ServeOptions) -> int:
    """Run until SIGTERM/SIGINT; then stop components in reverse order."""
    paths = opts.paths
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    components: dict[str, Any] = {}

    def publish() -> None:
        # The status file is the cluster's: only the process with the API server writes
        # it, not the agent or controllers it runs as children.
        if opts.apiserver:
            _write_status(paths, components)

    server = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if opts.apiserver:
            server = await build_apiserver(opts)
            await server.start()
            components["apiserver"] = {"state": "running",
                                       "address": f"https://{opts.host}:{opts.port}"}
            publish()
        if opts.controllers and server is not None:
            # Their own process: a burst of pods is bound (and controllers re-plan) on the
            # other core's spare time, not between the API server's requests.
            tasks.append(asyncio.create_task(supervise_controllers(opts, stop)))
            components["controllers"] = {"state": "running"}
            publish()
        elif opts.controllers:
            tasks.append(asyncio.create_task(run_controllers(opts, stop)))
            components["controllers"] = {"state": "running"}
            publish()
        if opts.agent and server is not None:
            # Beside an API server the agent runs as its own process, as a kubelet does:
            # a second core for pod work, and pods that outlive a crash of this one.
            tasks.append(asyncio.create_task(supervise_agent(opts, stop, server.listen_also)))
            components["agent"] = {"state": "running", "node": opts.node_name}
            publish()
        elif opts.agent:
            tasks.append(asyncio.create_task(run_agent(opts, stop)))
            components["agent"] = {"state": "running", "node": opts.node_name}
            publish()
        # Big informer caches (controllers, agent) would make every full GC a long pause.
        heap_task = asyncio.create_task(keep_frozen(stop))
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        heap_task.cancel()
        for t in done:
            if t is not waiter and t.exception() is not None:
                log.error("component failed: %r", t.exception())
                components["failed"] = {"state": "failed", "error": str(t.exception())}
                publish()
        stop.set()
    finally:
        stop.set()
        if tasks:
            # Let components finish cleanly (the agent removes pods and the node network).
            await asyncio.wait(tasks, timeout=30)
        await cancel_and_wait(tasks)
        if server is not None:
            await server.stop()
        if opts.apiserver:
            with contextlib.suppress(FileNotFoundError):
                paths.status_file.unlink()
    return 0
