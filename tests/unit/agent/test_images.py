"""resolve(): image + command/args → the argv podnet runs, or the reason it cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from podnet.agent import images
from podnet.agent.builtin import NGINX_BOOT
from podnet.agent.images import (
    InvalidImageName,
    Resolved,
    Unrunnable,
    exec_argv,
    expand,
    parse_reference,
    resolve,
)

PY = "/py"
AGNHOST = (PY, "-m", "podnet.agent.builtin.agnhost")
ECHO = (PY, "-m", "podnet.agent.builtin.httpecho")
PAUSE = (PY, "-m", "podnet.agent.builtin.pause")

HOST = {"sh": "/bin/sh", "/bin/sh": "/bin/sh", "curl": "/usr/bin/curl",
        "python3": "/usr/bin/python3", "sleep": "/bin/sleep", "/bin/sleep": "/bin/sleep"}


def host(tools: dict[str, str]) -> images.HostHas:
    return tools.get


def run(image: str, command: list[str] | None = None, args: list[str] | None = None,
        tools: dict[str, str] = HOST) -> Resolved | Unrunnable:
    c: dict[str, Any] = {"name": "c", "image": image}
    if command is not None:
        c["command"] = command
    if args is not None:
        c["args"] = args
    return resolve(c, host(tools), python=PY)


RUNS = [
    # image                                            command                  args   -> argv
    ("registry.k8s.io/e2e-test-images/agnhost:2.40", None, None, (*AGNHOST, "pause")),
    ("registry.k8s.io/e2e-test-images/agnhost:2.40", None, ["serve-hostname"],
     (*AGNHOST, "serve-hostname")),
    ("registry.k8s.io/e2e-test-images/agnhost:2.53", ["/agnhost", "netexec"],
     ["--http-port=8080"], (*AGNHOST, "netexec", "--http-port=8080")),
    ("k8s.gcr.io/e2e-test-images/agnhost:2.32", ["agnhost"], ["porter"], (*AGNHOST, "porter")),
    ("gcr.io/kubernetes-e2e-test-images/agnhost:2.8", None, ["connect", "a:80"],
     (*AGNHOST, "connect", "a:80")),
    ("registry.k8s.io/e2e-test-images/agnhost@sha256:" + "a" * 64, None, ["pause"],
     (*AGNHOST, "pause")),
    ("registry.k8s.io/e2e-test-images/agnhost:2.40", ["sh", "-c", "echo hi"], None,
     ("/bin/sh", "-c", "echo hi")),
    ("hashicorp/http-echo", None, ["-text=hi"], (*ECHO, "-text=hi")),
    ("docker.io/hashicorp/http-echo:1.0", None, ["-text=hi", "-listen=:8080"],
     (*ECHO, "-text=hi", "-listen=:8080")),
    ("hashicorp/http-echo", None, None, ECHO),  # upstream exits 127: -text is required
    ("registry.k8s.io/pause:3.10", None, None, PAUSE),
    ("k8s.gcr.io/pause", None, None, PAUSE),
    ("gcr.io/google_containers/pause:3.1", None, None, PAUSE),
    ("busybox", None, None, ("/bin/sh",)),
    ("busybox:1.36", ["sleep", "3600"], None, ("/bin/sleep", "3600")),
    ("busybox", None, ["sh", "-c", "echo hi"], ("/bin/sh", "-c", "echo hi")),
    ("registry.k8s.io/e2e-test-images/busybox:1.36.1-1", ["/bin/sleep", "1"], None,
     ("/bin/sleep", "1")),
    ("alpine:3.20", None, None, ("/bin/sh",)),
    ("debian", None, None, ("/bin/sh",)),  # CMD bash; the host has only sh
    ("ubuntu:24.04", ["bash", "-c", "true"], None, ("/bin/sh", "-c", "true")),
    ("python:3.12", None, None, ("/usr/bin/python3",)),
    ("python:3.12-slim", ["python", "-c", "print(1)"], None,
     ("/usr/bin/python3", "-c", "print(1)")),
    ("curlimages/curl", None, None, ("/usr/bin/curl",)),
    ("curlimages/curl:8.10.1", None, ["-s", "http://web"], ("/usr/bin/curl", "-s", "http://web")),
    ("curlimages/curl", None, ["http://web"], ("/usr/bin/curl", "http://web")),
    ("curlimages/curl", None, ["sh", "-c", "curl web"], ("/bin/sh", "-c", "curl web")),
    ("curlimages/curl", ["curl"], ["-sS", "web"], ("/usr/bin/curl", "-sS", "web")),
    ("nginx", ["sh", "-c", "sleep 1"], None, ("/bin/sh", "-c", "sleep 1")),
    ("nginx", None, None, (PY, "-c", NGINX_BOOT)),  # no host nginx: built-in page server
    ("nginx:1.27", None, ["nginx", "-g", "daemon off;"], (PY, "-c", NGINX_BOOT)),
    ("example.com/team/app:v1", ["/bin/sleep", "10"], None, ("/bin/sleep", "10")),
    ("example.com/team/app:v1", ["sleep"], ["10"], ("/bin/sleep", "10")),
    ("example.com/team/app:v1", ["/opt/app/server"], None, ("/opt/app/server",)),
]


@pytest.mark.parametrize(("image", "command", "args", "argv"), RUNS)
def test_runs(image: str, command: list[str] | None, args: list[str] | None,
              argv: tuple[str, ...]) -> None:
    got = run(image, command, args)
    assert isinstance(got, Resolved), got
    assert got.argv == argv


KINDS = [
    ("registry.k8s.io/e2e-test-images/agnhost:2.40", None, "builtin"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.40", ["sh"], "host"),
    ("busybox", None, "host"),
    ("nginx", None, "builtin"),
    ("quay.io/me/thing", ["sleep", "1"], "command"),
]


@pytest.mark.parametrize(("image", "command", "kind"), KINDS)
def test_kind(image: str, command: list[str] | None, kind: str) -> None:
    got = run(image, command)
    assert isinstance(got, Resolved)
    assert got.kind == kind


def test_nginx_default_uses_the_hosts_nginx_when_installed() -> None:
    got = run("nginx", tools={**HOST, "nginx": "/usr/sbin/nginx"})
    assert isinstance(got, Resolved)
    assert got.argv == (PY, "-c", NGINX_BOOT, "--nginx=/usr/sbin/nginx")
    assert got.kind == "host"


def test_busybox_applets_stand_in_for_missing_tools() -> None:
    got = run("busybox", ["wget", "-qO-", "http://web"], tools={"busybox": "/bin/busybox"})
    assert isinstance(got, Resolved)
    assert got.argv == ("/bin/busybox", "wget", "-qO-", "http://web")


def test_a_missing_program_is_left_for_the_start_to_fail() -> None:
    got = run("example.com/app", ["/app/server"], tools={})
    assert isinstance(got, Resolved)
    assert got.argv == ("/app/server",)


FAILS = [
    ("foo/bar:1", None, None, "ImageUnknown"),
    ("foo/bar:1", None, ["--port=80"], "ImageUnknown"),  # args without command: ENTRYPOINT?
    ("ghcr.io/org/app@sha256:" + "b" * 64, None, None, "ImageUnknown"),
    ("Busybox", ["sh"], None, "InvalidImageName"),
    ("busybox:", None, None, "InvalidImageName"),
    ("busybox::1", None, None, "InvalidImageName"),
    ("", ["sh"], None, "InvalidImageName"),
    ("a/b@sha256:xyz", ["sh"], None, "InvalidImageName"),
]


@pytest.mark.parametrize(("image", "command", "args", "reason"), FAILS)
def test_cannot_run(image: str, command: list[str] | None, args: list[str] | None,
                    reason: str) -> None:
    got = run(image, command, args)
    assert isinstance(got, Unrunnable), got
    assert got.reason == reason


def test_unknown_image_message_names_what_podnet_runs() -> None:
    assert run("foo/bar:1") == Unrunnable(
        "ImageUnknown",
        'podnet cannot run image "foo/bar:1": it runs built-in images (agnhost, http-echo, '
        "pause), host programs (busybox, alpine, python, nginx, curl) or any image with a "
        "command; see docs/images.md")


def test_invalid_name_message_is_the_kubelets() -> None:
    got = run("Busybox")
    assert isinstance(got, Unrunnable)
    assert got.message == ('Failed to apply default image tag "Busybox": couldn\'t parse image '
                           'name "Busybox": invalid reference format: repository name must be '
                           "lowercase")


REFERENCES = [
    ("busybox", "docker.io/library/busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("index.docker.io/library/nginx", "docker.io/library/nginx:latest"),
    ("hashicorp/http-echo", "docker.io/hashicorp/http-echo:latest"),
    ("localhost:5000/app:dev", "localhost:5000/app:dev"),
    ("localhost/app", "localhost/app:latest"),
    ("registry.k8s.io/e2e-test-images/agnhost:2.40",
     "registry.k8s.io/e2e-test-images/agnhost:2.40"),
    ("my.registry:8443/a/b/c:v1.2_3", "my.registry:8443/a/b/c:v1.2_3"),
    ("nginx@sha256:" + "c" * 64, "docker.io/library/nginx@sha256:" + "c" * 64),
    ("nginx:1.27@sha256:" + "c" * 64, "docker.io/library/nginx:1.27@sha256:" + "c" * 64),
]


@pytest.mark.parametrize(("reference", "normalized"), REFERENCES)
def test_parse_reference(reference: str, normalized: str) -> None:
    assert str(parse_reference(reference)) == normalized


@pytest.mark.parametrize("reference", ["", "UPPER", "a//b", "-a", "a:b:c", "a@sha256:12",
                                       "ex ample", "a/b:" + "t" * 129])
def test_parse_reference_rejects(reference: str) -> None:
    with pytest.raises(InvalidImageName):
        parse_reference(reference)


EXPANSIONS = [
    ("$(NAME)", "web"),
    ("--name=$(NAME)-$(NS)", "--name=web-default"),
    ("$(MISSING)", "$(MISSING)"),
    ("$$(NAME)", "$(NAME)"),
    ("$$", "$"),
    ("$NAME", "$NAME"),
    ("$(NAME", "$(NAME"),
]


@pytest.mark.parametrize(("value", "expanded"), EXPANSIONS)
def test_expand(value: str, expanded: str) -> None:
    assert expand(value, {"NAME": "web", "NS": "default"}) == expanded


def test_resolve_expands_command_and_args_but_not_the_image_defaults() -> None:
    c = {"image": "busybox", "command": ["sh", "-c"], "args": ["echo $(MSG) $$(MSG)"]}
    got = resolve(c, host(HOST), env={"MSG": "hi"}, python=PY)
    assert isinstance(got, Resolved)
    assert got.argv == ("/bin/sh", "-c", "echo hi $(MSG)")


def test_exec_argv_runs_the_images_programs() -> None:
    image = "registry.k8s.io/e2e-test-images/agnhost:2.40"
    assert exec_argv(image, ["/agnhost", "dns-suffix"], host(HOST), python=PY) == (
        *AGNHOST, "dns-suffix")
    assert exec_argv(image, ["sh"], host(HOST), python=PY) == ("/bin/sh",)
    assert exec_argv("unknown/img", ["/agnhost"], host(HOST), python=PY) == ("/agnhost",)


def test_docs_embed_the_table() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "images.md"
    assert images.render_table() in docs.read_text()
