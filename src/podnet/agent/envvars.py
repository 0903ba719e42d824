"""A container's environment, built as the kubelet builds it (`makeEnvironmentVariables`).

Pure: the pod, the Services that exist when the container starts, and lookups for
ConfigMaps and Secrets go in; an ordered dict comes out, or a `ContainerConfigError` with
the kubelet's message (the container then waits with reason CreateContainerConfigError).

Order of the result: PATH, HOSTNAME (what the image and containerd add), then envFrom and
env in declaration order, then the Service link variables. The kubelet's order comes from
Go maps and is random, so any stable order is as faithful.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from podnet.agent import podfiles
from podnet.api.defaults import parse_quantity

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KUBERNETES_SERVICE: dict[str, Any] = {
    "metadata": {"name": "kubernetes", "namespace": "default"},
    "spec": {
        "type": "ClusterIP",
        "clusterIP": "10.96.0.1",
        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
    },
}

# A lookup returns the raw object, or None when it does not exist.
Lookup = Callable[[str, str], Mapping[str, Any] | None]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ContainerConfigError(Exception):
    """The kubelet's CreateContainerConfigError; str() is the message it reports."""

    reason = "CreateContainerConfigError"


def env_var_name(name: str) -> str:
    """`makeEnvVariableName`: upper case, '-' becomes '_'."""
    return name.replace("-", "_").upper()


def _ip_set(svc: Mapping[str, Any]) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def service_link_env(services: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """`envvars.FromServices`: the docker-link style variables for these Services."""
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ports = spec.get("ports") or []
        if not _ip_set(svc) or not ports:
            continue
        ip = str(spec["clusterIP"])
        prefix = env_var_name(str((svc.get("metadata") or {}).get("name", "")))
        out[f"{prefix}_SERVICE_HOST"] = ip
        out[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for sp in ports:
            if sp.get("name"):
                out[f"{prefix}_SERVICE_PORT_{env_var_name(str(sp['name']))}"] = str(sp["port"])
        host = f"[{ip}]" if ":" in ip else ip
        for i, sp in enumerate(ports):
            proto = str(sp.get("protocol") or "TCP")
            url = f"{proto.lower()}://{host}:{sp.get('port')}"
            if i == 0:
                out[f"{prefix}_PORT"] = url
            pp = f"{prefix}_PORT_{sp.get('port')}_{proto.upper()}"
            out[pp] = url
            out[f"{pp}_PROTO"] = proto.lower()
            out[f"{pp}_PORT"] = str(sp.get("port"))
            out[f"{pp}_ADDR"] = ip
    return out


def service_env(
    pod: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]],
    kubernetes_service: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """`getServiceEnvVarMap`: the `kubernetes` Service of namespace default always; the
    pod's namespace's Services unless spec.enableServiceLinks is false.

    If the `kubernetes` Service is not in `services`, `kubernetes_service` (by default
    10.96.0.1:443) stands in, so in-cluster config always finds its variables.
    """
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks")
    links = True if links is None else bool(links)
    chosen: dict[str, Mapping[str, Any]] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        name = str(meta.get("name", ""))
        if not _ip_set(svc):
            continue
        if meta.get("namespace") == "default" and name == "kubernetes":
            chosen.setdefault(name, svc)
        elif meta.get("namespace") == ns and links:
            chosen[name] = svc
    if "kubernetes" not in chosen:
        chosen["kubernetes"] = kubernetes_service or KUBERNETES_SERVICE
    return service_link_env([chosen[k] for k in sorted(chosen)])


def expand(value: str, *contexts: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` is a literal `$`, unknown or unterminated
    references are left as written (third_party/forked/golang/expansion)."""
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = value.find(")", i + 2)
            if end < 0:
                out.append("$(")
                i += 2
                continue
            name = value[i + 2 : end]
            for ctx in contexts:
                if name in ctx:
                    out.append(ctx[name])
                    break
            else:
                out.append(f"$({name})")
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def expand_args(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """command and args get the same expansion against the final environment."""
    return [expand(a, env) for a in args]


def go_quote(s: str) -> str:
    """Go's %q for the strings Kubernetes formats (labels and annotations)."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def format_map(m: Mapping[str, Any]) -> str:
    """`fieldpath.FormatMap`: sorted `key="value"` lines."""
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


_SUBSCRIPT = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


def field_ref_value(
    field_path: str,
    pod: Mapping[str, Any],
    *,
    pod_ips: Sequence[str] = (),
    host_ips: Sequence[str] = (),
) -> str:
    """The value of a downward-API fieldRef (`podFieldSelectorRuntimeValue`)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ips = list(pod_ips) or [p["ip"] for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    hips = list(host_ips) or [h["ip"] for h in status.get("hostIPs") or [] if h.get("ip")]
    if not hips and status.get("hostIP"):
        hips = [status["hostIP"]]
    simple: dict[str, Callable[[], Any]] = {
        "metadata.name": lambda: meta.get("name", ""),
        "metadata.namespace": lambda: meta.get("namespace", ""),
        "metadata.uid": lambda: meta.get("uid", ""),
        "metadata.labels": lambda: format_map(meta.get("labels") or {}),
        "metadata.annotations": lambda: format_map(meta.get("annotations") or {}),
        "spec.nodeName": lambda: spec.get("nodeName", ""),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName", ""),
        "status.podIP": lambda: ips[0] if ips else "",
        "status.podIPs": lambda: ",".join(ips),
        "status.hostIP": lambda: hips[0] if hips else "",
        "status.hostIPs": lambda: ",".join(hips),
    }
    if field_path in simple:
        return str(simple[field_path]())
    m = _SUBSCRIPT.match(field_path)
    if m:
        which = "labels" if m.group(1).endswith("labels") else "annotations"
        return str((meta.get(which) or {}).get(m.group(2), ""))
    raise ContainerConfigError(f"unsupported fieldPath: {field_path}")


def resource_field_value(
    ref: Mapping[str, Any],
    container: Mapping[str, Any],
    node_allocatable: Mapping[str, Any] | None = None,
) -> str:
    """A resourceFieldRef (`ExtractContainerResourceValue`): ceiling of value / divisor.

    Unset limits fall back to the node's allocatable, as the kubelet does; unset
    requests are 0.
    """
    resource = str(ref.get("resource", ""))
    divisor = parse_quantity(ref.get("divisor")) if ref.get("divisor") not in (None, "") else None
    if not divisor:
        divisor = Fraction(1)
    kind, _, name = resource.partition(".")
    known = name in ("cpu", "memory", "ephemeral-storage") or name.startswith("hugepages-")
    if kind not in ("limits", "requests") or not known:
        raise ContainerConfigError(f"unsupported container resource : {resource}")
    res = container.get("resources") or {}
    values = res.get(kind) or {}
    raw = values.get(name)
    if raw is None and kind == "requests":
        raw = (res.get("limits") or {}).get(name)  # API defaulting: requests = limits
    if raw is None and kind == "limits":
        raw = (node_allocatable or {}).get(name)
    amount = parse_quantity(raw) if raw is not None else Fraction(0)
    amount = amount or Fraction(0)
    if name == "cpu":
        # CPU works in milli-units: MilliValue() rounds up before dividing.
        amount = Fraction(math.ceil(amount * 1000), 1000)
        div = Fraction(math.ceil(divisor * 1000), 1000) or Fraction(1)
    else:
        amount = Fraction(math.ceil(amount))
        div = Fraction(math.ceil(divisor)) or Fraction(1)
    return str(math.ceil(amount / div))


def decode_secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    """A Secret's data (base64) and stringData, as bytes."""
    out: dict[str, bytes] = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(str(v), validate=False)
        except (binascii.Error, ValueError):
            out[k] = b""
    for k, v in (secret.get("stringData") or {}).items():
        out[k] = str(v).encode()
    return out


def _optional(ref: Mapping[str, Any]) -> bool:
    return bool(ref.get("optional"))


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]] = (),
    *,
    configmaps: Lookup = lambda ns, name: None,
    secrets: Lookup = lambda ns, name: None,
    pod_ips: Sequence[str] = (),
    host_ips: Sequence[str] = (),
    hostname: str | None = None,  # default: podfiles.hostname(pod)
    node_allocatable: Mapping[str, Any] | None = None,
    kubernetes_service: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The container's environment, in order. Raises ContainerConfigError."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    svc_env = service_env(pod, services, kubernetes_service)
    cm_cache: dict[str, Mapping[str, Any] | None] = {}
    secret_cache: dict[str, dict[str, bytes] | None] = {}

    def get_cm(name: str) -> Mapping[str, Any] | None:
        if name not in cm_cache:
            cm_cache[name] = configmaps(ns, name)
        return cm_cache[name]

    def get_secret(name: str) -> dict[str, bytes] | None:
        if name not in secret_cache:
            obj = secrets(ns, name)
            secret_cache[name] = None if obj is None else decode_secret_data(obj)
        return secret_cache[name]

    declared: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        data: Mapping[str, Any]
        if source.get("configMapRef") is not None:
            ref = source["configMapRef"]
            cm = get_cm(str(ref.get("name", "")))
            if cm is None:
                if _optional(ref):
                    continue
                raise ContainerConfigError(f'configmap "{ref.get("name", "")}" not found')
            data = cm.get("data") or {}
        elif source.get("secretRef") is not None:
            ref = source["secretRef"]
            sec = get_secret(str(ref.get("name", "")))
            if sec is None:
                if _optional(ref):
                    continue
                raise ContainerConfigError(f'secret "{ref.get("name", "")}" not found')
            data = {k: v.decode(errors="replace") for k, v in sec.items()}
        else:
            continue
        for k in sorted(data):
            # Invalid names are skipped (the kubelet records an event and goes on).
            if _ENV_NAME.match(prefix + k):
                declared[prefix + k] = str(data[k])

    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        value = var.get("value")
        source = var.get("valueFrom")
        if value:
            declared[name] = expand(str(value), declared, svc_env)
            continue
        if not source:
            declared[name] = ""
            continue
        if source.get("fieldRef") is not None:
            path = str(source["fieldRef"].get("fieldPath", ""))
            declared[name] = field_ref_value(path, pod, pod_ips=pod_ips, host_ips=host_ips)
        elif source.get("resourceFieldRef") is not None:
            declared[name] = resource_field_value(
                source["resourceFieldRef"], container, node_allocatable
            )
        elif source.get("configMapKeyRef") is not None:
            ref = source["configMapKeyRef"]
            cm_name, key = str(ref.get("name", "")), str(ref.get("key", ""))
            cm = get_cm(cm_name)
            if cm is None:
                if _optional(ref):
                    continue
                raise ContainerConfigError(f'configmap "{cm_name}" not found')
            cm_data = cm.get("data") or {}
            if key not in cm_data:
                if _optional(ref):
                    continue
                raise ContainerConfigError(f"couldn't find key {key} in ConfigMap {ns}/{cm_name}")
            declared[name] = str(cm_data[key])
        elif source.get("secretKeyRef") is not None:
            ref = source["secretKeyRef"]
            sec_name, key = str(ref.get("name", "")), str(ref.get("key", ""))
            sec = get_secret(sec_name)
            if sec is None:
                if _optional(ref):
                    continue
                raise ContainerConfigError(f'secret "{sec_name}" not found')
            if key not in sec:
                if _optional(ref):
                    continue
                raise ContainerConfigError(f"couldn't find key {key} in Secret {ns}/{sec_name}")
            declared[name] = sec[key].decode(errors="replace")
        else:
            declared[name] = ""

    result: dict[str, str] = {"PATH": DEFAULT_PATH}
    result["HOSTNAME"] = podfiles.hostname(pod) if hostname is None else hostname
    result.update(declared)
    for k, v in svc_env.items():
        if k not in declared:
            result[k] = v
    return result
