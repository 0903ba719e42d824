"""bench/pods: how fast pods start on one node, and how many it holds.

Against a real `podnet up`: bursts of 100 pods (registry.k8s.io/pause) created at once
through the API; for each pod, create → Running and create → Ready, from a watch; the
wall time until all are Running (pods per second); then a node filled to its 110-pod
capacity. ROUNDS bursts, each once the last one's pods are gone and the node has settled
(`settle`): the first right after `podnet up` (what a user who applies at once sees)
and the median over all rounds (this machine's speed varies from minute to minute; one
burst is one sample). Peers in the same
run: the physical floor of this design on this machine, 100 pod sandboxes (netns, veth,
routes) and pause containers made at once by the agent's own kernel and runtime code,
with no API server, scheduler or status writes; and a fixed Python loop, timed before and
after, that shows how fast this (shared, virtual) machine was at the time.

    .venv/bin/python -m bench.pods [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from bench.api import PODNET, env, pct, rss_mb
from bench.machine import machine

PORT = 18443
CLUSTER = "benchpods"
ROUNDS = 5
# The client's connections, opened (TLS handshakes done) before the burst, as those of
# kubectl or a controller are: the burst measures pod work, not connection set-up.
CONNECTIONS = 64


def cpu_reference() -> float:
    """Milliseconds for a fixed pure-Python loop (1,000,000 additions), the best of five:
    how fast this shared, virtual machine runs Python right now (it has been seen to
    vary by a factor of two within minutes)."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": "pods"}},
            "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                     "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}


def ctx_for(state: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(state / "pki" / "admin.crt"), str(state / "pki" / "admin.key"))
    return ctx


async def warm(s: aiohttp.ClientSession, url: str, n: int) -> None:
    """Open `n` keep-alive connections: n requests in flight at once, each one a GET."""
    async def one() -> None:
        async with s.get(url, params={"limit": "1"}) as r:
            await r.read()

    await asyncio.gather(*(one() for _ in range(n)))


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine since boot."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)


async def settle(cluster: str, timeout: float = 30.0) -> float:
    """Wait until the node has torn down the last round's pods (no pod network namespace
    of `cluster` left) and the machine has been nearly idle (≤ 10% busy) for 0.2 s, so
    each round starts as the first does. Deleting a veth waits out RCU grace periods (~35
    ms each), so a node is still tearing down for a while after the API shows the pods
    gone. Returns the seconds waited."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    prefix, node = f"podnet-{cluster}-", f"podnet-{cluster}-node-"
    while loop.time() - t0 < timeout:
        names = [n for n in os.listdir("/run/netns") if n.startswith(prefix)]
        busy0, total0 = _busy_jiffies()
        await asyncio.sleep(0.2)
        busy1, total1 = _busy_jiffies()
        quiet = (busy1 - busy0) <= 0.1 * max(total1 - total0, 1)
        if quiet and all(n.startswith(node) for n in names):
            break
    return loop.time() - t0


async def burst(state: Path, n: int, prefix: str) -> dict[str, Any]:
    base = f"https://127.0.0.1:{PORT}/api/v1/namespaces/default/pods"
    conn = aiohttp.TCPConnector(ssl=ctx_for(state), limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    ready: dict[str, float] = {}
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        async with s.get(base) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        done = asyncio.Event()

        async def watch() -> None:
            async with s.get(base, params={"watch": "true", "resourceVersion": rv,
                                           "labelSelector": "bench=pods"}) as resp:
                async for line in resp.content:
                    now = time.perf_counter()
                    obj = orjson.loads(line)["object"]
                    name = obj["metadata"]["name"]
                    st = obj.get("status") or {}
                    if st.get("phase") == "Running":
                        running.setdefault(name, now)
                    if any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in st.get("conditions") or []):
                        ready.setdefault(name, now)
                    if len(ready) >= n and len(running) >= n:
                        done.set()
                        return

        watcher = asyncio.create_task(watch())
        await warm(s, base, CONNECTIONS)
        await settle(CLUSTER)
        t0 = time.perf_counter()

        async def create(i: int) -> None:
            name = f"{prefix}{i}"
            created[name] = time.perf_counter()
            async with s.post(base, json=pod(name)) as r:
                if r.status != 201:
                    raise RuntimeError(await r.text())

        await asyncio.gather(*(create(i) for i in range(n)))
        try:
            await asyncio.wait_for(done.wait(), 120)
        finally:
            watcher.cancel()
        wall = max(running.values()) - t0
        to_running = [running[k] - created[k] for k in created]
        to_ready = [ready[k] - created[k] for k in created]
        # Clean up for the next round.
        async with s.delete(base, params={"labelSelector": "bench=pods",
                                          "gracePeriodSeconds": "0"}) as r:
            await r.read()
        for _ in range(600):
            async with s.get(base, params={"labelSelector": "bench=pods"}) as r:
                if not (await r.json())["items"]:
                    break
            await asyncio.sleep(0.1)
    return {"wall": wall, "running": to_running, "ready": to_ready}


async def floor(n: int, root: Path) -> float:
    """The physical floor of this design: n pod sandboxes (network namespace, veth,
    address, routes) and n pause containers made at once by the agent's own kernel and
    runtime code, with no API server, scheduler, informer or status write in the way.
    Everything is removed again before the cluster starts."""
    from podnet.agent import network
    from podnet.agent.runtime import PAUSE_MODULE, ContainerSpec, Runtime
    from podnet.cli.serve import RUN_DIR_MB
    from podnet.kernel import mounts

    net = network.NodeNetwork("benchfloor", "node-0", 0)
    uids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(n)]
    # The agent's layout: runtime files on a tmpfs, logs on disk.
    run_dir = root / "floor" / "run"
    mounts.ensure_tmpfs(run_dir, RUN_DIR_MB)
    runtime = Runtime(run_dir / "runtime", log_dir=root / "floor" / "logs")
    await network.ensure_node(net)
    try:
        t0 = time.perf_counter()

        async def one(i: int, uid: str) -> None:
            pn = await network.create_pod_network(net, uid, net.pod_cidr[i + 2])
            await runtime.start(ContainerSpec(uid, "pause", (sys.executable, "-m", PAUSE_MODULE),
                                              netns=f"/run/netns/{pn.netns}"))

        await asyncio.gather(*(one(i, u) for i, u in enumerate(uids)))
        took = time.perf_counter() - t0
        await runtime.stop_all(grace_seconds=1)
        runtime.detach()
        await asyncio.gather(*(network.delete_pod_network(net, u) for u in uids))
    finally:
        await network.teardown_node(net)
        mounts.unmount(run_dir)
    return took


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="podnet-bench-pods-"))
    state = root / "state"
    rows: list[tuple[str, str, str, str]] = []

    def add(what: str, value: str, goal: str, peer: str = "") -> None:
        rows.append((what, value, goal, peer))
        print(f"  {what:<44} {value:>16}   goal {goal:<14} {peer}", flush=True)

    try:
        ref_before = cpu_reference()
        floor_s = asyncio.run(floor(100, root))
        subprocess.run([*PODNET, "up", "--name", CLUSTER, "--state-dir", str(state),
                        "--port", str(PORT), "--no-kubeconfig-merge"], check=True,
                       capture_output=True, env=env())
        pid = int((state / "podnet.pid").read_text())
        # The client shares the two cores with the cluster, so it uses what podnet's own
        # components use (uvloop, orjson): a lighter observer, as kubectl's Go would be.
        rounds = [uvloop.run(burst(state, 100, f"b{i}-")) for i in range(ROUNDS)]
        p99s = sorted(pct(r["running"], 99) for r in rounds)
        med = p99s[len(p99s) // 2]
        r = min(rounds, key=lambda x: abs(pct(x["running"], 99) - med))  # the median round
        first = rounds[0]
        add(f"100-pod burst: create → Running p99, median of {ROUNDS} (ms)",
            f"{med * 1e3:.0f}", "p99 <= 500",
            "all rounds: " + ", ".join(f"{pct(x['running'], 99) * 1e3:.0f}" for x in rounds))
        add("  that round: create → Running p50/p99 (ms)",
            f"{pct(r['running'], 50) * 1e3:.0f} / {pct(r['running'], 99) * 1e3:.0f}", "")
        add("  that round: create → Ready p50/p99 (ms)",
            f"{pct(r['ready'], 50) * 1e3:.0f} / {pct(r['ready'], 99) * 1e3:.0f}", "")
        add("first burst after `podnet up`: create → Running p50/p99 (ms)",
            f"{pct(first['running'], 50) * 1e3:.0f} / {pct(first['running'], 99) * 1e3:.0f}",
            "")
        add("100 pods all Running (s), median round", f"{r['wall']:.2f}", "<= 5",
            f"floor: 100 sandboxes + pause containers, no API, in {floor_s:.2f}s → "
            f"{r['wall'] / floor_s:.1f}x")
        add("pods per second (100-pod burst, median round)", f"{100 / r['wall']:.0f}", ">= 20")
        full = uvloop.run(burst(state, 110, "f"))
        add("pods one node holds (all Running)", "110 of 110", ">= 110",
            f"filled in {full['wall']:.2f}s")
        add("podnet serve RSS after the runs (MB)", f"{rss_mb(pid):.0f}", "")
        add("CPU reference: 10^6 additions in Python, before / after (ms)",
            f"{ref_before:.0f} / {cpu_reference():.0f}", "")
    finally:
        if state.exists():
            subprocess.run([*PODNET, "down", "--name", CLUSTER, "--state-dir", str(state),
                            "--purge"], capture_output=True, env=env())
        shutil.rmtree(root, ignore_errors=True)
    if args.write:
        lines = [f"\n### bench/pods — {time.strftime('%Y-%m-%d')}\n",
                 f"Machine: {machine()}. Client and node share the machine.\n",
                 "| measure | result | goal | peer in the same run |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        with Path(args.write).open("a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
