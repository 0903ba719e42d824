"""Volumes as the files a container sees under its mount path."""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from podnet.agent import volumes
from podnet.agent.volumes import File, VolumeContext, VolumeError

CONFIGMAPS = {
    ("shop", "settings"): {
        "data": {"app.properties": "color=blue\n", "LOG_LEVEL": "debug"},
        "binaryData": {"logo.bin": base64.b64encode(b"\x00\x01").decode()},
    },
    ("shop", "kube-root-ca.crt"): {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}},
}
SECRETS = {("shop", "creds"): {"data": {"password": base64.b64encode(b"s3cr3t").decode()}}}


def ctx(**kw: Any) -> VolumeContext:
    return VolumeContext(
        configmaps=lambda ns, n: CONFIGMAPS.get((ns, n)),
        secrets=lambda ns, n: SECRETS.get((ns, n)),
        token=lambda aud, exp: f"token-for-{aud}-{exp}",
        pod_ips=("10.244.0.5",),
        **kw,
    )


def pod(*vols: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}],
            "volumes": list(vols),
        },
    }


def files(volume: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    out = volumes.volume_files(volume, pod(volume), ctx())
    assert out is not None
    return [(f.path, f.data, oct(f.mode)) for f in out]


def test_configmap_all_keys() -> None:
    assert files({"name": "cfg", "configMap": {"name": "settings"}}) == [
        ("LOG_LEVEL", b"debug", "0o644"),
        ("app.properties", b"color=blue\n", "0o644"),
        ("logo.bin", b"\x00\x01", "0o644"),
    ]


def test_configmap_items_and_modes() -> None:
    vol = {
        "name": "cfg",
        "configMap": {
            "name": "settings",
            "defaultMode": 0o400,
            "items": [
                {"key": "app.properties", "path": "conf/app.properties"},
                {"key": "LOG_LEVEL", "path": "level", "mode": 0o600},
            ],
        },
    }
    assert files(vol) == [
        ("conf/app.properties", b"color=blue\n", "0o400"),
        ("level", b"debug", "0o600"),
    ]


def test_secret_is_decoded() -> None:
    assert files({"name": "s", "secret": {"secretName": "creds"}}) == [
        ("password", b"s3cr3t", "0o644")
    ]


def test_missing_objects_and_keys() -> None:
    with pytest.raises(VolumeError, match='configmap "nope" not found'):
        files({"name": "c", "configMap": {"name": "nope"}})
    with pytest.raises(VolumeError, match='secret "nope" not found'):
        files({"name": "s", "secret": {"secretName": "nope"}})
    with pytest.raises(VolumeError, match="non-existent config key: x"):
        files(
            {"name": "c", "configMap": {"name": "settings", "items": [{"key": "x", "path": "x"}]}}
        )
    assert files({"name": "c", "configMap": {"name": "nope", "optional": True}}) == []


def test_downward_api() -> None:
    vol = {
        "name": "info",
        "downwardAPI": {
            "items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c",
                                                     "resource": "limits.memory",
                                                     "divisor": "1Mi"}},
            ]
        },
    }  # fmt: skip
    assert files(vol) == [
        ("labels", b'app="web"', "0o644"),
        ("name", b"web-0", "0o644"),
        ("mem", b"64", "0o644"),
    ]


def test_kube_api_access_projection() -> None:
    assert files(volumes.kube_api_access_volume()) == [
        ("token", b"token-for-None-3607", "0o644"),
        ("ca.crt", b"-----BEGIN CERTIFICATE-----\n", "0o644"),
        ("namespace", b"shop", "0o644"),
    ]


def test_paths_may_not_escape() -> None:
    items = [{"key": "LOG_LEVEL", "path": "../etc/x"}]
    vol = {"name": "c", "configMap": {"name": "settings", "items": items}}
    with pytest.raises(VolumeError, match="may not contain"):
        files(vol)


def tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = "-> " + os.readlink(p) if p.is_symlink() else p.read_text()
    return dict(sorted(out.items()))


def test_materialise_writes_the_kubelets_layout(tmp_path: Path) -> None:
    p = pod(
        {"name": "cfg", "configMap": {"name": "settings",
                                      "items": [{"key": "LOG_LEVEL", "path": "conf/level"}]}},
        {"name": "scratch", "emptyDir": {}},
    )  # fmt: skip
    t = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    paths = volumes.materialise(tmp_path, p, ctx(), now=lambda: t)
    cfg = tmp_path / "volumes/kubernetes.io~configmap/cfg"
    assert paths == {"cfg": cfg, "scratch": tmp_path / "volumes/kubernetes.io~empty-dir/scratch"}
    assert tree(cfg) == {
        "..2026_01_02_03_04_05.000006/conf/level": "debug",
        "..data": "-> ..2026_01_02_03_04_05.000006",
        "conf": "-> ..data/conf",
    }
    assert (cfg / "conf/level").read_text() == "debug"
    assert oct(paths["scratch"].stat().st_mode & 0o777) == "0o777"


def test_update_swaps_data_and_removes_the_old_version(tmp_path: Path) -> None:
    t1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    t2 = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    volumes.write_atomic(tmp_path, [File("a", b"1"), File("b", b"2")], now=lambda: t1)
    volumes.write_atomic(tmp_path, [File("a", b"3")], now=lambda: t2)
    assert tree(tmp_path) == {
        "..2026_01_02_00_00_00.000000/a": "3",
        "..data": "-> ..2026_01_02_00_00_00.000000",
        "a": "-> ..data/a",
    }
