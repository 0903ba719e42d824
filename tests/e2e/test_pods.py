"""Pods really run: processes in their own network namespaces, driven by kubectl."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_not_via_default_route
from tests.e2e.conftest import Cluster, apply, wait_for

HOSTNAMES = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: hostnames}
spec:
  replicas: 3
  selector: {matchLabels: {app: MyApp}}
  template:
    metadata: {labels: {app: MyApp}}
    spec:
      containers:
      - name: serve-hostname
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [serve-hostname]
        ports: [{containerPort: 9376}]
        readinessProbe: {httpGet: {path: /, port: 9376}, periodSeconds: 1}
"""

CLIENT = """
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  containers:
  - name: py
    image: python:3.11
    command: [python3, -c, "import time; print('client up', flush=True); time.sleep(100000)"]
    env:
    - {name: MY_POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: GREETING, value: "hello $(MY_POD_IP)"}
"""






def pods(cluster: Cluster, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json("get", "pods", "-l", selector)["items"]
    return items


def netns_list() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def workloads(cluster: Cluster) -> Any:
    apply(cluster, HOSTNAMES)
    apply(cluster, CLIENT)
    cluster.kubectl("wait", "--for=condition=Available", "deployment/hostnames",
                    "--timeout=60s", timeout=90)
    cluster.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=60s", timeout=90)
    yield cluster
    cluster.kubectl("delete", "deployment", "hostnames", "--ignore-not-found", "--wait=true",
                    timeout=90)
    cluster.kubectl("delete", "pod", "client", "--ignore-not-found", "--wait=true",
                    "--grace-period=1", timeout=90)


def test_deployment_pods_are_ready_and_answer_with_their_hostname(workloads: Cluster) -> None:
    items = pods(workloads, "app=MyApp")
    assert len(items) == 3
    table = workloads.kubectl("get", "pods", "-l", "app=MyApp", "-o", "wide").stdout
    assert table.count("1/1") == 3 and table.count("Running") == 3
    for pod in items:
        ip = pod["status"]["podIP"]
        assert ip.startswith("10.244.")
        # From the host (the route goes via the node link, never the default route).
        assert_not_via_default_route(ip)
        with socket.create_connection((ip, 9376), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            body = s.recv(4096).decode()
        assert body.strip().endswith(pod["metadata"]["name"])
        # From a second pod.
        got = workloads.kubectl(
            "exec", "client", "--", "python3", "-c",
            f"import urllib.request; print(urllib.request.urlopen('http://{ip}:9376', "
            "timeout=5).read().decode())").stdout.strip()
        assert got == pod["metadata"]["name"]


def test_logs_and_exec_exit_codes(workloads: Cluster) -> None:
    assert "client up" in workloads.kubectl("logs", "client").stdout
    r = workloads.kubectl("exec", "client", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                          check=False)
    assert r.returncode == 3
    assert r.stdout == "out\n"
    assert "err" in r.stderr and "command terminated with exit code 3" in r.stderr
    r = workloads.kubectl("exec", "-i", "client", "--", "cat", stdin="piped through\n")
    assert r.stdout == "piped through\n"


def test_exec_with_a_tty(workloads: Cluster) -> None:
    with tempfile.TemporaryDirectory() as cache:
        cmd = (f"kubectl --kubeconfig {workloads.kubeconfig} --cache-dir {cache} exec -it client"
               " -- sh -c 'tty; exit 4'")
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    assert "/dev/pts/" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 4


def test_port_forward_carries_several_connections(workloads: Cluster) -> None:
    name = pods(workloads, "app=MyApp")[0]["metadata"]["name"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(workloads.kubeconfig), "--cache-dir", cache,
             "port-forward", f"pod/{name}", f"{port}:9376"], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "Forwarding from 127.0.0.1" in line, line
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    assert c.recv(4096).decode().strip().endswith(name)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_environment_and_service_account_files(workloads: Cluster) -> None:
    env = dict(line.split("=", 1) for line in workloads.kubectl(
        "exec", "client", "--", "env").stdout.splitlines() if "=" in line)
    ip = workloads.kubectl_json("get", "pod", "client")["status"]["podIP"]
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert env["MY_POD_IP"] == ip and env["GREETING"] == f"hello {ip}"
    assert env["HOSTNAME"] == "client"
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    token = workloads.kubectl("exec", "client", "--", "cat", f"{sa}/token").stdout
    assert token.count(".") == 2 and not token.endswith("\n")
    assert workloads.kubectl("exec", "client", "--", "cat", f"{sa}/namespace").stdout == "default"
    ca = workloads.kubectl("exec", "client", "--", "cat", f"{sa}/ca.crt").stdout
    assert ca == (workloads.state_dir / "pki" / "ca.crt").read_text()
    resolv = workloads.kubectl("exec", "client", "--", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.96.0.10" in resolv
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "options ndots:5" in resolv
    hosts = workloads.kubectl("exec", "client", "--", "cat", "/etc/hosts").stdout
    assert f"{ip}\tclient" in hosts
    # The official client finds its in-cluster configuration (the network path to the API
    # server arrives with Services in the kernel).
    r = workloads.kubectl("exec", "client", "--", "python3", "-c",
                          "from kubernetes import config; config.load_incluster_config(); "
                          "print('incluster ok')")
    assert r.stdout.strip() == "incluster ok"


def test_deleting_a_pod_frees_its_ip_and_leaves_nothing(workloads: Cluster) -> None:
    apply(workloads, """
    apiVersion: v1
    kind: Pod
    metadata: {name: short-lived}
    spec:
      containers:
      - {name: pause, image: registry.k8s.io/pause:3.10}
    """)
    workloads.kubectl("wait", "--for=condition=Ready", "pod/short-lived", "--timeout=60s",
                      timeout=90)
    pod = workloads.kubectl_json("get", "pod", "short-lived")
    uid = pod["metadata"]["uid"]
    ip = pod["status"]["podIP"]
    ns_name = next(n for n in netns_list() if n.startswith(f"podnet-{workloads.name}-")
                   and uid.replace("-", "")[:8] in n.replace("-", ""))
    runtime = workloads.state_dir / "agent" / "run" / "runtime" / "containers" / uid
    state = json.loads((runtime / "pause.json").read_text())
    pid = int(state["pid"])
    assert Path(f"/proc/{pid}").exists()
    # pause prints nothing: its log is empty, not missing.
    assert workloads.kubectl("logs", "short-lived").stdout == ""
    workloads.kubectl("delete", "pod", "short-lived", "--wait=true", timeout=90)
    wait_for(lambda: ns_name not in netns_list(), what="pod netns removed")
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), what="container process gone")
    ipam = json.loads((workloads.state_dir / "agent" / "run" / "ipam.json").read_text())
    assert uid not in ipam["allocations"] and ip not in ipam["allocations"].values()
    links = subprocess.run(["ip", "netns", "exec", f"podnet-{workloads.name}-node-0", "ip", "-o",
                            "route"], capture_output=True, text=True).stdout
    assert ip not in links


def test_agent_restart_adopts_running_pods(workloads: Cluster) -> None:
    before = {p["metadata"]["uid"]: p["status"]["podIP"] for p in pods(workloads, "app=MyApp")}
    runtime = workloads.state_dir / "agent" / "run" / "runtime" / "containers"
    pids = {uid: json.loads((runtime / uid / "serve-hostname.json").read_text())["pid"]
            for uid in before}
    serve_pid = int((workloads.state_dir / "podnet.pid").read_text())
    agent_pid = int((workloads.state_dir / "agent.pid").read_text())
    controllers_pid = int((workloads.state_dir / "controllers.pid").read_text())
    # kill -9 the agent and everything else podnet runs; only the containers survive.
    # The controllers, a child of serve, go with it (their parent-death signal).
    subprocess.run(["kill", "-9", str(agent_pid), str(serve_pid)], check=True)
    for gone in (serve_pid, agent_pid, controllers_pid):
        wait_for(lambda gone=gone: not Path(f"/proc/{gone}").exists()
                 or Path(f"/proc/{gone}/stat").read_text().split(") ")[1][0] == "Z",
                 what="podnet processes gone")
    # The containers outlive the agent.
    assert all(Path(f"/proc/{pid}").exists() for pid in pids.values())
    r = workloads.podnet("up", "--port", str(workloads.port), "--no-kubeconfig-merge")
    assert r.returncode == 0, r.stderr
    workloads.kubectl("wait", "--for=condition=Available", "deployment/hostnames",
                      "--timeout=60s", timeout=90)
    after = {p["metadata"]["uid"]: p["status"]["podIP"] for p in pods(workloads, "app=MyApp")}
    assert after == before  # same pods, same IPs
    for uid, pid in pids.items():
        state = json.loads((runtime / uid / "serve-hostname.json").read_text())
        assert state["pid"] == pid  # adopted, not restarted
    for ip in after.values():
        with socket.create_connection((ip, 9376), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert s.recv(4096)
