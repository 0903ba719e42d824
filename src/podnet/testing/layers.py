"""The house layer rules (DESIGN.md, "Rules of the house"), checked over source trees.

Components never import each other, only `api`, `client`, `kernel`, `util` (and the
public test kit in `testing`, for tests). Only `apiserver` imports `store`; only `agent`,
`proxy`, `policy`, `l7` import `kernel`; `trace` may import the pure compute modules of
`dns`, `proxy`, `policy`, `l7`. `cli` constructs everything and may import anything.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SHARED = frozenset({"api", "client", "util"})
KERNEL_USERS = frozenset({"agent", "proxy", "policy", "l7"})
STORE_USERS = frozenset({"apiserver"})
ANYTHING = frozenset({"cli", "testing"})
# trace may read the pure compute modules of these components (never their apply parts).
TRACE_PURE = {"dns": ("records", "zone", "answers"), "proxy": ("ruleset", "views", "tracker"),
              "policy": ("evaluate", "views", "rules"), "l7": ("routes", "model", "config")}


@dataclass(frozen=True, slots=True)
class Violation:
    file: str
    line: int
    importer: str
    imported: str

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}: podnet.{self.importer} may not import "
                f"podnet.{self.imported}")


def allowed(importer: str, target: str, module_path: tuple[str, ...]) -> bool:
    """May component `importer` import `podnet.<target>.<module_path...>`?"""
    if importer == target or importer in ANYTHING:
        return True
    if target in SHARED:
        return True
    if target == "store":
        return importer in STORE_USERS
    if target == "kernel":
        return importer in KERNEL_USERS
    if importer == "trace" and target in TRACE_PURE:
        return bool(module_path) and module_path[0] in TRACE_PURE[target]
    if target == "testing":
        return False
    return False


def check_tree(package_dir: Path) -> list[Violation]:
    """Every forbidden `podnet.*` import under `package_dir` (the `podnet` package)."""
    found: list[Violation] = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir).parts
        if len(rel) < 2:
            continue  # podnet/__init__.py
        importer = rel[0]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "podnet" or len(parts) < 2:
                    continue
                if not allowed(importer, parts[1], tuple(parts[2:])):
                    line = getattr(node, "lineno", 0)
                    found.append(Violation(str(path), line, importer, parts[1]))
                    break
    return found
