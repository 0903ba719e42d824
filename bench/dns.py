"""bench/dns: cluster DNS throughput, latency, change-to-answer time and memory.

A zone of 10,000 ClusterIP Services (one named port each) and 10,000 pods. podnet's
server runs as in `podnet dns`: a feeder process (the Zone, fed object by object through
`ZoneFeeder`, uvloop when installed) that spawns the answering worker process
(`podnet/dns/worker.py`) and pushes the encoded answers to it; both pinned to one core. The peer,
dnsmasq, serves the same records (A, SRV, PTR, pod A) from generated files on the same
core; dnsperf, pinned to the other core, drives both with the same query file (a third
each of Service A, Service SRV and pod A questions).

Measured: QPS at saturation (dnsperf, 100 outstanding queries), p99 latency at half of
each server's own saturation QPS (dnsperf -v per-query latencies), change-to-answer time
(an EndpointSlice/Service change applied to the zone → the next answer shows it; in
process, through the real feeder → worker path and a loopback client), and resident
memory: of the answering process (the goal), and of the feeder (what building its Zone
added to its RSS, and its whole RSS, which includes the interpreter, asyncio and uvloop).
Each measurement is bounded (`--seconds`, ≤ 60 s).

    .venv/bin/python -m bench.dns [--quick] [--seconds 10] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.machine import machine
from podnet.dns.querylog import QueryLog
from podnet.dns.records import Zone, ZoneFeeder
from podnet.dns.server import DnsServer

ZONE = "cluster.local"
NAMESPACES = 100


def svc_ip(i: int) -> str:
    return f"10.96.{(i >> 8) + 1}.{i & 255}"


def pod_ip(i: int) -> str:
    return f"10.244.{(i >> 8) + 1}.{i & 255}"


def svc_name(i: int) -> str:
    return f"svc-{i}.ns-{i % NAMESPACES}.svc.{ZONE}"


def pod_name(i: int) -> str:
    return f"{pod_ip(i).replace('.', '-')}.ns-{i % NAMESPACES}.pod.{ZONE}"


def services(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"metadata": {"namespace": f"ns-{i % NAMESPACES}", "name": f"svc-{i}"},
               "spec": {"type": "ClusterIP", "clusterIP": svc_ip(i), "clusterIPs": [svc_ip(i)],
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}


def pods(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"metadata": {"namespace": f"ns-{i % NAMESPACES}", "name": f"pod-{i}"},
               "spec": {}, "status": {"podIP": pod_ip(i), "podIPs": [{"ip": pod_ip(i)}],
                                      "conditions": [{"type": "Ready", "status": "True"}]}}


def build_zone(n_svc: int, n_pods: int) -> Zone:
    # Pods in "verified" mode get explicit records, like the peer's hosts file.
    zone = Zone(ZONE, pods="verified")
    feed = ZoneFeeder(zone)
    for s in services(n_svc):
        feed.on_service("ADDED", s)
    for p in pods(n_pods):
        feed.on_pod("ADDED", p)
    feed.mark_synced()
    zone.take_dirty()
    return zone


def query_file(path: Path, n_svc: int, n_pods: int) -> None:
    lines = [f"{svc_name(i)} A" for i in range(n_svc)]
    lines += [f"_http._tcp.{svc_name(i)} SRV" for i in range(n_svc)]
    lines += [f"{pod_name(i)} A" for i in range(n_pods)]
    random.Random(7).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")


def dnsmasq_files(d: Path, n_svc: int, n_pods: int) -> list[str]:
    (d / "hosts").write_text("".join(f"{svc_ip(i)} {svc_name(i)}\n" for i in range(n_svc))
                             + "".join(f"{pod_ip(i)} {pod_name(i)}\n" for i in range(n_pods)))
    srv = (f"srv-host=_http._tcp.{svc_name(i)},{svc_name(i)},80,0,100\n" for i in range(n_svc))
    (d / "srv.conf").write_text("".join(srv))
    return ["--no-daemon", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
            "--no-hosts", f"--addn-hosts={d / 'hosts'}", f"--conf-file={d / 'srv.conf'}",
            "--local-ttl=5", "--local=/cluster.local/", "--cache-size=10000",
            "--log-facility=/dev/null", "--user=" + (os.environ.get("USER") or "root")]


# --- podnet's server as a child process ------------------------------------------------

def serve(port: int, n_svc: int, n_pods: int) -> None:
    """Child mode: build the zone, serve it, exit when stdin closes (never orphaned)."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        gc.collect()
        before = rss_mb(os.getpid())
        zone = build_zone(n_svc, n_pods)
        gc.collect()
        zone_mb = rss_mb(os.getpid()) - before  # what the feeder's Zone adds to its RSS
        # The zone is long-lived: move it out of the cyclic collector's reach, as
        # `podnet dns` does after its first sync.
        gc.freeze()
        server = DnsServer(zone, "127.0.0.1", port, [], QueryLog())
        await server.start()
        await server.drain()  # the worker has (nearly) the whole table in hand
        assert server.worker is not None
        print(f"READY {server.port} {server.worker.pid} {zone_mb:.2f}", flush=True)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def stop() -> None:
            if not done.done():
                done.set_result(None)
        loop.add_reader(sys.stdin.fileno(), stop)
        await done
        await server.stop()

    asyncio.run(main())


def free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise OSError("no free port")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 \
        else []


# --- load --------------------------------------------------------------------------------

def dnsperf(port: int, qfile: Path, seconds: float, qps: float | None = None,
            verbose: bool = False) -> dict[str, Any]:
    cmd = [*pinned(0), "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile),
           "-l", str(seconds), "-c", "4", "-q", "100", "-t", "2"]
    if qps:
        cmd += ["-Q", str(int(qps))]
    if verbose:
        cmd.append("-v")
    # To a file, not a pipe: with -v (one line per query) a pipe slows dnsperf's sender
    # and the client's own delay would be counted as server latency.
    with tempfile.TemporaryFile("w+") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.DEVNULL, timeout=seconds + 30,
                       check=True)
        fh.seek(0)
        out = fh.read()
    res: dict[str, Any] = {
        "qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "lost": int(re.search(r"Queries lost:\s+(\d+)", out).group(1)),  # type: ignore[union-attr]
    }
    if verbose:
        lats = [float(m) for m in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M)]
        lats.sort()
        res["p50_ms"] = lats[len(lats) // 2] * 1000 if lats else float("nan")
        res["p99_ms"] = lats[int(len(lats) * 0.99)] * 1000 if lats else float("nan")
    return res


def measure_server(name: str, port: int, pid: int, qfile: Path, seconds: float) -> dict[str, Any]:
    dnsperf(port, qfile, min(3.0, seconds))  # warm caches: every name asked at least once
    full = dnsperf(port, qfile, seconds)
    half = dnsperf(port, qfile, seconds, qps=full["qps"] / 2, verbose=True)
    return {"name": name, "qps": full["qps"], "lost": full["lost"], "p50_ms": half["p50_ms"],
            "p99_ms": half["p99_ms"], "half_qps": half["qps"], "rss_mb": rss_mb(pid)}


async def change_to_answer(n_svc: int, n_pods: int, changes: int) -> dict[str, float]:
    """Apply a Service change, then ask until the answer shows it; time both together."""
    zone = build_zone(n_svc, n_pods)
    feed = ZoneFeeder(zone)
    server = DnsServer(zone, "127.0.0.1", 0, [], QueryLog())
    await server.start()
    await server.drain()  # the whole table is with the worker: measure changes only
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect(("127.0.0.1", server.port))
    lat: list[float] = []
    try:
        for k in range(changes):
            i = k % n_svc
            new_ip = f"10.100.{(k >> 8) & 255}.{k & 255}"
            name = svc_name(i)
            wire = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\x00"
            q = k.to_bytes(2, "big") + b"\x01\x00\x00\x01" + bytes(6) + wire + b"\x00\x01\x00\x01"
            want = socket.inet_aton(new_ip)
            t0 = time.perf_counter()
            feed.on_service("MODIFIED", {
                "metadata": {"namespace": f"ns-{i % NAMESPACES}", "name": f"svc-{i}"},
                "spec": {"type": "ClusterIP", "clusterIP": new_ip, "clusterIPs": [new_ip],
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
            while True:
                await loop.sock_sendall(sock, q)
                resp = await asyncio.wait_for(loop.sock_recv(sock, 4096), 2)
                if resp.endswith(want):
                    break
            lat.append((time.perf_counter() - t0) * 1000)
    finally:
        sock.close()
        await server.stop()
    lat.sort()
    return {"p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99)],
            "max_ms": lat[-1]}


def wait_ready(port: int, timeout: float) -> None:
    q = b"\x00\x01\x01\x00\x00\x01" + bytes(6) + b"\x0bdns-version\x07cluster\x05local\x00" \
        + b"\x00\x10\x00\x01"
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            s.sendto(q, ("127.0.0.1", port))
            try:
                s.recv(512)
                return
            except OSError:
                continue
    raise TimeoutError(f"no DNS answer on port {port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 Services + 1,000 pods, 3 s runs")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--write", help="append a dated markdown section to this file")
    ap.add_argument("--note", default="", help="a few words for the section title")
    ap.add_argument("--serve", nargs=3, type=int, metavar=("PORT", "SVCS", "PODS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    n = 1000 if args.quick else 10_000
    seconds = min(60.0, 3.0 if args.quick else args.seconds)
    for tool in ("dnsperf", "dnsmasq"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            print(f"bench/dns needs {tool}: apt-get install dnsperf dnsmasq-base", file=sys.stderr)
            return 1
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="podnet-bench-dns-") as tmp:
        d = Path(tmp)
        os.chmod(d, 0o755)
        qfile = d / "queries"
        query_file(qfile, n, n)

        port = free_port()
        t0 = time.monotonic()
        child = subprocess.Popen([*pinned(1), sys.executable, "-m", "bench.dns", "--serve",
                                  str(port), str(n), str(n)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith("READY"):
                raise RuntimeError(f"podnet dns did not start: {line!r}")
            _, _, worker_pid, zone_mb = line.split()
            wpid = int(worker_pid)
            wait_ready(port, 30)
            time.sleep(0.5)  # the last table frames
            load_s = time.monotonic() - t0
            rss_idle = rss_mb(wpid)
            print(f"podnet: zone loaded in {load_s:.1f} s, worker {rss_idle:.1f} MB, "
                  f"feeder {rss_mb(child.pid):.1f} MB (zone {float(zone_mb):.1f} MB)",
                  file=sys.stderr)
            results.append(measure_server("podnet", port, wpid, qfile, seconds))
            results[-1]["rss_idle_mb"] = rss_idle
            results[-1]["feeder_rss_mb"] = rss_mb(child.pid)
            results[-1]["zone_mb"] = float(zone_mb)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

        port = free_port()
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        peer = subprocess.Popen([*pinned(1), exe, f"--port={port}",
                                 *dnsmasq_files(d, n, n)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, 30)
            results.append(measure_server("dnsmasq", port, peer.pid, qfile, seconds))
        finally:
            peer.send_signal(signal.SIGTERM)
            try:
                peer.wait(10)
            except subprocess.TimeoutExpired:
                peer.kill()
                peer.wait()

    change = asyncio.run(asyncio.wait_for(change_to_answer(n, n, 200 if args.quick else 1000),
                                          60))
    ours, theirs = results
    ratio = ours["qps"] / theirs["qps"]
    rows = [
        ("QPS (saturation, 1 core)", f"{ours['qps']:,.0f}", "≥ 1.0x peer",
         f"dnsmasq {theirs['qps']:,.0f} → ratio {ratio:.2f}x"),
        ("p99 latency at half load", f"{ours['p99_ms']:.3f} ms (p50 {ours['p50_ms']:.3f})",
         "≤ 1 ms", f"dnsmasq {theirs['p99_ms']:.3f} ms (p50 {theirs['p50_ms']:.3f})"),
        ("change → answer (p99)", f"{change['p99_ms']:.3f} ms (p50 {change['p50_ms']:.3f}, "
         f"max {change['max_ms']:.3f})", "≤ 50 ms", "—"),
        ("RSS of the answering process after load",
         f"{ours['rss_mb']:.1f} MB (idle {ours['rss_idle_mb']:.1f})",
         "≤ 25 MB", f"dnsmasq {theirs['rss_mb']:.1f} MB"),
        ("feeder: RSS its Zone added / whole process RSS",
         f"{ours['zone_mb']:.1f} MB / {ours['feeder_rss_mb']:.1f} MB", "—", "—"),
        ("queries lost at saturation", f"{ours['lost']}", "—", f"dnsmasq {theirs['lost']}"),
    ]
    notes = ", ".join(x for x in (args.note, "quick" if args.quick else "") if x)
    title = (f"bench/dns — {time.strftime('%Y-%m-%d')}{f' ({notes})' if notes else ''}: "
             f"{n:,} Services + {n:,} pods, {seconds:g} s per run")
    table = ["| measure | podnet | goal | peer in the same run |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows]
    print(title)
    print("\n".join(table))
    if args.write:
        with Path(args.write).open("a") as fh:
            fh.write(f"\n### {title}\n\nMachine: {machine()}. dnsperf on core 0, each server "
                     "pinned to core 1; podnet's feeder on "
                     f"{'uvloop' if has_uvloop() else 'asyncio'}, its answering worker on "
                     "epoll (stdlib only), both on core 1.\n\n"
                     + "\n".join(table) + "\n")
    return 0


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True




if __name__ == "__main__":
    sys.exit(main())
