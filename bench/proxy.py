"""bench/proxy: Services in the kernel — what the nftables proxy costs a packet and a change.

Against a real `podnet up` on this machine, side by side in one run:
1. throughput: iperf3 from one client pod to an iperf3 server pod, straight to the pod
   IP and through a ClusterIP, in THROUGHPUT_PAIRS pairs of 2 s runs, two ways:
   - concurrent (the judge): both flows at once, both clients pinned to core 0 and both
     servers to core 1 (`iperf3 -A 0,1`), so the two flows share the same cores at the
     same moments and the VM's slow phases hit both; a single stream here is CPU-bound,
     so the two flows' ratio is the ratio of their costs per byte. Two server processes
     (5201, 5202) swap roles every pair;
   - alone: one flow at a time, back to back, the order alternating within each pair;
     single runs on this VM spread 9-18 Gbit/s with seconds-long slow phases, so this
     one is shown with its interval, not used to judge.
   Each: the median of the per-pair ratios (ClusterIP over the pod-IP run of the same
   pair) with a 90% bootstrap interval, and the ratio of the medians;
2. first-packet latency: TCP connect() times from a python:3.11 pod to one backend pod,
   by its pod IP and by a ClusterIP whose only endpoint is that pod (the same listening
   socket), interleaved connect by connect with a third target, a listener on the client
   pod's own loopback (no node namespace, no table: the machine's own drift), in rounds
   whose order rotates; CONNECTS rounds after WARM_CONNECTS warm-up rounds, at 100 and
   at 10,000 Services (the extra ones select a label no pod has: no endpoints).
   "Added" is the ClusterIP quantile minus the pod-IP quantile of the same run, with a
   90% bootstrap interval (whole rounds resampled); also the median of the paired
   differences (each ClusterIP connect minus the pod-IP connect of its round) and the
   p99 difference in each of BLOCKS consecutive blocks. "Flat" is ClusterIP at 10,000
   over ClusterIP at 100 (p50, p99), beside the same ratio for the pod IP (which passes
   the same base chains and map lookups, without DNAT) and for loopback.
   What keeps the machine's own noise out of it (each measured, see docs/benchmarks.md):
   - the backend is a bare accept-and-close loop with a 4096 backlog (SINK_SCRIPT), not
     agnhost serve-hostname: that server (listen backlog 128, a log line per request)
     overflowed its accept queue at the client's rate, so about 1 SYN in 600 was dropped
     (a 1 s retransmit), and its per-connection work preempted the client (0.2 to 1 ms);
   - the client closes with SO_LINGER 0 (RST, no TIME_WAIT): with tens of thousands of
     sockets in TIME_WAIT, connect()'s ephemeral-port search alone took milliseconds;
   - the client runs with the GC off, pinned to core 0 at SCHED_FIFO (no process of the
     cluster preempts a connect), and sleeps 1 ms outside the timed part every PACE
     rounds so that the core's other tasks run and RT throttling never cuts in;
   - connects slower than 100 ms (a SYN retransmit) are counted and shown: expect none.
3. network programming latency at 1,000 and at 10,000 Services: create a Service whose
   selector matches ready pods, then connect from the host to its ClusterIP every 2 ms
   until it answers (includes the API write, the EndpointSlice controller, the proxy's
   watch and sync); peer: when a watcher sees the Service's EndpointSlice with endpoints;
4. cold sync of N Services x 10 endpoints, as the proxier's first sync does it: pieces
   (`ruleset.piece`), then `nft.apply_each` over the scripts of `tables.Tables.load`
   (nft text, bounded transactions) into a throwaway network namespace; also the Python
   part alone and the kernel part alone (precomputed scripts). At 1,000, 3,000 and
   10,000 Services, in that order, with the machine's free memory checked after each.

Safety: at most MAX_SERVICES Services; every wait has a deadline; traffic goes only to
cluster addresses on this machine; `podnet down --purge` and the throwaway namespace's
removal run in `finally`; no cold-sync transaction holds more than `tables.BATCH`
service ports.

    .venv/bin/python -m bench.proxy [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

from bench.api import PODNET, env, pct
from bench.machine import machine

NAME = "benchproxy"
PORT = 19443
NS = "default"
MAX_SERVICES = 10_100  # hard ceiling for this benchmark (see the module docstring)
NETNS = f"podnet-{NAME}-node-0"
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.39"
IPERF_IMAGE = "docker.io/networkstatic/iperf3"
CONNECTS = 20_000  # pairs per cluster size (one pod-IP and one ClusterIP connect each)
WARM_CONNECTS = 500
PACE = 64  # the client sleeps 1 ms (untimed) every PACE pairs
BLOCKS = 10  # the p99 difference per block of consecutive pairs shows its own noise
SLOW_US = 100_000  # a connect this slow waited for a SYN retransmit
THROUGHPUT_PAIRS = 20  # of 2 s iperf3 runs
PROG_SAMPLES = 40
T = TypeVar("T")

# Runs in a python:3.11 pod: the backend of the connect test. Accepts and closes, with a
# deep backlog, and does nothing else (no log line, no reply).
SINK_SCRIPT = textwrap.dedent("""
    import selectors, socket, sys
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("", int(sys.argv[1])))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    print("listening", flush=True)
    while True:
        sel.select()
        while True:
            try:
                c, _ = ls.accept()
            except BlockingIOError:
                break
            c.close()
""")

# Runs in a python:3.11 pod: connect() to three targets in turn (the ClusterIP, the pod IP,
# and, as a reference for the machine's own drift, a listener on this pod's loopback that a
# forked child accepts on: no node namespace, no table); print microseconds.
CONNECT_SCRIPT = textwrap.dedent("""
    import gc, os, signal, socket, struct, sys, time
    targets = {"a": (sys.argv[1], int(sys.argv[2])), "b": (sys.argv[3], int(sys.argv[4]))}
    n, warm, pace = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
    lo = socket.socket()
    lo.bind(("127.0.0.1", 0))
    lo.listen(4096)
    targets["c"] = lo.getsockname()
    child = os.fork()
    if child == 0:
        while True:
            lo.accept()[0].close()
    lo.close()
    gc.disable()
    setup = []
    try:
        os.sched_setaffinity(0, {0})
        setup.append("core0")
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
        setup.append("fifo")
    except OSError as e:
        setup.append(f"not-{e.errno}")
    print("setup", " ".join(setup), flush=True)
    rst = struct.pack("ii", 1, 0)  # SO_LINGER 0: close sends RST, leaves no TIME_WAIT
    clock = time.perf_counter_ns
    keys = ("a", "b", "c")
    out = {key: [] for key in keys}
    try:
        for i in range(n + warm):
            if i % pace == 0:
                time.sleep(0.001)
            k = i % 3
            for key in keys[k:] + keys[:k]:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, rst)
                t0 = clock()
                s.connect(targets[key])
                took = clock() - t0
                s.close()
                if i >= warm:
                    out[key].append(took)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    for key, values in out.items():  # short lines: container logs split long ones
        for i in range(0, len(values), 100):
            print(key, " ".join(f"{v / 1000:.1f}" for v in values[i:i + 100]))
""")

# Runs in a python:3.11 pod: iperf3 to the pod IP and to the ClusterIP, in pairs of 2 s
# runs. Sequential: one after the other, the order alternating. Concurrent: both at once,
# both clients on core 0 and both servers on core 1, so that the two flows share the same
# cores at the same moments; the two server processes swap roles every pair.
IPERF_SCRIPT = textwrap.dedent("""
    import json, subprocess, sys, time
    pod_ip, cluster_a, cluster_b, pairs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    targets = {"pod": pod_ip, "cluster": cluster_a}

    def bps(out):
        return json.loads(out)["end"]["sum_received"]["bits_per_second"]

    for k in range(pairs):  # concurrent
        ports = (5201, 5202) if k % 2 == 0 else (5202, 5201)
        runs = {key: subprocess.Popen(["iperf3", "-c", ip, "-p", str(port), "-t", "2", "-A",
                                       "0,1", "-J"], stdout=subprocess.PIPE, text=True)
                for key, ip, port in (("cluster", (cluster_a, cluster_b)[k % 2], 5201),
                                      ("pod", pod_ip, ports[1]))}
        for key, run in runs.items():
            out = run.communicate()[0]
            try:
                print("both", k, key, bps(out), flush=True)
            except (ValueError, KeyError):
                sys.exit(f"concurrent iperf3 {key} failed: {out[-300:]}")
        time.sleep(0.3)
    for k in range(pairs):  # sequential
        for key in (("pod", "cluster") if k % 2 == 0 else ("cluster", "pod")):
            for attempt in range(5):  # the server may still be finishing the previous test
                r = subprocess.run(["iperf3", "-c", targets[key], "-t", "2", "-A", "0,1",
                                    "-J"], capture_output=True, text=True)
                try:
                    got = bps(r.stdout)
                    break
                except (ValueError, KeyError):
                    time.sleep(0.5)
            else:
                sys.exit(f"iperf3 to {targets[key]} failed: {r.stdout[-300:]} {r.stderr[-300:]}")
            print("run", k, key, got, flush=True)
            time.sleep(0.2)
""")


# --------------------------------------------------------------------------- API client


class Api:
    """A small blocking client with the admin certificate (one keep-alive connection)."""

    def __init__(self, state: Path) -> None:
        self.ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
        self.ctx.load_cert_chain(str(state / "pki" / "admin.crt"),
                                 str(state / "pki" / "admin.key"))
        self.conn = self._connect()

    def _connect(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", PORT, context=self.ctx,
                                           timeout=timeout)

    def call(self, method: str, path: str, body: Any = None,
             ok: tuple[int, ...] = (200, 201)) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
        if r.status not in ok:
            raise RuntimeError(f"{method} {path}: {r.status} {raw[:300]!r}")
        ctype = r.getheader("Content-Type") or ""
        return json.loads(raw) if "json" in ctype else raw.decode()

    def pods(self) -> str:
        return f"/api/v1/namespaces/{NS}/pods"

    def services(self) -> str:
        return f"/api/v1/namespaces/{NS}/services"


def pod(name: str, labels: dict[str, str], container: dict[str, Any],
        restart: str = "Always") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            # No Service links: at 10,000 Services their environment would not fit exec().
            "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                     "enableServiceLinks": False, "restartPolicy": restart,
                     "containers": [{"name": "c", **container}]}}


def service(name: str, selector: dict[str, str], port: int, target: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector,
                     "ports": [{"port": port, "targetPort": target, "protocol": "TCP"}]}}


def wait_pod(api: Api, name: str, phases: tuple[str, ...], timeout: float = 60,
             ready: bool = False) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = api.call("GET", f"{api.pods()}/{name}")
        st = last.get("status") or {}
        if st.get("phase") in phases and (not ready or any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in st.get("conditions") or [])):
            return last
        if st.get("phase") == "Failed" and "Failed" not in phases:
            break
        time.sleep(0.1)
    raise RuntimeError(f"pod {name} not in {phases}: {json.dumps(last.get('status'))[:500]}")


def run_to_completion(api: Api, body: dict[str, Any], timeout: float = 60) -> str:
    """Create a run-once pod, wait until it exits, return its log, delete it."""
    name = body["metadata"]["name"]
    api.call("POST", api.pods(), body)
    try:
        p = wait_pod(api, name, ("Succeeded", "Failed"), timeout)
        logs = str(api.call("GET", f"{api.pods()}/{name}/log"))
        if p["status"]["phase"] != "Succeeded":
            check_alone()  # the likeliest cause: another cluster came up beside this one
            raise RuntimeError(f"pod {name} failed: {logs[-500:]} "
                               f"{json.dumps(p['status'].get('containerStatuses'))[:500]}")
        return logs
    finally:
        api.call("DELETE", f"{api.pods()}/{name}?gracePeriodSeconds=0", ok=(200, 202, 404))
        # Wait until its namespace is gone and let the kernel finish tearing it down:
        # that work (conntrack, RCU) would otherwise land in the next measurement.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                api.call("GET", f"{api.pods()}/{name}")
            except RuntimeError:
                break
            time.sleep(0.1)
        time.sleep(2.0)


def service_count(api: Api) -> int:
    return len(api.call("GET", "/api/v1/services")["items"])


def fill_services(api: Api, total: int, start: int) -> int:
    """Add endpoint-less Services (a selector no pod matches) until the cluster has
    `total`; returns the next free index."""
    if total > MAX_SERVICES:
        raise ValueError(f"refusing to create more than {MAX_SERVICES} Services")
    i = start
    deadline = time.monotonic() + 900
    have = service_count(api)
    t0 = time.monotonic()
    while have < total and time.monotonic() < deadline:
        api.call("POST", api.services(), service(f"empty-{i}", {"bench-none": f"x{i}"}, 80,
                                                 8080))
        i += 1
        have += 1
        if have % 1000 == 0:
            print(f"  ... {have} Services ({time.monotonic() - t0:.0f} s)", flush=True)
    if service_count(api) < total:
        raise RuntimeError(f"could not reach {total} Services in time")
    return i


def nft_map_size(name: str) -> int:
    """Elements in one of the proxy's maps in the node namespace (read-only listing)."""
    r = subprocess.run(["ip", "netns", "exec", NETNS, "nft", "-j", "list", "map", "ip",
                        "podnet-proxy", name], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return -1
    for obj in json.loads(r.stdout)["nftables"]:
        if "map" in obj:
            return len(obj["map"].get("elem") or [])
    return 0


def wait_proxy(api: Api, timeout: float = 60) -> None:
    """Until the kernel's maps hold every Service port with a ClusterIP."""
    items = api.call("GET", "/api/v1/services")["items"]
    want = sum(len(s["spec"].get("ports") or []) for s in items
               if s["spec"].get("clusterIP") not in (None, "", "None"))
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        got = nft_map_size("service-ips") + nft_map_size("no-endpoint-services")
        if got >= want:
            return
        time.sleep(0.2)
    raise RuntimeError(f"proxy holds {got} of {want} service ports after {timeout}s")


def check_alone() -> None:
    """Clusters on one machine share the address layout: another cluster up beside this
    one would clash with it (and its traffic would spoil the numbers). Raise if one is."""
    for line in subprocess.run(["ip", "route", "show", "10.96.0.0/12"], capture_output=True,
                               text=True, timeout=10).stdout.splitlines():
        if not line.startswith("unreachable") and f"pn-{NAME}-0" not in line:
            raise RuntimeError(f"another cluster routes the service range ({line.strip()}); "
                               "run this benchmark when no other podnet cluster is up")


def not_via_default_route(ip: str) -> None:
    out = subprocess.run(["ip", "route", "get", ip], capture_output=True, text=True).stdout
    default = subprocess.run(["ip", "route", "show", "default"], capture_output=True,
                             text=True).stdout.split()
    gateway = default[default.index("via") + 1] if "via" in default else None
    if gateway and f"via {gateway}" in out:
        raise RuntimeError(f"{ip} would leave through the default route: {out.strip()}")


# --------------------------------------------------------------------------- 1. throughput


def throughput(api: Api, pod_ip: str, cluster_a: str, cluster_b: str
               ) -> dict[str, list[tuple[float, float]]]:
    """THROUGHPUT_PAIRS concurrent ("both") and sequential ("run") pairs of iperf3 runs from
    one client pod: (pod IP, ClusterIP) bits per second per pair. cluster_a leads to the
    server on 5201, cluster_b to the one on 5202."""
    body = pod("iperf-client", {"bench": "client"},
               {"image": "python:3.11",
                "command": ["python3", "-c", IPERF_SCRIPT, pod_ip, cluster_a, cluster_b,
                            str(THROUGHPUT_PAIRS)]}, restart="Never")
    runs: dict[tuple[str, int, str], float] = {}
    for line in run_to_completion(api, body, timeout=60 + 20 * THROUGHPUT_PAIRS
                                  ).splitlines():
        word = line.split()
        if len(word) == 4 and word[0] in ("run", "both"):
            runs[word[0], int(word[1]), word[2]] = float(word[3])
    if len(runs) != 4 * THROUGHPUT_PAIRS:
        raise RuntimeError(f"iperf client gave {len(runs)} of {4 * THROUGHPUT_PAIRS} runs")
    return {mode: [(runs[mode, k, "pod"], runs[mode, k, "cluster"])
                   for k in range(THROUGHPUT_PAIRS)] for mode in ("run", "both")}


# --------------------------------------------------------------------------- 2. connect latency


def connect_times(api: Api, cluster_ip: str, pod_ip: str, tag: str
                  ) -> tuple[dict[str, list[float]], str]:
    """CONNECTS interleaved rounds (ClusterIP:80, pod IP:9376 — one listening socket —
    and the client pod's loopback); microseconds per path, and how the client was set
    up (core, scheduling class)."""
    body = pod(f"connect-{tag}", {"bench": "client"},
               {"image": "python:3.11",
                "command": ["python3", "-c", CONNECT_SCRIPT, cluster_ip, "80", pod_ip, "9376",
                            str(CONNECTS), str(WARM_CONNECTS), str(PACE)]}, restart="Never")
    out: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    setup = "?"
    for line in run_to_completion(api, body, timeout=180).splitlines():
        key, _, values = line.partition(" ")
        if key in out:
            out[key] += [float(v) for v in values.split()]
        elif key == "setup":
            setup = values.strip()
    if any(len(values) != CONNECTS for values in out.values()):
        raise RuntimeError(f"connect pod gave {[len(v) for v in out.values()]} samples")
    return {"cluster": out["a"], "pod": out["b"], "loopback": out["c"]}, setup


# --------------------------------------------------------------------------- 3. programming


class SliceWatch:
    """Records when each EndpointSlice first shows endpoints to a watcher."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        rv = api.call("GET", f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
                      )["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, args=(rv,), daemon=True)
        self.thread.start()

    def _run(self, rv: str) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=self.api.ctx,
                                           timeout=300)
        conn.request("GET", f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
                     f"?watch=true&resourceVersion={rv}&timeoutSeconds=240")
        r = conn.getresponse()
        while not self.stop.is_set():
            line = r.readline()
            if not line:
                break
            now = time.perf_counter()
            obj = json.loads(line).get("object") or {}
            svc = ((obj.get("metadata") or {}).get("labels") or {}).get(
                "kubernetes.io/service-name")
            if svc and obj.get("endpoints"):
                self.seen.setdefault(svc, now)
        conn.close()


def host_connects(ip: str, port: int, deadline: float) -> float | None:
    """Try a TCP connect from the host every 2 ms; the time of the first success."""
    tick = time.perf_counter()
    while time.perf_counter() < deadline:
        with socket.socket() as s:
            s.settimeout(0.05)
            try:
                s.connect((ip, port))
                return time.perf_counter()
            except OSError:
                pass
        tick += 0.002
        pause = tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    return None


def programming(api: Api, selector: dict[str, str],
                tag: str) -> tuple[list[float], list[float], list[float]]:
    """Per new Service: seconds until the host connects, until a watcher sees its
    EndpointSlice, and from that moment until the host connects (the proxy's share:
    its watch, sync and the kernel)."""
    watch = SliceWatch(api)
    to_kernel: list[float] = []
    to_slice: list[float] = []
    after_slice: list[float] = []
    try:
        for i in range(PROG_SAMPLES):
            name = f"prog-{tag}-{i}"
            t0 = time.perf_counter()
            svc = api.call("POST", api.services(), service(name, selector, 80, 9376))
            ip = svc["spec"]["clusterIP"]
            if i == 0:
                not_via_default_route(ip)
            t1 = host_connects(ip, 80, t0 + 10)
            if t1 is None:
                raise RuntimeError(f"{name} ({ip}) did not answer within 10 s")
            to_kernel.append(t1 - t0)
            settle = time.monotonic() + 2
            while name not in watch.seen and time.monotonic() < settle:
                time.sleep(0.01)
            if name in watch.seen:
                to_slice.append(watch.seen[name] - t0)
                after_slice.append(t1 - watch.seen[name])
            time.sleep(0.3)
    finally:
        watch.stop.set()
    return to_kernel, to_slice, after_slice


# --------------------------------------------------------------------------- 4. cold sync


def synthetic(services: int, endpoints: int = 10) -> tuple[list[Any], dict[Any, list[Any]]]:
    from podnet.proxy.views import Endpoint, ServicePort

    ports, eps = [], {}
    svc0, pod0 = int(IPv4Address("10.96.1.0")), int(IPv4Address("10.244.0.2"))
    for i in range(services):
        p = ServicePort("default", f"s{i}", "http", "TCP", str(IPv4Address(svc0 + i)), 80)
        ports.append(p)
        eps[p.key] = [Endpoint(str(IPv4Address(pod0 + (i * endpoints + j) % 60000)), 8080,
                               node_name="node-0") for j in range(endpoints)]
    return ports, eps


def cold_compute(services: int) -> tuple[float, float, list[str], int]:
    """The proxier's first-sync computation: pieces, then the scripts (nft text)."""
    from podnet.proxy import ruleset, tables
    from podnet.proxy.proxier import paused_gc

    node = ruleset.NodeInfo(node_ip="10.250.0.2", node_name="node-0")
    ports, eps = synthetic(services)
    with paused_gc():
        t0 = time.perf_counter()
        pieces = [ruleset.piece(p, eps[p.key], node) for p in ports]
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        statements = 0
        scripts = []
        for script in tables.Tables(node).load(pieces):
            statements += tables.statement_count(script)
            scripts.append(tables.text(script))
        rendered = time.perf_counter() - t0
    return made, rendered, scripts, statements


def _in_fresh_netns(work: Any) -> Any:
    """Run `work(ns)` with a network namespace of our own, deleted afterwards."""
    ns = f"benchproxy-cold-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
    try:
        return work(ns)
    finally:
        # Remove the table synchronously: a dying namespace would tear it down in a kernel
        # worker, in the middle of the next measurement.
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "ip",
                        "podnet-proxy"], capture_output=True, timeout=120)
        subprocess.run(["ip", "netns", "del", ns], timeout=30)
        time.sleep(0.5)


def free_mb() -> int:
    return int(subprocess.run(["free", "-m"], capture_output=True, text=True
                              ).stdout.splitlines()[1].split()[6])


def cold_kernel(scripts: list[str], rounds: int = 3) -> list[float]:
    """Apply precomputed scripts in order with `nft.apply` (libnftables, as the proxier
    does) into a fresh namespace: the kernel's share alone; seconds per round."""
    from podnet.proxy import nft

    async def load(ns: str) -> None:
        for script in scripts:
            await nft.apply(ns, script)

    return [_in_fresh_netns(lambda ns: _timed(ns, load)) for _ in range(rounds)]


def cold_sync(services: int, rounds: int = 3) -> list[float]:
    """The proxier's first sync end to end, into a fresh namespace: `nft.apply_each` over
    lazily made pieces and scripts (Python makes the next transaction while libnftables
    and the kernel take the previous); seconds per round."""
    from podnet.proxy import nft, ruleset, tables
    from podnet.proxy.proxier import paused_gc

    node = ruleset.NodeInfo(node_ip="10.250.0.2", node_name="node-0")
    ports, eps = synthetic(services)

    async def sync(ns: str) -> None:
        pieces = (ruleset.piece(p, eps[p.key], node) for p in ports)  # as the proxier
        with paused_gc():
            await nft.apply_each(ns, tables.texts(tables.Tables(node).load(pieces)))

    return [_in_fresh_netns(lambda ns: _timed(ns, sync)) for _ in range(rounds)]


def _timed(ns: str, work: Any) -> float:
    t0 = time.perf_counter()
    asyncio.run(work(ns))
    took = time.perf_counter() - t0
    if free_mb() < 2000:
        raise RuntimeError("less than 2 GB of memory left; stopping the cold sync")
    return took


# --------------------------------------------------------------------------- main


def quantiles(values: list[float]) -> str:
    return " / ".join(f"{pct(values, q):.0f}" for q in (50, 90, 99, 99.9))


def added(lat: dict[str, list[float]], q: float) -> float:
    """ClusterIP quantile minus pod-IP quantile, same run (µs)."""
    return pct(lat["cluster"], q) - pct(lat["pod"], q)


def paired_median(lat: dict[str, list[float]]) -> float:
    """Median of (ClusterIP connect minus the pod-IP connect beside it in time)."""
    return statistics.median(c - d for c, d in zip(lat["cluster"], lat["pod"], strict=True))


def block_added_p99(lat: dict[str, list[float]]) -> list[float]:
    """The p99 difference in each of BLOCKS consecutive blocks of pairs."""
    size = len(lat["pod"]) // BLOCKS
    return [pct(lat["cluster"][i * size:(i + 1) * size], 99)
            - pct(lat["pod"][i * size:(i + 1) * size], 99) for i in range(BLOCKS)]


def slow(values: list[float], over: float) -> int:
    return sum(1 for v in values if v > over)


def bootstrap(values: list[T], stat: Callable[[list[T]], float], rounds: int = 2000
              ) -> tuple[float, float]:
    """A 90% percentile-bootstrap interval of stat(values) (fixed seed: reproducible)."""
    rng = random.Random(0)
    got = sorted(stat(rng.choices(values, k=len(values))) for _ in range(rounds))
    return got[int(0.05 * rounds)], got[int(0.95 * rounds) - 1]


def throughput_row(pairs: list[tuple[float, float]]) -> tuple[str, str]:
    ratios = [c / d for d, c in pairs]
    low, high = bootstrap(ratios, statistics.median)
    d = statistics.median(x for x, _ in pairs)
    c = statistics.median(x for _, x in pairs)
    return (f"{statistics.median(ratios):.3f}",
            f"90% interval {low:.3f} to {high:.3f}; medians ClusterIP {c / 1e9:.2f}, pod IP "
            f"{d / 1e9:.2f} Gbit/s (ratio {c / d:.3f}); pair ratios "
            f"{', '.join(f'{r:.2f}' for r in ratios)}; runs in Gbit/s, pod IP "
            f"{', '.join(f'{x / 1e9:.1f}' for x, _ in pairs)} / ClusterIP "
            f"{', '.join(f'{x / 1e9:.1f}' for _, x in pairs)} (2 s each)")


def added_p99_interval(lat: dict[str, list[float]], rounds: int = 200) -> tuple[float, float]:
    """90% bootstrap interval of the added p99, resampling whole rounds (a ClusterIP and
    a pod-IP connect made side by side stay together)."""
    def stat(xs: list[tuple[float, float]]) -> float:
        return pct([c for c, _ in xs], 99) - pct([d for _, d in xs], 99)

    return bootstrap(list(zip(lat["cluster"], lat["pod"], strict=True)), stat, rounds)


def connect_row(lat: dict[str, list[float]], setup: str) -> tuple[str, str]:
    blocks = block_added_p99(lat)
    low, high = added_p99_interval(lat)
    return (f"{added(lat, 50):.1f} / {added(lat, 99):.1f}",
            f"added p99 90% interval {low:.1f} to {high:.1f}; p50 / p90 / p99 / p99.9: "
            f"ClusterIP {quantiles(lat['cluster'])}, pod IP "
            f"{quantiles(lat['pod'])}, loopback in the client pod "
            f"{quantiles(lat['loopback'])} µs; paired median {paired_median(lat):.1f} µs; p99 "
            f"difference per block of {len(lat['pod']) // BLOCKS:,} rounds: median "
            f"{statistics.median(blocks):.1f}, range {min(blocks):.1f} to {max(blocks):.1f}; "
            f"> 1 ms: {slow(lat['cluster'], 1000)} / {slow(lat['pod'], 1000)}, SYN "
            f"retransmits: {slow(lat['cluster'], SLOW_US)} / {slow(lat['pod'], SLOW_US)} "
            f"({len(lat['pod']):,} rounds; client {setup})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", help="append the results to this markdown file")
    ap.add_argument("--label", default="incremental proxy",
                    help="the heading's note in --write's section")
    args = ap.parse_args()
    rows: list[tuple[str, str, str, str]] = []

    def add(what: str, value: str, goal: str, peer: str = "") -> None:
        rows.append((what, value, goal, peer))
        print(f"  {what:<50} {value:>18}   goal {goal:<16} {peer}", flush=True)

    try:
        check_alone()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="podnet-bench-proxy-"))
    state = root / "state"
    notes: list[str] = []
    try:
        subprocess.run([*PODNET, "up", "--name", NAME, "--state-dir", str(state), "--port",
                        str(PORT), "--no-kubeconfig-merge"], check=True, capture_output=True,
                       env=env(), timeout=120)
        api = Api(state)
        serve = {"image": AGNHOST, "args": ["serve-hostname"],
                 "ports": [{"containerPort": 9376}],
                 "readinessProbe": {"tcpSocket": {"port": 9376}, "periodSeconds": 5}}
        for i in range(2):
            api.call("POST", api.pods(), pod(f"web-{i}", {"app": "bench-web",
                                                          "pin": f"web-{i}"}, serve))
        api.call("POST", api.pods(), pod(
            "sink", {"app": "bench-sink"},
            {"image": "python:3.11", "command": ["python3", "-c", SINK_SCRIPT, "9376"],
             "readinessProbe": {"tcpSocket": {"port": 9376}, "periodSeconds": 5}}))
        api.call("POST", api.pods(), pod(  # two servers: the concurrent runs need both
            "iperf-server", {"app": "bench-iperf"},
            {"image": IPERF_IMAGE,
             "command": ["sh", "-c", "iperf3 -s -p 5201 & exec iperf3 -s -p 5202"]}))
        wait_pod(api, "web-0", ("Running",), ready=True)
        wait_pod(api, "web-1", ("Running",), ready=True)
        sink_ip = wait_pod(api, "sink", ("Running",), ready=True)["status"]["podIP"]
        iperf_ip = wait_pod(api, "iperf-server", ("Running",))["status"]["podIP"]
        sink_svc = api.call("POST", api.services(), service(
            "sink", {"app": "bench-sink"}, 80, 9376))["spec"]["clusterIP"]
        iperf_a, iperf_b = (api.call("POST", api.services(), service(
            f"iperf-{port}", {"app": "bench-iperf"}, 5201, port))["spec"]["clusterIP"]
            for port in (5201, 5202))
        nxt = fill_services(api, 100, 0)
        wait_proxy(api)
        time.sleep(1.0)  # the iperf3 server has had time to listen

        check_alone()
        # 1. throughput: pairs of runs, the order alternating within each pair
        tput = throughput(api, iperf_ip, iperf_a, iperf_b)
        value, peer = throughput_row(tput["both"])
        add(f"throughput ClusterIP / pod IP, concurrent: median of {THROUGHPUT_PAIRS} "
            "paired ratios", value, ">= 0.95", f"both flows at once, clients on core 0, "
            f"servers on core 1; {peer}")
        value, peer = throughput_row(tput["run"])
        add(f"throughput ClusterIP / pod IP, alone: median of {THROUGHPUT_PAIRS} paired "
            "ratios", value, ">= 0.95", f"one flow at a time, client core 0, server core 1; "
            f"{peer}")
        check_alone()
        # 2. connect latency at 100 Services (10,000 comes after the programming measure)
        n_small = service_count(api)
        lat_small, setup_small = connect_times(api, sink_svc, sink_ip, "small")
        value, peer = connect_row(lat_small, setup_small)
        add(f"connect added by ClusterIP at {n_small:,} Services p50 / p99 (µs)", value,
            "p99 <= 40", peer)

        check_alone()
        # 3. network programming latency at ~1,000 Services, then at ~10,000
        for total in (1000, 10_000):
            nxt = fill_services(api, total - PROG_SAMPLES - 10, nxt)
            wait_proxy(api, timeout=300)
            check_alone()
            n_prog = service_count(api)
            to_kernel, to_slice, after = programming(api, {"app": "bench-web"}, f"p{total}")
            add(f"new Service → host connect succeeds, {n_prog:,} Services p50 / p99 (ms)",
                f"{pct(to_kernel, 50) * 1e3:.0f} / {pct(to_kernel, 99) * 1e3:.0f}",
                "p99 <= 100" if n_prog < 5000 else "p99 <= 250",
                f"EndpointSlice seen by a watcher p50 {pct(to_slice, 50) * 1e3:.0f} / p99 "
                f"{pct(to_slice, 99) * 1e3:.0f} ms; from then to the connect (the proxy's "
                f"share) p50 {pct(after, 50) * 1e3:.0f} / p99 {pct(after, 99) * 1e3:.0f} ms "
                f"({PROG_SAMPLES} samples, 2 ms polls)")

        # 2 (continued). connect latency at 10,000 Services
        nxt = fill_services(api, 10_000, nxt)
        wait_proxy(api, timeout=300)
        check_alone()
        n_big = service_count(api)
        lat_big, setup_big = connect_times(api, sink_svc, sink_ip, "big")
        check_alone()
        value, peer = connect_row(lat_big, setup_big)
        add(f"connect added by ClusterIP at {n_big:,} Services p50 / p99 (µs)", value,
            "p99 <= 40", peer)
        ratio = {(path, q): pct(lat_big[path], q) / pct(lat_small[path], q)
                 for path in ("cluster", "pod", "loopback") for q in (50, 99)}
        add(f"ClusterIP connect at {n_big:,} / at {n_small:,} Services, p50 / p99 (ratio)",
            f"{ratio['cluster', 50]:.2f} / {ratio['cluster', 99]:.2f}", "flat: 0.9-1.1",
            f"same ratio for the pod IP (same hooks, no DNAT) {ratio['pod', 50]:.2f} / "
            f"{ratio['pod', 99]:.2f} and for loopback (no table) {ratio['loopback', 50]:.2f}"
            f" / {ratio['loopback', 99]:.2f}; ClusterIP ratio ÷ pod-IP ratio "
            f"{ratio['cluster', 50] / ratio['pod', 50]:.2f} / "
            f"{ratio['cluster', 99] / ratio['pod', 99]:.2f}, ÷ loopback ratio "
            f"{ratio['cluster', 50] / ratio['loopback', 50]:.2f} / "
            f"{ratio['cluster', 99] / ratio['loopback', 99]:.2f}; added p50 "
            f"{added(lat_small, 50):.1f} → {added(lat_big, 50):.1f} µs, p99 "
            f"{added(lat_small, 99):.1f} → {added(lat_big, 99):.1f} µs")
    finally:
        if state.exists():
            subprocess.run([*PODNET, "down", "--name", NAME, "--state-dir", str(state),
                            "--purge"], capture_output=True, env=env(), timeout=180)
        shutil.rmtree(root, ignore_errors=True)

    # 4. cold sync, with the cluster gone (nothing else competes for the cores); growing
    # sizes, memory checked after each (see the module docstring)
    for services in (1000, 3000, 10_000):
        made, rendered, scripts, statements = cold_compute(services)
        kernel = statistics.median(cold_kernel(scripts))
        del scripts
        runs = cold_sync(services)
        add(f"cold sync {services:,} x 10, sent to the kernel, median of 3 (s)",
            f"{statistics.median(runs):.2f}", "<= 2" if services == 10_000 else "",
            f"runs {', '.join(f'{x:.2f}' for x in runs)}; alone: compute {made + rendered:.2f} "
            f"(pieces {made:.2f} + nft text {rendered:.2f}), kernel {kernel:.2f} "
            f"(precomputed, in order); {statements:,} statements in "
            f"{-(-services // 1000) + 1} transactions; {free_mb():,} MB free after")
    if args.write:
        lines = [f"\n### bench/proxy — {time.strftime('%Y-%m-%d')} ({args.label})\n",
                 f"Machine: {machine()}. Client pods, servers, proxy and API share the "
                 "machine.\n",
                 "| measure | result | goal | peer in the same run |", "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        lines += ["", *notes]
        with Path(args.write).open("a") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
