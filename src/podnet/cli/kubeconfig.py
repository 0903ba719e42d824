"""Kubeconfig files: podnet's own admin kubeconfig, and merging it into the user's.

The admin kubeconfig embeds everything (CA, client certificate and key as `*-data`), so
it works from any directory and can be copied. `merge_into` / `remove_from` add and
remove one cluster/user/context triple in the user's kubeconfig the way kind does:
entries with other names, and any top-level keys podnet does not know, are kept as they
are, so `podnet up`/`down` never disturb the user's other clusters.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from podnet.apiserver.pki import Pki

_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def admin_kubeconfig(
    server_url: str,
    pki: Pki,
    cluster_name: str,
    context_name: str,
    *,
    user_name: str | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    """The admin kubeconfig as a dict (see `write_admin_kubeconfig`)."""
    user = user_name or context_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": _b64(pki.ca_cert_pem),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki.admin_cert_pem),
                    "client-key-data": _b64(pki.admin_key_pem),
                },
            }
        ],
        "contexts": [
            {
                "name": context_name,
                "context": {"cluster": cluster_name, "user": user, "namespace": namespace},
            }
        ],
        "current-context": context_name,
        "preferences": {},
    }


def write_admin_kubeconfig(
    path: Path,
    server_url: str,
    pki: Pki,
    cluster_name: str,
    context_name: str,
    *,
    user_name: str | None = None,
) -> None:
    """Write a kubeconfig for `kubernetes-admin` (group system:masters), mode 0600.

    The user entry is named after the context unless `user_name` is given, as kind
    names all three `kind-<cluster>`.
    """
    config = admin_kubeconfig(server_url, pki, cluster_name, context_name, user_name=user_name)
    _write_yaml(path, config, mode=0o600)


def merge_into(
    user_kubeconfig: Path, admin_kubeconfig: Path, context_name: str, set_current: bool
) -> None:
    """Add (or replace) the context `context_name` from `admin_kubeconfig`, with the
    cluster and user it names, in `user_kubeconfig`, creating that file if missing."""
    source = _read_yaml(admin_kubeconfig)
    context = _find(source, "contexts", context_name)
    if context is None:
        raise ValueError(f'{admin_kubeconfig}: no context "{context_name}"')
    ctx_body = context.get("context") or {}
    cluster = _find(source, "clusters", ctx_body.get("cluster", ""))
    user = _find(source, "users", ctx_body.get("user", ""))
    if cluster is None or user is None:
        raise ValueError(
            f'{admin_kubeconfig}: context "{context_name}" names a missing cluster or user'
        )

    target = _real(user_kubeconfig)
    config = _read_yaml(target) if target.exists() else _empty_config()
    for section, entry in (("clusters", cluster), ("users", user), ("contexts", context)):
        _upsert(config, section, entry)
    if set_current or not config.get("current-context"):
        config["current-context"] = context_name
    _write_yaml(target, config, mode=_mode_of(target))


def remove_from(user_kubeconfig: Path, context_name: str) -> bool:
    """Remove the context `context_name` and the cluster and user it names (kind's
    `delete cluster`); clear current-context if it pointed there. True if the file
    changed; a missing file is left missing."""
    target = _real(user_kubeconfig)
    if not target.exists():
        return False
    config = _read_yaml(target)
    context = _find(config, "contexts", context_name)
    names = {"contexts": context_name, "clusters": context_name, "users": context_name}
    if context is not None:
        body = context.get("context") or {}
        names["clusters"] = body.get("cluster", context_name)
        names["users"] = body.get("user", context_name)
    changed = False
    for section, _ in _SECTIONS:
        entries = config.get(section) or []
        kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") == names[section])]
        if len(kept) != len(entries):
            config[section] = kept
            changed = True
    if config.get("current-context") == context_name:
        config["current-context"] = ""
        changed = True
    if changed:
        _write_yaml(target, config, mode=_mode_of(target))
    return changed


# --- helpers --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _empty_config() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
        "current-context": "",
        "preferences": {},
    }


def _find(config: dict[str, Any], section: str, name: str) -> dict[str, Any] | None:
    for entry in config.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def _upsert(config: dict[str, Any], section: str, entry: dict[str, Any]) -> None:
    """Replace the entry of the same name in place (keeping the user's order), or
    append it."""
    entries = config.get(section) or []
    for i, e in enumerate(entries):
        if isinstance(e, dict) and e.get("name") == entry["name"]:
            entries[i] = entry
            break
    else:
        entries.append(entry)
    config[section] = entries


def _real(path: Path) -> Path:
    """Follow symlinks, so a kubeconfig that is a link (dotfile managers) stays one."""
    return path.expanduser().resolve()


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o600


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return _empty_config()
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a kubeconfig (expected a mapping)")
    return data


def _write_yaml(path: Path, config: dict[str, Any], *, mode: int) -> None:
    """Write atomically (temp file + rename) so a crash never leaves a torn kubeconfig;
    the file is created with `mode`, never wider."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    tmp = path.with_name(f".{path.name}.podnet-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, mode)
        f.write(text)
    os.replace(tmp, path)
