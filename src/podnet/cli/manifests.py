"""`podnet up -f`: apply manifest files and folders with server-side apply.

Files are read like `kubectl apply -f` reads them (YAML or JSON, several documents per
file, `List` kinds unpacked); folders are walked in name order. Each object is applied
with fieldManager `podnet` and reported as created, configured or unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from podnet.api.errors import StatusError
from podnet.api.resources import ResourceType
from podnet.client.rest import ApiClient

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Manifest:
    source: Path
    obj: dict[str, Any]


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.suffix in MANIFEST_SUFFIXES
                                and f.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f'the path "{p}" does not exist')
    return files


def load(paths: Iterable[str | Path]) -> list[Manifest]:
    out: list[Manifest] = []
    for f in manifest_files(paths):
        text = f.read_text()
        docs: Iterator[Any] = (
            iter([json.loads(text)]) if f.suffix == ".json" else yaml.safe_load_all(text)
        )
        for doc in docs:
            out.extend(Manifest(f, o) for o in _unpack(doc))
    return out


def _unpack(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict) or not doc:
        return []
    if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
        return [i for i in doc["items"] if isinstance(i, dict)]
    return [doc]


async def apply_all(client: ApiClient, manifests: list[Manifest],
                    namespace: str = "default") -> list[str]:
    """Apply in order; returns kubectl-style lines (`service/my-service created`)."""
    lines = []
    cache: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        obj = m.obj
        api_version = obj.get("apiVersion", "")
        kind = obj.get("kind", "")
        name = (obj.get("metadata") or {}).get("name", "")
        if not api_version or not kind or not name:
            raise ValueError(f"{m.source}: every object needs apiVersion, kind and "
                             "metadata.name")
        rt = await resource_for(client, api_version, kind, cache)
        ns = ((obj.get("metadata") or {}).get("namespace") or namespace) if rt.namespaced \
            else None
        before: str | None
        try:
            live = await client.get(rt, name, namespace=ns)
            before = live["metadata"].get("resourceVersion")
        except StatusError as err:
            if err.code != 404:
                raise
            before = None
        result = await client.patch(rt, name, obj, patch_type="apply", namespace=ns,
                                    field_manager="podnet", force=True)
        after = result["metadata"].get("resourceVersion")
        what = "created" if before is None else ("unchanged" if before == after
                                                 else "configured")
        label = kind.lower() + (f".{rt.group}" if rt.group else "")
        lines.append(f"{label}/{name} {what}")
    return lines


async def resource_for(client: ApiClient, api_version: str, kind: str,
                       cache: dict[str, list[dict[str, Any]]]) -> ResourceType:
    """Find the resource serving `kind` through legacy discovery, as kubectl's mapper does."""
    group, _, version = api_version.rpartition("/")
    if api_version not in cache:
        path = f"/apis/{api_version}" if group else f"/api/{version}"
        try:
            doc = await client.get_path(path)
        except StatusError as err:
            if err.code == 404:
                raise ValueError(
                    f'resource mapping not found for kind "{kind}" in version '
                    f'"{api_version}": ensure CRDs are installed first') from None
            raise
        cache[api_version] = list(doc.get("resources") or [])
    for r in cache[api_version]:
        if r.get("kind") == kind and "/" not in r.get("name", ""):
            return ResourceType(group, version, kind, r["name"], bool(r.get("namespaced")))
    raise ValueError(f'resource mapping not found for kind "{kind}" in version '
                     f'"{api_version}": ensure CRDs are installed first')
