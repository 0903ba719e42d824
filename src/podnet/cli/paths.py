"""Where a named cluster keeps its files (pure path arithmetic, no I/O)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "podnet"


def default_state_root() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "podnet"


@dataclass(frozen=True, slots=True)
class ClusterPaths:
    name: str
    state_dir: Path

    @classmethod
    def of(cls, name: str = DEFAULT_NAME, state_dir: str | Path | None = None) -> ClusterPaths:
        return cls(name, Path(state_dir) if state_dir else default_state_root() / name)

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "podnet.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "podnet.log"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def status_file(self) -> Path:
        return self.state_dir / "status.json"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "cluster.json"

    @property
    def agent_run_dir(self) -> Path:
        """The agent's tmpfs mount point (per-pod runtime files; see kernel/mounts.py)."""
        return self.state_dir / "agent" / "run"

    @property
    def store_url(self) -> str:
        return f"sqlite://{self.state_dir / 'data' / 'state.db'}"

    @property
    def token_file(self) -> Path:
        return self.state_dir / "pki" / "tokens.csv"

    @property
    def context_name(self) -> str:
        return f"podnet-{self.name}"
