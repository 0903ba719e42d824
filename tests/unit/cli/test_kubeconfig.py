"""Admin kubeconfig, and merging it into / removing it from the user's, like kind."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from podnet.apiserver.pki import Pki, ensure_pki
from podnet.cli.kubeconfig import merge_into, remove_from, write_admin_kubeconfig

SERVER = "https://127.0.0.1:6443"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("state"))


@pytest.fixture
def admin(tmp_path: Path, pki: Pki) -> Path:
    path = tmp_path / "state" / "kubeconfig"
    write_admin_kubeconfig(path, SERVER, pki, "podnet-dev", "podnet-dev")
    return path


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def names(config: dict[str, Any], section: str) -> list[str]:
    return [e["name"] for e in config.get(section) or []]


USER_CONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443"}
users:
- name: prod-admin
  user: {token: abc}
contexts:
- name: prod
  context: {cluster: prod, user: prod-admin}
current-context: prod
preferences: {colors: true}
extensions:
- name: something
  extension: {kept: yes}
"""


def test_admin_kubeconfig_embeds_credentials(admin: Path, pki: Pki) -> None:
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    config = load(admin)
    assert config["current-context"] == "podnet-dev"
    (cluster,) = config["clusters"]
    assert cluster == {
        "name": "podnet-dev",
        "cluster": {
            "server": SERVER,
            "certificate-authority-data": base64.b64encode(pki.ca_cert_pem).decode(),
        },
    }
    (user,) = config["users"]
    assert base64.b64decode(user["user"]["client-certificate-data"]) == pki.admin_cert_pem
    assert base64.b64decode(user["user"]["client-key-data"]) == pki.admin_key_pem
    (context,) = config["contexts"]
    assert context["context"] == {
        "cluster": "podnet-dev",
        "user": "podnet-dev",
        "namespace": "default",
    }


def test_merge_creates_a_missing_file(tmp_path: Path, admin: Path) -> None:
    user_cfg = tmp_path / "home" / ".kube" / "config"
    merge_into(user_cfg, admin, "podnet-dev", set_current=True)
    config = load(user_cfg)
    assert stat.S_IMODE(user_cfg.stat().st_mode) == 0o600
    assert names(config, "contexts") == ["podnet-dev"]
    assert config["current-context"] == "podnet-dev"


def test_merge_keeps_other_entries(tmp_path: Path, admin: Path) -> None:
    user_cfg = tmp_path / "config"
    user_cfg.write_text(USER_CONFIG)
    user_cfg.chmod(0o640)

    merge_into(user_cfg, admin, "podnet-dev", set_current=False)
    config = load(user_cfg)
    assert names(config, "clusters") == ["prod", "podnet-dev"]
    assert names(config, "users") == ["prod-admin", "podnet-dev"]
    assert names(config, "contexts") == ["prod", "podnet-dev"]
    assert config["current-context"] == "prod"
    assert config["preferences"] == {"colors": True}
    assert config["extensions"] == [{"name": "something", "extension": {"kept": True}}]
    assert stat.S_IMODE(user_cfg.stat().st_mode) == 0o640  # the user's choice stays

    merge_into(user_cfg, admin, "podnet-dev", set_current=True)
    config = load(user_cfg)
    assert names(config, "contexts") == ["prod", "podnet-dev"]  # replaced, not duplicated
    assert config["current-context"] == "podnet-dev"


def test_merge_replaces_stale_entry_in_place(tmp_path: Path, admin: Path) -> None:
    user_cfg = tmp_path / "config"
    stale = load(admin)
    stale["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    user_cfg.write_text(yaml.safe_dump(stale))
    merge_into(user_cfg, admin, "podnet-dev", set_current=True)
    assert load(user_cfg)["clusters"][0]["cluster"]["server"] == SERVER


def test_merge_of_unknown_context_fails(tmp_path: Path, admin: Path) -> None:
    with pytest.raises(ValueError, match="no context"):
        merge_into(tmp_path / "config", admin, "podnet-other", set_current=True)


def test_remove_takes_out_only_ours(tmp_path: Path, admin: Path) -> None:
    user_cfg = tmp_path / "config"
    user_cfg.write_text(USER_CONFIG)
    merge_into(user_cfg, admin, "podnet-dev", set_current=True)

    assert remove_from(user_cfg, "podnet-dev") is True
    config = load(user_cfg)
    assert names(config, "clusters") == ["prod"]
    assert names(config, "users") == ["prod-admin"]
    assert names(config, "contexts") == ["prod"]
    assert config["current-context"] == ""  # as kind leaves it
    assert config["extensions"] == [{"name": "something", "extension": {"kept": True}}]

    assert remove_from(user_cfg, "podnet-dev") is False
    assert remove_from(tmp_path / "missing", "podnet-dev") is False
    assert not (tmp_path / "missing").exists()


def test_symlinked_kubeconfig_stays_a_link(tmp_path: Path, admin: Path) -> None:
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    real.write_text(USER_CONFIG)
    link = tmp_path / "config"
    link.symlink_to(real)
    merge_into(link, admin, "podnet-dev", set_current=True)
    assert link.is_symlink()
    assert "podnet-dev" in names(load(real), "contexts")
