"""The `podnet` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from podnet.cli.paths import DEFAULT_NAME, ClusterPaths


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default=os.environ.get("PODNET_NAME", DEFAULT_NAME),
                   help="cluster name (default: %(default)s)")
    p.add_argument("--state-dir", default=os.environ.get("PODNET_STATE_DIR"),
                   help="where the cluster keeps its files (default: "
                        "~/.local/state/podnet/<name>)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="podnet", description=(
        "Kubernetes service networking on one Linux machine, for real."))
    sub = ap.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the cluster in the background (safe to repeat)")
    _common(up)
    up.add_argument("-f", "--filename", action="append", default=[],
                    help="manifest file or folder to apply after start (repeatable)")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=6443)
    up.add_argument("--store", default="", help="store URL (default sqlite in the state dir)")
    up.add_argument("--no-kubeconfig-merge", action="store_true",
                    help="do not add a podnet-<name> context to ~/.kube/config")

    down = sub.add_parser("down", help="stop everything the cluster started")
    _common(down)
    down.add_argument("--purge", action="store_true", help="also delete the state directory")

    st = sub.add_parser("status", help="show components and their health")
    _common(st)
    st.add_argument("-o", "--output", choices=("table", "json"), default="table")

    kc = sub.add_parser("kubeconfig", help="print the admin kubeconfig path")
    _common(kc)

    for name, helptext in (("serve", "run all components in the foreground"),
                           ("apiserver", "run the API server alone in the foreground")):
        s = sub.add_parser(name, help=helptext)
        _common(s)
        s.add_argument("--host", default="127.0.0.1")
        s.add_argument("--port", type=int, default=6443)
        s.add_argument("--store", default="", help="store URL: sqlite:///path, memory://")
        s.add_argument("-v", "--verbose", action="store_true")

    agent = sub.add_parser("agent", help="run a node agent alone in the foreground")
    _common(agent)
    agent.add_argument("--kubeconfig", help="kubeconfig of the API server to use")
    agent.add_argument("--port", type=int, default=6443, help="the API server's port")
    agent.add_argument("--node-name", default="node-0")
    agent.add_argument("--node-index", type=int, default=0)
    agent.add_argument("-v", "--verbose", action="store_true")

    dns = sub.add_parser("dns", help="run the cluster DNS server alone in the foreground")
    _common(dns)
    dns.add_argument("--kubeconfig", help="kubeconfig of the API server to use")
    dns.add_argument("--listen", default="127.0.0.1", help="address to serve on")
    dns.add_argument("--dns-port", type=int, default=53)
    dns.add_argument("-v", "--verbose", action="store_true")

    ctl = sub.add_parser("controllers", help="run the controllers alone in the foreground")
    _common(ctl)
    ctl.add_argument("--kubeconfig", help="kubeconfig of the API server to use")
    ctl.add_argument("--port", type=int, default=6443)
    ctl.add_argument("--die-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)
    ctl.add_argument("-v", "--verbose", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    paths = ClusterPaths.of(args.name, args.state_dir)
    if args.command == "up":
        return cmd_up(args, paths)
    if args.command == "down":
        return cmd_down(args, paths)
    if args.command == "status":
        return cmd_status(args, paths)
    if args.command == "kubeconfig":
        print(paths.kubeconfig)
        return 0 if paths.kubeconfig.exists() else 1
    if args.command == "dns":
        return cmd_dns(args, paths)
    return cmd_foreground(args, paths)


# How long a thread may hold the GIL while another waits for it. podnet's daemons run an
# event loop beside helper threads (namespace and netlink work, SQLite commits); each
# time the loop thread comes back from a syscall it waits for the GIL, up to the whole
# interval. At Python's 5 ms, a 100-pod burst's p99 to Running was 4-7% longer (two
# interleaved pairs of runs, bench/pods' burst).
SWITCH_INTERVAL = 0.0005


def _run(coro: object) -> int:
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        import uvloop

        return int(uvloop.run(coro))  # type: ignore[arg-type]
    except ImportError:
        return int(asyncio.run(coro))  # type: ignore[arg-type]


def cmd_foreground(args: argparse.Namespace, paths: ClusterPaths) -> int:
    from podnet.cli.serve import ServeOptions, serve

    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    opts = ServeOptions(paths, port=args.port)
    if args.command in ("serve", "apiserver"):
        opts.host = args.host
        opts.store_url = args.store
    if args.command == "apiserver":
        opts.controllers = False
        opts.agent = False
    if args.command == "controllers":
        opts.apiserver = False
        opts.agent = False
        opts.kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
        if args.die_with_parent:
            _die_with_parent(args.die_with_parent)
    if args.command == "agent":
        opts.apiserver = False
        opts.controllers = False
        opts.kubeconfig = Path(args.kubeconfig) if args.kubeconfig else None
        opts.node_name = args.node_name
        opts.node_index = args.node_index
    return _run(serve(opts))


def _die_with_parent(parent: int) -> None:
    """SIGTERM this process when `parent` (podnet serve) dies, even by SIGKILL, so a child
    it started is never left behind (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before the prctl took effect
        sys.exit(0)


def cmd_dns(args: argparse.Namespace, paths: ClusterPaths) -> int:
    """`podnet dns`: the DNS component alone (it also runs beside every node)."""
    import signal

    from podnet.cli.dnsrunner import run_dns
    from podnet.client.rest import ApiClient

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        client = ApiClient.from_kubeconfig(args.kubeconfig or str(paths.kubeconfig))
        try:
            # Only a server pods can reach becomes kube-dns's endpoint.
            await run_dns(client, args.listen, stop, args.dns_port,
                          manage_service=not args.listen.startswith("127."))
        finally:
            await client.close()
        return 0

    return _run(go())


def cmd_up(args: argparse.Namespace, paths: ClusterPaths) -> int:
    from rich.console import Console

    from podnet.cli import cluster

    console = Console(stderr=True)
    cfg = cluster.ClusterConfig(args.host, args.port, args.store)
    t0 = time.monotonic()
    with cluster.locked(paths):
        with console.status(f"Starting podnet cluster [bold]{paths.name}[/bold]…"):
            pid, started = cluster.start(paths, cfg)
            try:
                cluster.wait_ready(paths, cluster.ClusterConfig.load(paths), pid)
            except RuntimeError as exc:
                console.print(f"[red]✗[/red] {exc}")
                return 1
        took = time.monotonic() - t0
        if started:
            console.print(f"[green]✓[/green] API server ready at https://{cfg.host}:{cfg.port}"
                          f" ({took:.2f}s, pid {pid})")
        else:
            console.print(f"[green]✓[/green] cluster [bold]{paths.name}[/bold] already running "
                          f"(pid {pid})")
        if not args.no_kubeconfig_merge and not os.environ.get("PODNET_NO_KUBECONFIG_MERGE"):
            from podnet.cli import kubeconfig

            user_cfg = Path(os.environ.get("KUBECONFIG", "").split(":")[0] or
                            Path.home() / ".kube" / "config")
            kubeconfig.merge_into(user_cfg, paths.kubeconfig, paths.context_name,
                                  set_current=True)
            console.print(f"[green]✓[/green] context [bold]{paths.context_name}[/bold] added "
                          f"to {user_cfg}")
    with console.status("Waiting for node-0 and cluster DNS…"):
        ready = _wait_workload_ready(paths)
    if ready:
        console.print("[green]✓[/green] node-0 Ready, cluster DNS serving at 10.96.0.10")
    else:
        console.print("[yellow]![/yellow] node-0 or cluster DNS not ready yet; see "
                      f"`podnet status` and {paths.log_file}")
    if args.filename:
        code = _apply(paths, args.filename, console)
        if code:
            return code
    print(paths.kubeconfig)
    console.print(f"\nUse it:  kubectl --kubeconfig {paths.kubeconfig} get nodes,svc -A\n"
                  f"   or:  export KUBECONFIG={paths.kubeconfig}\n"
                  f"Stop:   podnet down --name {paths.name}")
    return 0


def _wait_workload_ready(paths: ClusterPaths, timeout: float = 30.0) -> bool:
    """Until pods can run and resolve names: node-0 Ready and kube-dns with an endpoint
    (so the first pod a user applies right after `up` finds DNS answering)."""
    from podnet.api.errors import StatusError
    from podnet.api.resources import Registry
    from podnet.client.rest import ApiClient

    reg = Registry.builtin()
    nodes = reg.get("", "v1", "nodes")
    slices = reg.get("discovery.k8s.io", "v1", "endpointslices")
    assert nodes is not None and slices is not None

    async def go() -> bool:
        client = ApiClient.from_kubeconfig(str(paths.kubeconfig))
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    node = await client.get(nodes, "node-0")
                    conds = (node.get("status") or {}).get("conditions") or []
                    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                                for c in conds)
                    dns = await client.get(slices, "kube-dns-podnet", "kube-system")
                    if ready and dns.get("endpoints"):
                        return True
                except StatusError:
                    pass
                await asyncio.sleep(0.1)
            return False
        finally:
            await client.close()

    return asyncio.run(go())


def _apply(paths: ClusterPaths, files: list[str], console: object) -> int:
    from podnet.api.errors import StatusError
    from podnet.cli import manifests
    from podnet.client.rest import ApiClient

    async def go() -> list[str]:
        client = ApiClient.from_kubeconfig(str(paths.kubeconfig))
        try:
            return await manifests.apply_all(client, manifests.load(files))
        finally:
            await client.close()

    try:
        lines = asyncio.run(go())
    except (StatusError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line, file=sys.stderr)
    return 0


def cmd_down(args: argparse.Namespace, paths: ClusterPaths) -> int:
    from podnet.cli import cluster

    with cluster.locked(paths):
        was = cluster.stop(paths)
        # The agent unmounts its tmpfs when it stops; one that was killed could not.
        from podnet.kernel import mounts

        if mounts.fs_type(paths.agent_run_dir) == "tmpfs":
            mounts.unmount(paths.agent_run_dir)
        from podnet.kernel import netnsdir

        netnsdir.release_tmpfs()  # the node's teardown does this; a killed agent could not
    if not os.environ.get("PODNET_NO_KUBECONFIG_MERGE"):
        from podnet.cli import kubeconfig

        user_cfg = Path(os.environ.get("KUBECONFIG", "").split(":")[0] or
                        Path.home() / ".kube" / "config")
        if user_cfg.exists():
            kubeconfig.remove_from(user_cfg, paths.context_name)
    if args.purge:
        shutil.rmtree(paths.state_dir, ignore_errors=True)
    print(f"cluster {paths.name} {'stopped' if was else 'was not running'}"
          + (" and purged" if args.purge else ""), file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace, paths: ClusterPaths) -> int:
    from podnet.cli import cluster

    info = cluster.status(paths)
    if args.output == "json":
        print(json.dumps(info, indent=2))
        return 0 if info["running"] else 1
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not info["running"]:
        console.print(f"cluster [bold]{paths.name}[/bold]: not running")
        return 1
    table = Table(title=f"podnet cluster {paths.name} (pid {info['pid']})")
    table.add_column("COMPONENT")
    table.add_column("STATE")
    table.add_column("DETAIL")
    for comp, st in sorted(info["components"].items()):
        state = st.get("state", "?")
        if comp == "apiserver":
            state = "ready" if st.get("ready") else "not ready"
        table.add_row(comp, state, st.get("address", st.get("detail", st.get("error", ""))))
    console.print(table)
    console.print(f"kubeconfig: {info['kubeconfig']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
