"""From a container's `image`, `command` and `args` to the argv podnet runs (pure).

There is no image pull: an image is a row in TABLE (docs/images.md renders it). Built-in
images run programs podnet ships (`python -m podnet.agent.builtin.<name>`); host-program
images run the host's tools; any other image runs its `command` as given. Entry point rules
are Kubernetes' (https://kubernetes.io/docs/tasks/inject-data-application/
define-command-argument-container/): `command` replaces the image's ENTRYPOINT and drops its
CMD, `args` replace CMD; `$(VAR)` in either expands from the container's env.
"""

from __future__ import annotations

import posixpath
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

HostHas = Callable[[str], str | None]
Kind = Literal["builtin", "host", "command"]

DOCKER_HUB = "docker.io"


# ---------------------------------------------------------------------------------------------
# References


class InvalidImageName(ValueError):
    """The reference is malformed; the message is the parser's complaint."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    domain: str  # "docker.io", "registry.k8s.io", "localhost:5000"
    path: str  # "library/busybox", "e2e-test-images/agnhost"
    tag: str | None  # None only when a digest pins the image
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        return self.repository + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


# The grammar of github.com/distribution/reference, which the kubelet uses.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN = re.compile(
    r"(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


def parse_reference(reference: str) -> ImageRef:
    """Parse `[domain[:port]/]path[:tag][@digest]`, with Docker Hub's defaults applied:
    `busybox` is `docker.io/library/busybox:latest`."""
    if not reference:
        raise InvalidImageName("invalid reference format")
    rest, _, digest = reference.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise InvalidImageName("invalid reference format")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidImageName("invalid reference format")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
        if not _DOMAIN.fullmatch(domain):
            raise InvalidImageName("invalid reference format")
    else:
        domain, path = DOCKER_HUB, rest
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if not _PATH.fullmatch(path):
        if path.lower() != path and _PATH.fullmatch(path.lower()):
            raise InvalidImageName("invalid reference format: repository name must be lowercase")
        raise InvalidImageName("invalid reference format")
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if tag is None and not digest:
        tag = "latest"
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest or None)


# ---------------------------------------------------------------------------------------------
# The table

EntrypointStyle = Literal["exec", "passthrough", "curl"]


@dataclass(frozen=True, slots=True)
class Image:
    """One row of the image table."""

    name: str
    repositories: tuple[str, ...]  # normalized (docker.io/library/...), any tag or digest
    kind: Literal["builtin", "host"]
    entrypoint: tuple[str, ...]  # the image's ENTRYPOINT, in the image's own paths
    cmd: tuple[str, ...]  # the image's CMD
    ports: tuple[int, ...] = ()
    # Programs inside the image that podnet ships, by path or name → module to run.
    programs: Mapping[str, str] = field(default_factory=dict)
    # How ENTRYPOINT behaves: "exec" runs it; "passthrough" is a docker-entrypoint.sh that
    # ends in `exec "$@"`; "curl" is curlimages' entrypoint.sh (prepends `curl` unless the
    # first word is a command).
    style: EntrypointStyle = "exec"
    notes: str = ""


_AGNHOST = "podnet.agent.builtin.agnhost"
_BUSYBOXES = ("docker.io/library/busybox", "registry.k8s.io/e2e-test-images/busybox",
              "k8s.gcr.io/e2e-test-images/busybox", "registry.k8s.io/busybox",
              "k8s.gcr.io/busybox", "gcr.io/google-containers/busybox",
              "gcr.io/google_containers/busybox")

TABLE: tuple[Image, ...] = (
    Image(
        "agnhost",
        ("registry.k8s.io/e2e-test-images/agnhost", "k8s.gcr.io/e2e-test-images/agnhost",
         "gcr.io/kubernetes-e2e-test-images/agnhost",
         "gcr.io/k8s-staging-e2e-test-images/agnhost"),
        "builtin", ("/agnhost",), ("pause",), (80, 8080, 8081, 9376),
        {"/agnhost": _AGNHOST, "agnhost": _AGNHOST, "/agnhost-2": _AGNHOST},
        notes="podnet.agent.builtin.agnhost: serve-hostname, netexec, connect, porter, pause, "
              "dns-suffix, dns-server-list, etc-hosts, liveness, test-webserver; other tools "
              "(sh, curl, nc, dig) are the host's",
    ),
    Image(
        "http-echo", ("docker.io/hashicorp/http-echo",), "builtin", ("/http-echo",), (),
        (5678,), {"/http-echo": "podnet.agent.builtin.httpecho",
                  "http-echo": "podnet.agent.builtin.httpecho"},
        notes="podnet.agent.builtin.httpecho; `-text` is required, as upstream",
    ),
    Image(
        "pause",
        ("registry.k8s.io/pause", "k8s.gcr.io/pause", "gcr.io/google_containers/pause",
         "gcr.io/google-containers/pause", "gcr.io/google_containers/pause-amd64"),
        "builtin", ("/pause",), (), (),
        {"/pause": "podnet.agent.builtin.pause", "pause": "podnet.agent.builtin.pause"},
        notes="podnet.agent.builtin.pause: sleeps until SIGTERM/SIGINT, exits 0",
    ),
    Image("busybox", _BUSYBOXES, "host", (), ("sh",),
          notes="host tools; a name the host lacks runs as a `busybox` applet if the host "
                "has busybox"),
    Image("alpine", ("docker.io/library/alpine",), "host", (), ("/bin/sh",),
          notes="as busybox"),
    Image("debian", ("docker.io/library/debian",), "host", (), ("bash",),
          notes="host tools; `bash` falls back to `sh` if the host has no bash"),
    Image("ubuntu", ("docker.io/library/ubuntu",), "host", (), ("/bin/bash",),
          notes="as debian"),
    Image("python", ("docker.io/library/python",), "host", (), ("python3",),
          notes="podnet's own Python 3 (with the `kubernetes` client)"),
    Image("nginx",
          ("docker.io/library/nginx", "registry.k8s.io/e2e-test-images/nginx",
           "k8s.gcr.io/e2e-test-images/nginx"),
          "host", ("/docker-entrypoint.sh",), ("nginx", "-g", "daemon off;"), (80,),
          style="passthrough",
          notes="default command: the host's nginx with a generated config (foreground, one "
                "process, state in a temporary directory) serving a \"Welcome to nginx!\" "
                "page on :80; without a host nginx, podnet's built-in server serves that "
                "page; any other command runs as given"),
    Image("curl", ("docker.io/curlimages/curl", "quay.io/curl/curl"), "host",
          ("/entrypoint.sh",), ("curl",), style="curl",
          notes="the host's curl; args starting with `-` (or a URL) go to curl"),
)

_BY_REPOSITORY: dict[str, Image] = {r: image for image in TABLE for r in image.repositories}

# Names a host may lack, and what stands in for them.
_ALIASES: dict[str, tuple[str, ...]] = {
    "python": ("python3",), "bash": ("sh",), "ash": ("sh",),
}

UNKNOWN_HINT = ("it runs built-in images (agnhost, http-echo, pause), host programs (busybox, "
                "alpine, python, nginx, curl) or any image with a command; see docs/images.md")


def lookup(ref: ImageRef) -> Image | None:
    return _BY_REPOSITORY.get(ref.repository)


# ---------------------------------------------------------------------------------------------
# Resolution


@dataclass(frozen=True, slots=True)
class Resolved:
    image: ImageRef
    argv: tuple[str, ...]
    kind: Kind  # builtin: podnet's program; host: a host program; command: as given


@dataclass(frozen=True, slots=True)
class Unrunnable:
    """The container cannot start: its waiting state's reason and message."""

    reason: str  # "InvalidImageName" or "ImageUnknown"
    message: str


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, undefined ones kept as
    written, `$$` escapes a `$`."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR.sub(sub, value)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        return []
    return [str(v) for v in value]


def resolve(container: Mapping[str, Any], host_has: HostHas, *,
            env: Mapping[str, str] | None = None,
            python: str = sys.executable) -> Resolved | Unrunnable:
    """What to run for `container` (a raw pod-spec container), or why it cannot run.

    `host_has(name)` is `shutil.which` in production: a path, or None. `env`, when given,
    expands `$(VAR)` in command and args. `python` runs the built-in programs."""
    raw = container.get("image")
    image_name = raw if isinstance(raw, str) else ""
    try:
        ref = parse_reference(image_name)
    except InvalidImageName as exc:
        return Unrunnable(
            "InvalidImageName",
            f'Failed to apply default image tag "{image_name}": couldn\'t parse image name '
            f'"{image_name}": {exc}')
    command, args = _strings(container.get("command")), _strings(container.get("args"))
    if env is not None:
        command = [expand(c, env) for c in command]
        args = [expand(a, env) for a in args]
    image = lookup(ref)
    if image is None:
        if not command:
            return Unrunnable("ImageUnknown",
                              f'podnet cannot run image "{image_name}": {UNKNOWN_HINT}')
        return Resolved(ref, host_argv(None, command + args, host_has, python=python), "command")
    argv = _effective(image, command, args, host_has)
    if image.name == "nginx" and argv == list(image.cmd):
        return _nginx_default(ref, host_has, python)
    kind: Kind = "builtin" if _builtin(image, argv) else "host"
    return Resolved(ref, host_argv(image, argv, host_has, python=python), kind)


def _builtin(image: Image, argv: Sequence[str]) -> bool:
    return bool(argv) and (argv[0] in image.programs
                           or posixpath.basename(argv[0]) in image.programs)


def _effective(image: Image, command: list[str], args: list[str],
               host_has: HostHas) -> list[str]:
    """The argv in the image's own terms, by Kubernetes' command/args rules."""
    if command:
        return command + args  # command replaces ENTRYPOINT, and CMD goes with it
    tail = args or list(image.cmd)
    if image.style == "passthrough":
        return tail
    if image.style == "curl":
        first = tail[0] if tail else ""
        if not first or first.startswith("-") or host_has(first) is None:
            return ["curl", *tail]
        return tail
    return list(image.entrypoint) + tail


def _nginx_default(ref: ImageRef, host_has: HostHas, python: str) -> Resolved:
    from podnet.agent.builtin import NGINX_BOOT  # light: no asyncio at import

    nginx = host_has("nginx")
    if nginx is None:
        return Resolved(ref, (python, "-c", NGINX_BOOT), "builtin")
    return Resolved(ref, (python, "-c", NGINX_BOOT, f"--nginx={nginx}"), "host")


def host_argv(image: Image | None, argv: Sequence[str], host_has: HostHas, *,
              python: str = sys.executable) -> tuple[str, ...]:
    """Map an argv in an image's terms to one the host can exec (also for `kubectl exec`).

    A program the image ships and podnet implements becomes `python -m <module>`; otherwise
    the host's program by path, then by name (with aliases such as python → python3), then
    a busybox applet for table images; failing all, argv as given, so the start fails the
    way a missing executable does in Kubernetes."""
    if not argv:
        return ()
    program, rest = argv[0], tuple(argv[1:])
    base = posixpath.basename(program)
    if image is not None and _builtin(image, argv):
        module = image.programs.get(program) or image.programs[base]
        return (python, "-m", module, *rest)
    for candidate in (program, base, *_ALIASES.get(base, ())):
        found = host_has(candidate)
        if found is not None:
            return (found, *rest)
    if image is not None:
        busybox = host_has("busybox")
        if busybox is not None:
            return (busybox, base, *rest)
    return (program, *rest)


def exec_argv(image_name: str, argv: Sequence[str], host_has: HostHas, *,
              python: str = sys.executable) -> tuple[str, ...]:
    """`kubectl exec` and exec probes: run `argv` as the container's image would."""
    try:
        image = lookup(parse_reference(image_name))
    except InvalidImageName:
        image = None
    return host_argv(image, argv, host_has, python=python)


# ---------------------------------------------------------------------------------------------
# Documentation


def render_table() -> str:
    """The image table as markdown (docs/images.md embeds it; a test keeps them equal)."""
    def words(values: Sequence[str]) -> str:
        return "`" + " ".join(values) + "`" if values else "—"

    rows = ["| image | repositories (any tag) | runs | ENTRYPOINT | CMD | ports | notes |",
            "|---|---|---|---|---|---|---|"]
    for image in TABLE:
        repos = "<br>".join(f"`{r}`" for r in image.repositories)
        ports = ", ".join(str(p) for p in image.ports) or "—"
        rows.append(f"| {image.name} | {repos} | {image.kind} | {words(image.entrypoint)} | "
                    f"{words(image.cmd)} | {ports} | {image.notes} |")
    return "\n".join(rows) + "\n"
