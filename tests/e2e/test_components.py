"""Each component runs alone, and `podnet up`/`down` leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query

from tests.e2e.conftest import PODNET, _env


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cache = kubeconfig.parent / "kcache"
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir",
                           str(cache), *args], capture_output=True, text=True, timeout=60)


def test_apiserver_and_controllers_run_as_separate_processes(tmp_path: Path) -> None:
    port = 17643
    state = tmp_path / "split"
    api = subprocess.Popen([*PODNET, "apiserver", "--name", "split", "--state-dir", str(state),
                            "--port", str(port), "--store", f"sqlite://{tmp_path}/split.db"],
                           env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ctl = None
    try:
        wait_port(port)
        kubeconfig = state / "kubeconfig"
        # No controllers yet: nobody has made the default ServiceAccount.
        r = kubectl(kubeconfig, "get", "serviceaccount", "default", "-n", "default")
        assert r.returncode == 1 and "not found" in r.stderr
        ctl = subprocess.Popen([*PODNET, "controllers", "--name", "split", "--state-dir",
                                str(state), "--kubeconfig", str(kubeconfig), "--port",
                                str(port)], env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = kubectl(kubeconfig, "get", "serviceaccount", "default", "-n", "default")
            if r.returncode == 0:
                break
            time.sleep(0.2)
        assert r.returncode == 0, r.stderr
        r = kubectl(kubeconfig, "get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
        assert r.stdout == "10.96.0.1"
    finally:
        for proc in (ctl, api):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
    assert port_closed(port)
    assert (tmp_path / "split.db").exists()


def test_up_twice_is_safe_and_down_leaves_nothing(tmp_path: Path) -> None:
    port = 17743
    state = tmp_path / "st"
    base = ["--name", "updown", "--state-dir", str(state)]
    args = [*PODNET, "up", *base, "--port", str(port), "--no-kubeconfig-merge"]
    first = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=60)
    assert first.returncode == 0, first.stderr
    pid = int((state / "podnet.pid").read_text())
    second = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=60)
    assert second.returncode == 0 and "already running" in second.stderr
    assert int((state / "podnet.pid").read_text()) == pid
    status = subprocess.run([*PODNET, "status", *base, "-o", "json"], capture_output=True,
                            text=True, env=_env(), timeout=30)
    assert '"running": true' in status.stdout
    # A running pod, so that `down` has namespaces, links and processes to remove.
    kubeconfig = state / "kubeconfig"
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
                        "  containers: [{name: c, image: registry.k8s.io/pause:3.10}]\n")
    assert kubectl(kubeconfig, "apply", "-f", str(manifest)).returncode == 0
    r = kubectl(kubeconfig, "wait", "--for=condition=Ready", "pod/p", "--timeout=60s")
    assert r.returncode == 0, r.stderr
    uid = kubectl(kubeconfig, "get", "pod", "p", "-o", "jsonpath={.metadata.uid}").stdout
    run_dir = state / "agent" / "run"
    assert run_dir.as_posix() in _mount_points()  # the agent's tmpfs
    cpid = json.loads((run_dir / "runtime" / "containers" / uid / "c.json")
                      .read_text())["pid"]
    assert any(n.startswith("podnet-updown-") for n in _netns())
    down = subprocess.run([*PODNET, "down", *base], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert down.returncode == 0
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert port_closed(port)
    assert not (state / "podnet.pid").exists()
    assert not any(n.startswith("podnet-updown-") for n in _netns())
    assert not Path(f"/proc/{cpid}").exists() or _zombie(cpid)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "pn-updown" not in links
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "10.244.0.0/24 via" not in routes
    assert run_dir.as_posix() not in _mount_points()
    assert (state / "data" / "state.db").exists()  # state kept without --purge
    subprocess.run([*PODNET, "down", *base, "--purge"], check=True, capture_output=True,
                   env=_env(), timeout=60)
    assert not state.exists()
    # Our kill path checks the PID belongs to us: a stale pid file naming another process
    # (here: this test runner) is never signalled.
    state.mkdir(parents=True)
    (state / "podnet.pid").write_text(str(os.getpid()))
    subprocess.run([*PODNET, "down", *base], check=True, capture_output=True, env=_env(),
                   timeout=60)
    assert sys.modules  # still alive


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f]


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_dns_runs_alone(tmp_path: Path) -> None:
    port = 17843
    state = tmp_path / "dnsalone"
    api = subprocess.Popen([*PODNET, "apiserver", "--name", "dnsalone", "--state-dir",
                            str(state), "--port", str(port)], env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dns_proc = None
    try:
        wait_port(port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dns_port = s.getsockname()[1]
        dns_proc = subprocess.Popen(
            [*PODNET, "dns", "--name", "dnsalone", "--state-dir", str(state), "--listen",
             "127.0.0.1", "--dns-port", str(dns_port)],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        answer = None
        while time.monotonic() < deadline:
            try:
                q = dns.message.make_query("dns-version.cluster.local.", "TXT")
                answer = dns.query.udp(q, "127.0.0.1", port=dns_port, timeout=1)
                if answer.answer:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        assert answer is not None and answer.answer, answer
        assert answer.answer[0].to_text().endswith('TXT "1.1.0"')
    finally:
        for proc in (dns_proc, api):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
