"""Pod volumes: configMap, secret, emptyDir, downwardAPI, projected (and hostPath).

`volume_files` is pure: it says which files a volume holds (path, bytes, mode) or raises
`VolumeError` with the kubelet's message. `materialise` is the small writer: it lays the
files out under the pod's state dir the way the kubelet's AtomicWriter does, so a later
update swaps a `..data` symlink instead of rewriting files under a reader:

    <dir>/..2026_01_01_00_00_00.000000001/<files>
    <dir>/..data -> ..2026_01_01_00_00_00.000000001
    <dir>/<top-level name> -> ..data/<top-level name>
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from podnet.agent.envvars import (
    Lookup,
    decode_secret_data,
    field_ref_value,
    resource_field_value,
)

DEFAULT_MODE = 0o644
# The kubelet's plugin directory names, so a pod's state dir reads like /var/lib/kubelet.
PLUGIN_DIRS = {
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "emptyDir": "kubernetes.io~empty-dir",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}

# token_for(audience, expiration_seconds) -> a bound ServiceAccount token.
TokenSource = Callable[[str | None, int], str]


class VolumeError(Exception):
    """MountVolume.SetUp failed; str() is the kubelet's message for the FailedMount event."""

    reason = "FailedMount"


@dataclass(frozen=True, slots=True)
class File:
    path: str  # relative to the volume root
    data: bytes
    mode: int = DEFAULT_MODE


@dataclass(frozen=True, slots=True)
class VolumeContext:
    """What the pure part needs to know besides the pod itself."""

    configmaps: Lookup = lambda ns, name: None
    secrets: Lookup = lambda ns, name: None
    token: TokenSource | None = None
    pod_ips: tuple[str, ...] = ()
    host_ips: tuple[str, ...] = ()
    node_allocatable: Mapping[str, Any] | None = None


def volume_kind(volume: Mapping[str, Any]) -> str:
    for kind in ("configMap", "secret", "emptyDir", "downwardAPI", "projected", "hostPath"):
        if volume.get(kind) is not None:
            return kind
    return ""


def _mode(item: Mapping[str, Any], default: int) -> int:
    mode = item.get("mode")
    return int(mode) if mode is not None else default


def _key_files(
    data: Mapping[str, bytes],
    items: Sequence[Mapping[str, Any]] | None,
    default_mode: int,
    missing: Callable[[str], str],
    optional: bool,
) -> list[File]:
    if not items:
        return [File(k, data[k], default_mode) for k in sorted(data)]
    out = []
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if optional:
                continue
            raise VolumeError(missing(key))
        out.append(File(str(item.get("path") or key), data[key], _mode(item, default_mode)))
    return out


def _configmap_data(cm: Mapping[str, Any]) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        try:
            data[k] = base64.b64decode(str(v))
        except (binascii.Error, ValueError):
            data[k] = b""
    return data


def _configmap_files(
    src: Mapping[str, Any], ns: str, ctx: VolumeContext, default_mode: int
) -> list[File]:
    name = str(src.get("name", ""))
    cm = ctx.configmaps(ns, name)
    optional = bool(src.get("optional"))
    if cm is None:
        if optional:
            return []
        raise VolumeError(f'configmap "{name}" not found')
    return _key_files(
        _configmap_data(cm),
        src.get("items"),
        default_mode,
        lambda k: f"configmap references non-existent config key: {k}",
        optional,
    )


def _secret_files(
    src: Mapping[str, Any], name: str, ns: str, ctx: VolumeContext, default_mode: int
) -> list[File]:
    secret = ctx.secrets(ns, name)
    optional = bool(src.get("optional"))
    if secret is None:
        if optional:
            return []
        raise VolumeError(f'secret "{name}" not found')
    return _key_files(
        decode_secret_data(secret),
        src.get("items"),
        default_mode,
        lambda k: f"references non-existent secret key: {k}",
        optional,
    )


def _container(pod: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    spec = pod.get("spec") or {}
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    for c in containers:
        if c.get("name") == name:
            return dict(c)
    return dict(containers[0]) if containers and not name else {}


def _downward_files(
    items: Sequence[Mapping[str, Any]],
    pod: Mapping[str, Any],
    ctx: VolumeContext,
    default_mode: int,
) -> list[File]:
    out = []
    for item in items:
        path = str(item.get("path", ""))
        if item.get("fieldRef") is not None:
            try:
                value = field_ref_value(
                    str(item["fieldRef"].get("fieldPath", "")),
                    pod,
                    pod_ips=ctx.pod_ips,
                    host_ips=ctx.host_ips,
                )
            except Exception as e:
                raise VolumeError(str(e)) from None
        elif item.get("resourceFieldRef") is not None:
            ref = item["resourceFieldRef"]
            try:
                value = resource_field_value(
                    ref, _container(pod, ref.get("containerName")), ctx.node_allocatable
                )
            except Exception as e:
                raise VolumeError(str(e)) from None
        else:
            continue
        out.append(File(path, value.encode(), _mode(item, default_mode)))
    return out


def volume_files(
    volume: Mapping[str, Any], pod: Mapping[str, Any], ctx: VolumeContext
) -> list[File] | None:
    """The files of one volume; None for volumes that are a plain directory
    (emptyDir, hostPath). Later files win when paths collide (projected sources)."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    kind = volume_kind(volume)
    src = volume.get(kind) or {}
    default_mode = int(src.get("defaultMode", DEFAULT_MODE)) if kind else DEFAULT_MODE
    files: list[File]
    if kind == "configMap":
        files = _configmap_files(src, ns, ctx, default_mode)
    elif kind == "secret":
        files = _secret_files(src, str(src.get("secretName", "")), ns, ctx, default_mode)
    elif kind == "downwardAPI":
        files = _downward_files(src.get("items") or [], pod, ctx, default_mode)
    elif kind == "projected":
        files = []
        for source in src.get("sources") or []:
            if source.get("serviceAccountToken") is not None:
                sat = source["serviceAccountToken"]
                if ctx.token is None:
                    raise VolumeError("no ServiceAccount token source for a projected volume")
                token = ctx.token(sat.get("audience"), int(sat.get("expirationSeconds", 3600)))
                files.append(File(str(sat.get("path", "token")), token.encode(), default_mode))
            elif source.get("configMap") is not None:
                files += _configmap_files(source["configMap"], ns, ctx, default_mode)
            elif source.get("secret") is not None:
                sec = source["secret"]
                files += _secret_files(sec, str(sec.get("name", "")), ns, ctx, default_mode)
            elif source.get("downwardAPI") is not None:
                files += _downward_files(
                    source["downwardAPI"].get("items") or [], pod, ctx, default_mode
                )
    elif kind in ("emptyDir", "hostPath"):
        return None
    else:
        raise VolumeError(f"volume {volume.get('name', '')!r}: unsupported volume type")
    by_path = {}
    for f in files:
        _check_path(f.path)
        by_path[f.path] = f
    return list(by_path.values())


def _check_path(path: str) -> None:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or p.parts[0].startswith(".."):
        raise VolumeError(f"invalid path {path!r}: must be relative and may not contain '..'")


def kube_api_access_volume(name: str = "kube-api-access-podnet") -> dict[str, Any]:
    """The projected volume the ServiceAccount admission plugin adds to every pod."""
    return {
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }


# ---- the writer -------------------------------------------------------------------------


def volume_dir(pod_dir: Path, volume: Mapping[str, Any]) -> Path:
    kind = volume_kind(volume)
    return pod_dir / "volumes" / PLUGIN_DIRS.get(kind, kind) / str(volume.get("name", ""))


def write_atomic(
    target: Path, files: Sequence[File], now: Callable[[], dt.datetime] | None = None
) -> None:
    """Publish `files` under `target` with a `..data` symlink swap (kubelet AtomicWriter)."""
    target.mkdir(parents=True, exist_ok=True)
    stamp = (now or (lambda: dt.datetime.now(dt.UTC)))()
    base = "..{}".format(stamp.strftime("%Y_%m_%d_%H_%M_%S.%f"))
    ts_name = base
    n = 0
    while (target / ts_name).exists():
        n += 1
        ts_name = f"{base}{n}"
    ts_dir = target / ts_name
    ts_dir.mkdir(mode=0o755)
    for f in files:
        dest = ts_dir / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f.data)
            os.fchmod(fd, f.mode & 0o7777)
        finally:
            os.close(fd)
    old = os.readlink(target / "..data") if (target / "..data").is_symlink() else None
    tmp = target / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(ts_name, tmp)
    os.replace(tmp, target / "..data")
    wanted = {PurePosixPath(f.path).parts[0] for f in files}
    for top in wanted:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"..data/{top}", link)
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        if entry not in wanted and (target / entry).is_symlink():
            (target / entry).unlink()
    if old and old != ts_name:
        shutil.rmtree(target / old, ignore_errors=True)


def materialise(
    pod_dir: Path,
    pod: Mapping[str, Any],
    ctx: VolumeContext,
    now: Callable[[], dt.datetime] | None = None,
) -> dict[str, Path]:
    """Write every volume of the pod; returns volume name -> host path to bind-mount.

    Raises VolumeError (the kubelet's FailedMount) on the first volume that cannot be set up.
    """
    paths: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = str(volume.get("name", ""))
        kind = volume_kind(volume)
        if kind == "hostPath":
            host = Path(str(volume["hostPath"].get("path", "")))
            if volume["hostPath"].get("type") == "DirectoryOrCreate":
                host.mkdir(parents=True, exist_ok=True)
            paths[name] = host
            continue
        files = volume_files(volume, pod, ctx)
        target = volume_dir(pod_dir, volume)
        if files is None:
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o777)  # emptyDir is world-writable, as the kubelet makes it
        else:
            write_atomic(target, files, now)
        paths[name] = target
    return paths
