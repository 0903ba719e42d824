"""A real podnet cluster, started with `podnet up` as a user would, driven by kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PODNET = [sys.executable, "-m", "podnet.cli.main"]
E2E_PORT = int(os.environ.get("PODNET_E2E_PORT", "16443"))


@dataclass
class Cluster:
    name: str
    state_dir: Path
    port: int
    kubeconfig: Path

    def podnet(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PODNET, *args, "--name", self.name, "--state-dir",
                               str(self.state_dir)], capture_output=True, text=True,
                              check=check, env=_env(), timeout=120)

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """kubectl with a fresh discovery cache every call (see kubectl-wire.md §1.4)."""
        with tempfile.TemporaryDirectory() as cache:
            r = subprocess.run(
                ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", cache, *args],
                capture_output=True, text=True, input=stdin, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def apply(cluster: Cluster, text: str, *args: str) -> None:
    """`kubectl apply [args] -f` of a manifest written inline (dedented)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(textwrap.dedent(text))
    try:
        cluster.kubectl("apply", *args, "-f", fh.name)
    finally:
        Path(fh.name).unlink()


def wait_for(pred: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `pred` until it returns something true (returned), or fail saying `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PODNET_NO_KUBECONFIG_MERGE"] = "1"
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            cluster_route_guards: list[str]) -> Iterator[Cluster]:
    """A fresh cluster per test module (about a second to start), gone before the next
    tier runs: the kernel tests build their own nodes and must not share the host with a
    live cluster's routes."""
    state = tmp_path_factory.mktemp("podnet-e2e")
    c = Cluster("e2e", state, E2E_PORT, state / "kubeconfig")
    r = subprocess.run([*PODNET, "up", "--name", c.name, "--state-dir", str(state), "--port",
                        str(E2E_PORT), "--no-kubeconfig-merge"], capture_output=True, text=True,
                       env=_env(), timeout=120)
    if r.returncode != 0:
        log = (state / "podnet.log").read_text() if (state / "podnet.log").exists() else ""
        pytest.fail(f"podnet up failed:\n{r.stdout}\n{r.stderr}\n{log}", pytrace=False)
    try:
        yield c
    finally:
        subprocess.run([*PODNET, "down", "--name", c.name, "--state-dir", str(state)],
                       capture_output=True, text=True, env=_env(), timeout=60)
