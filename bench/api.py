"""bench/api: the control plane's speed, next to the ceilings it runs under.

Measures, against a real `podnet up` (TLS, SQLite store) on this machine:
durable creates per second, single-write and GET latency (p50/p99), LIST of 1k and 10k
pods, the latency for one event to reach 1,000 watchers, `podnet up` → ready, idle RSS.
Peers measured in the same run: the same HTTPS client against a bare aiohttp handler
(the HTTP ceiling for this client on this machine) and raw SQLite commits on the same
disk (the durability ceiling). Ratios are what to compare across machines.

    .venv/bin/python -m bench.api [--quick] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.machine import machine

PORT = 17443
PODNET = [sys.executable, "-m", "podnet.cli.main"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, what: str, value: str, goal: str, peer: str = "") -> None:
        self.rows.append((what, value, goal, peer))
        print(f"  {what:<44} {value:>14}   goal {goal:<12} {peer}", flush=True)


def ssl_ctx(state: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(state / "pki" / "admin.crt"), str(state / "pki" / "admin.key"))
    return ctx


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PODNET_NO_KUBECONFIG_MERGE"] = "1"
    return e


def up(state: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([*PODNET, "up", "--name", "bench", "--state-dir", str(state), "--port",
                    str(PORT), "--no-kubeconfig-merge"], check=True, capture_output=True,
                   env=env())
    return time.perf_counter() - t0


def down(state: Path, purge: bool = False) -> None:
    subprocess.run([*PODNET, "down", "--name", "bench", "--state-dir", str(state),
                    *(["--purge"] if purge else [])], check=True, capture_output=True, env=env())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"key": "value"}}


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "tier": "load"}},
            # Objects only: a node selector no node matches keeps them Pending, so the
            # node agent does not start 10,000 processes during the measurement.
            "spec": {"nodeSelector": {"podnet.io/bench": "objects-only"},
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                     "ports": [{"containerPort": 8080}]}]}}


async def run_writes(session: aiohttp.ClientSession, base: str, path: str,
                     bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, list[float]]:
    queue = list(reversed(bodies))
    lat: list[float] = []

    async def worker() -> None:
        while queue:
            body = queue.pop()
            t0 = time.perf_counter()
            async with session.post(base + path, json=body) as r:
                await r.read()
                if r.status not in (200, 201):
                    raise RuntimeError(f"create failed: {r.status} {await r.text()}")
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, lat


async def peer_http_ceiling(n: int, concurrency: int, ctx_server: ssl.SSLContext,
                            ctx_client: ssl.SSLContext) -> float:
    """Creates/s of the same client against a handler that only parses and answers."""
    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        body["metadata"]["uid"] = "x"
        return web.json_response(body, status=201)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", PORT + 1, ssl_context=ctx_server)
    await site.start()
    try:
        conn = aiohttp.TCPConnector(ssl=ctx_client, limit=concurrency)
        async with aiohttp.ClientSession(connector=conn) as s:
            took, _ = await run_writes(s, f"https://127.0.0.1:{PORT + 1}", "/x",
                                       [cm(f"p{i}") for i in range(n)], concurrency)
    finally:
        await runner.cleanup()
    return n / took


def peer_sqlite_commits(directory: Path, n: int = 2000) -> float:
    """Raw SQLite WAL commits/s (synchronous=NORMAL) on the same disk: one row each."""
    db = sqlite3.connect(directory / "peer.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
    t0 = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO kv VALUES (?, ?)", (f"k{i}", b"x" * 400))
        db.execute("COMMIT")
    took = time.perf_counter() - t0
    db.close()
    return n / took


async def watchers_latency(base: str, ctx: ssl.SSLContext, n_watchers: int,
                           events: int) -> list[float]:
    conn = aiohttp.TCPConnector(ssl=ctx, limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
        async with s.post(base + "/api/v1/namespaces", json={
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watch"}}) as r:
            await r.read()
        async with s.get(base + "/api/v1/namespaces/watch/configmaps") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        sent: dict[str, float] = {}
        lat: list[float] = []
        ready = 0
        all_ready = asyncio.Event()

        async def watcher() -> None:
            nonlocal ready
            async with s.get(base + "/api/v1/namespaces/watch/configmaps",
                             params={"watch": "true", "resourceVersion": rv,
                                     "timeoutSeconds": "120"}) as resp:
                ready += 1
                if ready == n_watchers:
                    all_ready.set()
                got = 0
                async for line in resp.content:
                    now = time.perf_counter()
                    ev = json.loads(line)
                    name = ev["object"]["metadata"]["name"]
                    if name in sent:
                        lat.append(now - sent[name])
                    got += 1
                    if got >= events:
                        return

        tasks = [asyncio.create_task(watcher()) for _ in range(n_watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(0.5)
        for i in range(events):
            name = f"ev{i}"
            sent[name] = time.perf_counter()
            async with s.post(base + "/api/v1/namespaces/watch/configmaps", json=cm(name)) as r:
                await r.read()
            await asyncio.sleep(0.3)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        return lat


async def peer_fanout(n_watchers: int, events: int, ctx_server: ssl.SSLContext,
                      ctx_client: ssl.SSLContext) -> list[float]:
    """The fan-out ceiling for this client on this machine: a bare aiohttp server that
    holds `n_watchers` chunked streams and writes one JSON line to each per event."""
    streams: list[web.StreamResponse] = []
    ready = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        streams.append(resp)
        if len(streams) == n_watchers:
            ready.set()
        await asyncio.sleep(120)
        return resp

    app = web.Application()
    app.router.add_get("/w", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", PORT + 2, ssl_context=ctx_server).start()
    lat: list[float] = []
    sent: dict[str, float] = {}
    conn = aiohttp.TCPConnector(ssl=ctx_client, limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    try:
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as s:
            async def watcher() -> None:
                async with s.get(f"https://127.0.0.1:{PORT + 2}/w") as resp:
                    got = 0
                    async for line in resp.content:
                        now = time.perf_counter()
                        name = json.loads(line)["object"]["metadata"]["name"]
                        lat.append(now - sent[name])
                        got += 1
                        if got >= events:
                            return

            tasks = [asyncio.create_task(watcher()) for _ in range(n_watchers)]
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(0.5)
            for i in range(events):
                name = f"ev{i}"
                line = json.dumps({"type": "ADDED", "object": cm(name)}).encode() + b"\n"
                sent[name] = time.perf_counter()
                for r in streams:
                    await r.write(line)
                await asyncio.sleep(0.3)
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
    finally:
        await runner.cleanup()
    return lat


async def measure(state: Path, quick: bool, results: Results) -> None:
    base = f"https://127.0.0.1:{PORT}"
    ctx = ssl_ctx(state)
    n_creates = 1000 if quick else 3000
    conc = 32
    conn = aiohttp.TCPConnector(ssl=ctx, limit=conc)
    async with aiohttp.ClientSession(connector=conn) as s:
        took, _ = await run_writes(s, base, "/api/v1/namespaces/default/configmaps",
                                     [cm(f"c{i}") for i in range(n_creates)], conc)
        creates = n_creates / took
        # Single writes, one at a time (latency without queueing behind others).
        _, single = await run_writes(s, base, "/api/v1/namespaces/default/configmaps",
                                     [cm(f"s{i}") for i in range(300)], 1)
        gets: list[float] = []
        for i in range(500):
            t0 = time.perf_counter()
            async with s.get(f"{base}/api/v1/namespaces/default/configmaps/c{i}") as r:
                await r.read()
            gets.append(time.perf_counter() - t0)
        # Pods for LIST: 1k in one namespace, 10k in all.
        async with s.post(base + "/api/v1/namespaces", json={
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "one-k"}}) as r:
            await r.read()
        n_big = 2000 if quick else 9000
        await run_writes(s, base, "/api/v1/namespaces/one-k/pods",
                         [pod(f"p{i}") for i in range(1000)], conc)
        await run_writes(s, base, "/api/v1/namespaces/default/pods",
                         [pod(f"p{i}") for i in range(n_big)], conc)
        lists: dict[str, list[float]] = {"1k": [], "all": []}
        for _ in range(5):
            for key, path in (("1k", "/api/v1/namespaces/one-k/pods"), ("all", "/api/v1/pods")):
                t0 = time.perf_counter()
                async with s.get(base + path) as r:
                    data = await r.read()
                lists[key].append(time.perf_counter() - t0)
        n_all = len(json.loads(data)["items"])
        table_t: list[float] = []
        for _ in range(3):
            t0 = time.perf_counter()
            async with s.get(base + "/api/v1/pods", headers={
                    "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as r:
                await r.read()
            table_t.append(time.perf_counter() - t0)
    peer_dir = Path(tempfile.mkdtemp(dir=state.parent))
    sqlite_peer = peer_sqlite_commits(peer_dir)
    shutil.rmtree(peer_dir)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(state / "pki" / "apiserver.crt"),
                               str(state / "pki" / "apiserver.key"))
    http_peer = await peer_http_ceiling(n_creates, conc, server_ctx, ctx)
    results.add("durable creates/s (32 clients)", f"{creates:.0f}", ">= 1000",
                f"HTTP ceiling {http_peer:.0f}/s → {creates / http_peer:.2f}x; "
                f"raw SQLite commits {sqlite_peer:.0f}/s")
    results.add("single write p50 / p99 (ms)",
                f"{pct(single, 50) * 1e3:.1f} / {pct(single, 99) * 1e3:.1f}", "p99 <= 20")
    results.add("GET p50 / p99 (ms)", f"{pct(gets, 50) * 1e3:.1f} / {pct(gets, 99) * 1e3:.1f}",
                "")
    results.add("LIST 1k pods, JSON (median ms)", f"{statistics.median(lists['1k']) * 1e3:.0f}",
                "")
    results.add(f"LIST {n_all} pods, JSON (median ms)",
                f"{statistics.median(lists['all']) * 1e3:.0f}", "10k <= 500")
    results.add(f"LIST {n_all} pods, Table (median ms)",
                f"{statistics.median(table_t) * 1e3:.0f}", "(kubectl get)")
    n_watchers = 200 if quick else 1000
    n_events = 5 if quick else 10
    wl = await watchers_latency(base, ctx, n_watchers, n_events)
    fl = await peer_fanout(n_watchers, n_events, server_ctx, ctx)
    results.add(f"event → {n_watchers} watchers p50 / p99 (ms)",
                f"{pct(wl, 50) * 1e3:.1f} / {pct(wl, 99) * 1e3:.1f}", "p99 <= 50",
                f"bare fan-out server, same client: p50 {pct(fl, 50) * 1e3:.1f} / "
                f"p99 {pct(fl, 99) * 1e3:.1f} → p99 ratio {pct(wl, 99) / pct(fl, 99):.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", help="append the results to this markdown file")
    args = ap.parse_args()
    results = Results()
    root = Path(tempfile.mkdtemp(prefix="podnet-bench-"))
    state = root / "state"
    try:
        readies = []
        for i in range(3):
            readies.append(up(state))
            if i < 2:
                down(state, purge=True)
        pid = int((state / "podnet.pid").read_text())
        time.sleep(1.0)
        idle = rss_mb(pid)
        results.add("podnet up → API ready (median of 3, s)",
                    f"{statistics.median(readies):.2f}", "<= 2")
        results.add("idle memory, RSS (MB)", f"{idle:.0f}", "<= 200")
        asyncio.run(measure(state, args.quick, results))
    finally:
        with_state = state.exists()
        if with_state:
            down(state, purge=True)
        shutil.rmtree(root, ignore_errors=True)
    if args.write:
        write(Path(args.write), results, args.quick)
    return 0




def write(path: Path, results: Results, quick: bool) -> None:
    lines = [f"\n### bench/api — {time.strftime('%Y-%m-%d')}{' (quick)' if quick else ''}\n",
             f"Machine: {machine()}. Client and server share the machine.\n",
             "| measure | result | goal | peer in the same run |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in results.rows]
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
