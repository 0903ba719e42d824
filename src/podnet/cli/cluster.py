"""`podnet up`, `down`, `status`: start the cluster process in the background, stop it by
PID, report its health.

Only processes podnet started are ever signalled, by the PID it recorded, and only after
checking that PID still runs `podnet serve` for this state directory (PIDs get reused).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podnet.cli.paths import ClusterPaths

READY_TIMEOUT = 30.0


@dataclass
class ClusterConfig:
    host: str = "127.0.0.1"
    port: int = 6443
    store_url: str = ""

    @classmethod
    def load(cls, paths: ClusterPaths) -> ClusterConfig:
        try:
            data = json.loads(paths.config_file.read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        return cls(data.get("host", "127.0.0.1"), int(data.get("port", 6443)),
                   data.get("store_url", ""))

    def save(self, paths: ClusterPaths) -> None:
        paths.config_file.write_text(json.dumps(
            {"host": self.host, "port": self.port, "store_url": self.store_url}))


@contextlib.contextmanager
def locked(paths: ClusterPaths) -> Iterator[None]:
    """One `up`/`down` at a time per cluster."""
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.state_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_pid(paths: ClusterPaths) -> int | None:
    try:
        return int(paths.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_ours(pid: int, paths: ClusterPaths) -> bool:
    """Does `pid` run `podnet serve` for this state dir? (Guards against PID reuse.)"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in cmdline]
    return "serve" in args and str(paths.state_dir) in args and any(
        "podnet" in a for a in args)


def running_pid(paths: ClusterPaths) -> int | None:
    pid = read_pid(paths)
    if pid is not None and is_ours(pid, paths):
        return pid
    return None


def ca_context(paths: ClusterPaths) -> ssl.SSLContext | None:
    ca = paths.state_dir / "pki" / "ca.crt"
    if not ca.exists():
        return None
    ctx = ssl.create_default_context(cafile=str(ca))
    return ctx


def probe(paths: ClusterPaths, cfg: ClusterConfig, path: str = "/readyz",
          timeout: float = 1.0) -> tuple[int, str]:
    """(HTTP status, body) of an unauthenticated GET, or (0, error)."""
    ctx = ca_context(paths)
    if ctx is None:
        return 0, "no CA yet"
    conn = http.client.HTTPSConnection(cfg.host, cfg.port, timeout=timeout, context=ctx)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc)
    finally:
        conn.close()


def start(paths: ClusterPaths, cfg: ClusterConfig) -> tuple[int, bool]:
    """Start `podnet serve` in the background unless it runs; (pid, started_now)."""
    pid = running_pid(paths)
    if pid is not None:
        return pid, False
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(paths)
    cmd = [sys.executable, "-m", "podnet.cli.main", "serve", "--name", paths.name,
           "--state-dir", str(paths.state_dir), "--host", cfg.host, "--port", str(cfg.port)]
    if cfg.store_url:
        cmd += ["--store", cfg.store_url]
    with open(paths.log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)
    paths.pid_file.write_text(str(proc.pid))
    return proc.pid, True


def wait_ready(paths: ClusterPaths, cfg: ClusterConfig, pid: int,
               timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise RuntimeError(
                f"podnet exited while starting; see {paths.log_file}:\n" + _tail(paths.log_file))
        status, _ = probe(paths, cfg, timeout=0.5)
        if status == 200:
            return
        time.sleep(0.02)
    raise RuntimeError(f"the API server did not become ready in {timeout:.0f}s; see "
                       f"{paths.log_file}")


def stop(paths: ClusterPaths, timeout: float = 15.0) -> bool:
    """SIGTERM the recorded PID (if it is ours), SIGKILL after `timeout`; True if it ran."""
    pid = running_pid(paths)
    if pid is None:
        with contextlib.suppress(FileNotFoundError):
            paths.pid_file.unlink()
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.02)
    with contextlib.suppress(FileNotFoundError):
        paths.pid_file.unlink()
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def status(paths: ClusterPaths) -> dict[str, Any]:
    cfg = ClusterConfig.load(paths)
    pid = running_pid(paths)
    components: dict[str, Any] = {}
    if pid is not None:
        try:
            components = json.loads(paths.status_file.read_text()).get("components", {})
        except (FileNotFoundError, ValueError):
            components = {}
        code, body = probe(paths, cfg)
        components.setdefault("apiserver", {})["ready"] = code == 200
        if code != 200:
            components["apiserver"]["detail"] = body[:200]
    return {"name": paths.name, "pid": pid, "running": pid is not None,
            "server": f"https://{cfg.host}:{cfg.port}", "state_dir": str(paths.state_dir),
            "kubeconfig": str(paths.kubeconfig), "components": components}
