"""Validation of built-in kinds with Kubernetes' own field paths and messages.

`validate_create(obj)` and `validate_update(new, old)` return field causes; the API server
turns a non-empty list into `errors.invalid(kind, name, causes)`, which reads exactly like
kube-apiserver: `Service "x" is invalid: spec.ports[0].port: Invalid value: 0: must be
between 1 and 65535, inclusive`. Users paste those lines into search engines, so the words,
the order of supported values and even Go's `%#v` rendering of structs are kept.

Inputs are expected to be *defaulted* (see `defaults.apply_defaults`) and, for Services,
to have had clusterIP/nodePort/healthCheckNodePort allocation done — the same order as in
kube-apiserver, where defaulting happens at decode and allocation before validation.

The rules follow pkg/apis/core/validation, pkg/apis/apps/validation,
pkg/apis/networking/validation, pkg/apis/discovery/validation, pkg/apis/rbac/validation and
apimachinery's ObjectMeta validation (1.32). They are not exhaustive: Service, Pod,
Deployment and metadata are covered closely; other kinds get their important rules.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podnet.api import errors
from podnet.api.errors import Cause
from podnet.api.resources import BUILTIN
from podnet.api.selectors import (
    LabelSelector,
    dns1123_subdomain_errors,
    go_quote,
    label_value_errors,
    max_len_error,
    qualified_name_errors,
    regex_error,
)

Obj = Mapping[str, Any]
NameFn = Callable[[str, bool], list[str]]

FIELD_IMMUTABLE = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
MAX_SECRET_SIZE = 1024 * 1024
PORT_RANGE_ERROR = "must be between 1 and 65535, inclusive"
KUBELET_PORT = 10250
MAX_INT32 = 2147483647

# --- Go value rendering ---------------------------------------------------------------


class GoValue:
    """A value pre-rendered the way Go's field errors print it (`%#v` for structs/maps).

    `errors.invalid_value` formats non-strings with `str()`, so wrapping the Go text here
    keeps it unquoted.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def go_map(value: Any) -> GoValue:
    if not isinstance(value, Mapping):
        return GoValue("map[string]string(nil)")
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(value.items()))
    return GoValue("map[string]string{" + items + "}")


def go_strings(value: Any) -> GoValue:
    if not isinstance(value, list):
        return GoValue("[]string(nil)")
    return GoValue("[]string{" + ", ".join(go_quote(str(v)) for v in value) + "}")


def go_int_or_string(value: Any) -> GoValue:
    if isinstance(value, str):
        return GoValue(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}")
    n = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return GoValue(f'intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:""}}')


def go_label_selector(sel: Any) -> GoValue:
    sel = sel if isinstance(sel, Mapping) else {}
    labels = go_map(sel.get("matchLabels")) if "matchLabels" in sel else go_map(None)
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list):
        parts = []
        for e in exprs:
            e = e if isinstance(e, Mapping) else {}
            parts.append(
                "v1.LabelSelectorRequirement{"
                f"Key:{go_quote(str(e.get('key', '')))}, "
                f"Operator:{go_quote(str(e.get('operator', '')))}, "
                f"Values:{go_strings(e.get('values'))}}}"
            )
        expr_text = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    else:
        expr_text = "[]v1.LabelSelectorRequirement(nil)"
    return GoValue(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{expr_text}}}")


def _go_service_port_key(protocol: str, port: int) -> GoValue:
    return GoValue(
        f'core.ServicePort{{Name:"", Protocol:{go_quote(protocol)}, '
        f"AppProtocol:(*string)(nil), Port:{port}, "
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


# --- name and syntax checks -----------------------------------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_RE = re.compile(f"^{_DNS1035_FMT}$")
_DNS1035_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)
_WILDCARD_FMT = "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_WILDCARD_RE = re.compile(f"^{_WILDCARD_FMT}$")
_WILDCARD_ERR = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
    "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
    "alphanumeric character"
)
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(f"^{_CONFIG_KEY_FMT}$")
_PERCENT_RE = re.compile(r"^[0-9]+%$")


def dns1123_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL_RE.match(value):
        if not dns1123_subdomain_errors(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc")
            )
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_RE.match(value):
        errs.append(regex_error(_DNS1035_ERR, _DNS1035_FMT, "my-name", "abc-123"))
    return errs


def _mask_trailing_dash(name: str) -> str:
    # Go's maskTrailingDash; it really does drop two characters.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return dns1123_subdomain_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return dns1123_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return dns1035_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """RBAC names (`system:controller:foo` is fine); only `.`, `..`, `/` and `%` are out."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def port_num_errors(port: Any) -> list[str]:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return [PORT_RANGE_ERROR]
    return []


def port_name_errors(port: str) -> list[str]:
    """`IsValidPortName` (IANA_SVC_NAME)."""
    errs: list[str] = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not re.fullmatch(r"[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens (--)")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen (-)")
    return errs


def config_key_errors(key: str) -> list[str]:
    errs: list[str] = []
    if len(key) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY_RE.match(key):
        errs.append(
            regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name",
            )
        )
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


# --- the collector --------------------------------------------------------------------


class _Errs(list[Cause]):
    """A cause list with short adders named for Go's field error constructors."""

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.append(errors.invalid_value(path, value, detail))

    def required(self, path: str, detail: str = "") -> None:
        self.append(errors.required(path, detail))

    def forbidden(self, path: str, detail: str) -> None:
        self.append(errors.forbidden_field(path, detail))

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        self.append(errors.not_supported(path, value, list(supported)))

    def duplicate(self, path: str, value: Any) -> None:
        self.append(errors.duplicate(path, value))

    def not_found(self, path: str, value: Any) -> None:
        self.append(Cause("FieldValueNotFound", path, f"Not found: {errors._fmt(value)}"))

    def too_long(self, path: str, limit: int) -> None:
        self.append(errors.too_long(path, "", limit))

    def each(self, path: str, value: Any, messages: Iterable[str]) -> None:
        for msg in messages:
            self.invalid(path, value, msg)

    def immutable(self, path: str, new: Any, old: Any, shown: Any = None) -> None:
        if new != old:
            self.invalid(path, new if shown is None else shown, FIELD_IMMUTABLE)

    def nonnegative(self, path: str, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")


def _m(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _ld(value: Any) -> list[Obj]:
    return [v if isinstance(v, Mapping) else {} for v in _l(value)]


# --- metadata -------------------------------------------------------------------------


def _validate_labels(errs: _Errs, labels: Any, path: str) -> None:
    for k, v in _m(labels).items():
        errs.each(path, str(k), qualified_name_errors(str(k)))
        errs.each(path, str(v), label_value_errors(str(v)))


def _validate_annotations(errs: _Errs, annotations: Any, path: str) -> None:
    total = 0
    for k, v in _m(annotations).items():
        # Annotation keys are qualified names, but case does not matter.
        errs.each(path, str(k), qualified_name_errors(str(k).lower()))
        total += len(str(k)) + len(str(v))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT)


def _validate_meta(errs: _Errs, obj: Obj, name_fn: NameFn, namespaced: bool) -> None:
    meta = _m(obj.get("metadata"))
    generate_name = str(meta.get("generateName") or "")
    name = str(meta.get("name") or "")
    if generate_name:
        errs.each("metadata.generateName", generate_name, name_fn(generate_name, True))
    if not name:
        if not generate_name:
            errs.required("metadata.name", "name or generateName is required")
    else:
        errs.each("metadata.name", name, name_fn(name, False))
    namespace = str(meta.get("namespace") or "")
    if namespaced:
        if not namespace:
            errs.required("metadata.namespace")
        else:
            errs.each("metadata.namespace", namespace, name_is_dns_label(namespace, False))
    elif namespace:
        errs.forbidden("metadata.namespace", "not allowed on this type")
    errs.nonnegative("metadata.generation", meta.get("generation"))
    _validate_labels(errs, meta.get("labels"), "metadata.labels")
    _validate_annotations(errs, meta.get("annotations"), "metadata.annotations")
    for i, fin in enumerate(_l(meta.get("finalizers"))):
        errs.each(f"metadata.finalizers[{i}]", str(fin), qualified_name_errors(str(fin)))


def _validate_meta_update(errs: _Errs, new: Obj, old: Obj) -> None:
    nm, om = _m(new.get("metadata")), _m(old.get("metadata"))
    if (nm.get("generation") or 0) < (om.get("generation") or 0):
        errs.invalid("metadata.generation", nm.get("generation") or 0, "must not be decremented")
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        errs.immutable(f"metadata.{key}", nm.get(key) or "", om.get(key) or "")
    if om.get("deletionTimestamp"):
        new_fins = set(map(str, _l(nm.get("finalizers"))))
        added = sorted(new_fins - set(map(str, _l(om.get("finalizers")))))
        for fin in added:
            errs.forbidden(
                "metadata.finalizers",
                f"no new finalizers can be added if the object is being deleted, found new "
                f"finalizers []string{{{go_quote(fin)}}}",
            )


def check_request_namespace(obj: Obj, namespace: str | None) -> None:
    """The handler-level check Kubernetes does before validation: a body naming another
    namespace than the URL is a 400, not a 422."""
    body_ns = _m(obj.get("metadata")).get("namespace")
    if namespace and body_ns and body_ns != namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on "
            "the request"
        )


def _validate_selector(errs: _Errs, sel: Any, path: str) -> None:
    """`ValidateLabelSelector` with invalid label values rejected."""
    if not isinstance(sel, Mapping):
        return
    _validate_labels(errs, sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(_ld(sel.get("matchExpressions"))):
        p = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator", "")
        values = _l(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.forbidden(
                    f"{p}.values", "may not be specified when `operator` is 'Exists' or "
                    "'DoesNotExist'",
                )
        else:
            errs.invalid(f"{p}.operator", str(op), "not a valid selector operator")
        key = str(expr.get("key", ""))
        errs.each(f"{p}.key", key, qualified_name_errors(key))
        for j, v in enumerate(values):
            errs.each(f"{p}.values[{j}]", str(v), label_value_errors(str(v)))


# --- pods -----------------------------------------------------------------------------

_PROTOCOLS = ("SCTP", "TCP", "UDP")
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _validate_probe(errs: _Errs, probe: Any, path: str, liveness_like: bool) -> None:
    if not isinstance(probe, Mapping):
        return
    present = [h for h in _HANDLERS if probe.get(h) is not None]
    if not present:
        errs.required(path, "must specify a handler type")
    for h in present[1:]:
        errs.forbidden(f"{path}.{h}", "may not specify more than 1 handler type")
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
                "failureThreshold", "terminationGracePeriodSeconds"):
        errs.nonnegative(f"{path}.{key}", probe.get(key))
    if liveness_like and probe.get("successThreshold") not in (None, 1):
        errs.invalid(f"{path}.successThreshold", probe.get("successThreshold"), "must be 1")
    http = probe.get("httpGet")
    if isinstance(http, Mapping):
        _validate_port_num_or_name(errs, http.get("port"), f"{path}.httpGet.port")
        scheme = http.get("scheme")
        if scheme not in (None, "HTTP", "HTTPS"):
            errs.not_supported(f"{path}.httpGet.scheme", scheme, ["HTTP", "HTTPS"])
    tcp = probe.get("tcpSocket")
    if isinstance(tcp, Mapping):
        _validate_port_num_or_name(errs, tcp.get("port"), f"{path}.tcpSocket.port")


def _validate_port_num_or_name(errs: _Errs, port: Any, path: str) -> None:
    if isinstance(port, str):
        errs.each(path, port, port_name_errors(port))
    else:
        errs.each(path, port if port is not None else 0, port_num_errors(port))


def _validate_container(
    errs: _Errs, c: Obj, path: str, volumes: set[str], names: set[str], host_network: bool,
    regular: bool,
) -> None:
    name = str(c.get("name") or "")
    if not name:
        errs.required(f"{path}.name")
    else:
        errs.each(f"{path}.name", name, dns1123_label_errors(name))
        if name in names:
            errs.duplicate(f"{path}.name", name)
        names.add(name)
    image = c.get("image")
    if not image:
        errs.required(f"{path}.image")
    elif str(image) != str(image).strip():
        errs.invalid(f"{path}.image", str(image), "must not have leading or trailing whitespace")
    port_names: set[str] = set()
    for i, port in enumerate(_ld(c.get("ports"))):
        p = f"{path}.ports[{i}]"
        pname = str(port.get("name") or "")
        if pname:
            msgs = port_name_errors(pname)
            if msgs:
                errs.each(f"{p}.name", pname, msgs)
            elif pname in port_names:
                errs.duplicate(f"{p}.name", pname)
            else:
                port_names.add(pname)
        cport = port.get("containerPort")
        if not cport:
            errs.required(f"{p}.containerPort")
        else:
            errs.each(f"{p}.containerPort", cport, port_num_errors(cport))
        hport = port.get("hostPort")
        if hport:
            errs.each(f"{p}.hostPort", hport, port_num_errors(hport))
            if host_network and hport != cport:
                errs.invalid(
                    f"{p}.hostPort", hport, "must match `containerPort` when `hostNetwork` is true"
                )
        protocol = port.get("protocol")
        if not protocol:
            errs.required(f"{p}.protocol")
        elif protocol not in _PROTOCOLS:
            errs.not_supported(f"{p}.protocol", protocol, _PROTOCOLS)
    for i, env in enumerate(_ld(c.get("env"))):
        ename = str(env.get("name") or "")
        if not ename:
            errs.required(f"{path}.env[{i}].name")
        elif any(ord(ch) > 126 or ord(ch) < 32 or ch == "=" for ch in ename):
            # RelaxedEnvironmentVariableValidation is on by default in 1.32.
            errs.invalid(
                f"{path}.env[{i}].name", ename,
                "a valid environment variable name must consist only of printable ASCII "
                "characters other than '='",
            )
    mount_paths: set[str] = set()
    for i, mount in enumerate(_ld(c.get("volumeMounts"))):
        p = f"{path}.volumeMounts[{i}]"
        mname = str(mount.get("name") or "")
        if not mname:
            errs.required(f"{p}.name")
        elif mname not in volumes:
            errs.not_found(f"{p}.name", mname)
        mpath = str(mount.get("mountPath") or "")
        if not mpath:
            errs.required(f"{p}.mountPath")
        elif mpath in mount_paths:
            errs.invalid(f"{p}.mountPath", mpath, "must be unique")
        mount_paths.add(mpath)
    policy = c.get("imagePullPolicy")
    if not policy:
        errs.required(f"{path}.imagePullPolicy")
    elif policy not in _PULL_POLICIES:
        errs.not_supported(f"{path}.imagePullPolicy", policy, _PULL_POLICIES)
    tmp = c.get("terminationMessagePolicy")
    if not tmp:
        errs.required(f"{path}.terminationMessagePolicy")
    elif tmp not in _TERMINATION_MESSAGE_POLICIES:
        errs.not_supported(f"{path}.terminationMessagePolicy", tmp, _TERMINATION_MESSAGE_POLICIES)
    if regular:
        _validate_probe(errs, c.get("livenessProbe"), f"{path}.livenessProbe", True)
        _validate_probe(errs, c.get("readinessProbe"), f"{path}.readinessProbe", False)
        _validate_probe(errs, c.get("startupProbe"), f"{path}.startupProbe", True)
        if c.get("readinessProbe") is not None and _m(c["readinessProbe"]).get(
            "terminationGracePeriodSeconds"
        ) is not None:
            errs.invalid(
                f"{path}.readinessProbe.terminationGracePeriodSeconds",
                _m(c["readinessProbe"])["terminationGracePeriodSeconds"],
                "must not be set for readinessProbes",
            )
    else:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            # Regular init containers may not probe; sidecars (restartPolicy Always) may.
            if c.get(probe) is not None and c.get("restartPolicy") != "Always":
                errs.forbidden(
                    f"{path}.{probe}",
                    "may not be set for init containers without restartPolicy=Always",
                )


def _validate_pod_spec(errs: _Errs, spec: Obj, path: str) -> None:
    volumes: set[str] = set()
    for i, vol in enumerate(_ld(spec.get("volumes"))):
        vname = str(vol.get("name") or "")
        p = f"{path}.volumes[{i}]"
        if not vname:
            errs.required(f"{p}.name")
        else:
            errs.each(f"{p}.name", vname, dns1123_label_errors(vname))
            if vname in volumes:
                errs.duplicate(f"{p}.name", vname)
        volumes.add(vname)
        for key in ("configMap", "secret"):
            src = vol.get(key)
            mode = _m(src).get("defaultMode")
            if isinstance(mode, int) and not 0 <= mode <= 0o777:
                errs.invalid(
                    f"{p}.{key}.defaultMode", mode,
                    "must be a number between 0 and 0777 (octal), both inclusive",
                )
    host_network = bool(spec.get("hostNetwork"))
    names: set[str] = set()
    containers = _ld(spec.get("containers"))
    if not containers:
        errs.required(f"{path}.containers")
    for i, c in enumerate(_ld(spec.get("initContainers"))):
        _validate_container(errs, c, f"{path}.initContainers[{i}]", volumes, names,
                            host_network, regular=False)
    for i, c in enumerate(containers):
        _validate_container(errs, c, f"{path}.containers[{i}]", volumes, names, host_network,
                            regular=True)
    restart = spec.get("restartPolicy")
    if not restart:
        errs.required(f"{path}.restartPolicy")
    elif restart not in _RESTART_POLICIES:
        errs.not_supported(f"{path}.restartPolicy", restart, _RESTART_POLICIES)
    dns_policy = spec.get("dnsPolicy")
    if not dns_policy:
        errs.required(f"{path}.dnsPolicy")
    elif dns_policy not in _DNS_POLICIES:
        errs.not_supported(f"{path}.dnsPolicy", dns_policy, _DNS_POLICIES)
    elif dns_policy == "None" and not _m(spec.get("dnsConfig")).get("nameservers"):
        if spec.get("dnsConfig") is None:
            errs.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
        else:
            errs.required(
                f"{path}.dnsConfig.nameservers",
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )
    for i, ns in enumerate(_l(_m(spec.get("dnsConfig")).get("nameservers"))):
        if not _is_ip(str(ns)):
            errs.invalid(f"{path}.dnsConfig.nameservers[{i}]", str(ns),
                         "must be valid IP address")
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and not 1 <= ads <= MAX_INT32:
        errs.invalid(f"{path}.activeDeadlineSeconds", ads,
                     f"must be between 1 and {MAX_INT32}, inclusive")
    for key in ("serviceAccountName", "nodeName"):
        value = str(spec.get(key) or "")
        if value:
            errs.each(f"{path}.{key}", value, dns1123_subdomain_errors(value))
    hostname = str(spec.get("hostname") or "")
    if hostname:
        errs.each(f"{path}.hostname", hostname, dns1123_label_errors(hostname))
    subdomain = str(spec.get("subdomain") or "")
    if subdomain:
        errs.each(f"{path}.subdomain", subdomain, dns1123_label_errors(subdomain))
    for i, tol in enumerate(_ld(spec.get("tolerations"))):
        _validate_toleration(errs, tol, f"{path}.tolerations[{i}]")
    _validate_labels(errs, spec.get("nodeSelector"), f"{path}.nodeSelector")


def _validate_toleration(errs: _Errs, tol: Obj, path: str) -> None:
    key = str(tol.get("key") or "")
    if key:
        errs.each(f"{path}.key", key, qualified_name_errors(key))
    op = tol.get("operator") or "Equal"
    if not key and op != "Exists":
        errs.invalid(f"{path}.operator", op,
                     "operator must be Exists when `key` is empty, which means \"match all "
                     "values and all keys\"")
    if op == "Exists" and tol.get("value"):
        errs.invalid(f"{path}.operator", tol.get("value"),
                     "value must be empty when `operator` is 'Exists'")
    if op not in ("Equal", "Exists"):
        errs.not_supported(f"{path}.operator", op, ["Equal", "Exists"])
    effect = tol.get("effect") or ""
    if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        errs.not_supported(f"{path}.effect", effect, ["NoSchedule", "PreferNoSchedule",
                                                      "NoExecute"])
    if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
        errs.invalid(f"{path}.effect", effect,
                     "effect must be 'NoExecute' when `tolerationSeconds` is set")


def _validate_pod(errs: _Errs, obj: Obj) -> None:
    _validate_pod_spec(errs, _m(obj.get("spec")), "spec")


_POD_UPDATABLE = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)",
)


def _spec_diff(old: Obj, new: Obj) -> str:
    """A short cmp.Diff-like listing of changed top-level pod spec fields.

    Go prints a full `cmp.Diff` of the internal struct; we keep its shape, not its bytes.
    """
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key in old:
                lines.append(f"-  {key}: {json.dumps(old[key], sort_keys=True)},")
            if key in new:
                lines.append(f"+  {key}: {json.dumps(new[key], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines)


def _validate_pod_update(errs: _Errs, new: Obj, old: Obj) -> None:
    ns, os_ = _m(new.get("spec")), _m(old.get("spec"))
    new_ads, old_ads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if isinstance(new_ads, int):
        if not 0 <= new_ads <= MAX_INT32:
            errs.invalid("spec.activeDeadlineSeconds", new_ads,
                         f"must be between 0 and {MAX_INT32}, inclusive")
        if isinstance(old_ads, int) and old_ads < new_ads:
            errs.invalid("spec.activeDeadlineSeconds", new_ads,
                         "must be less than or equal to previous value")
            return
    elif old_ads is not None:
        errs.invalid("spec.activeDeadlineSeconds", None,
                     "must not update from a positive integer to nil value")
    old_tols = _ld(os_.get("tolerations"))
    new_tols = _ld(ns.get("tolerations"))
    for old_tol in old_tols:
        if not any(_same_toleration(old_tol, t) for t in new_tols):
            errs.forbidden("spec.tolerations",
                           "existing toleration can not be modified except its tolerationSeconds")
            break
    # Munge the fields that may change into the old spec; anything left is forbidden.
    munged = dict(ns)
    for key in ("containers", "initContainers"):
        new_cs, old_cs = _ld(ns.get(key)), _ld(os_.get(key))
        if key in ns and len(new_cs) == len(old_cs):
            munged[key] = [
                {**nc, "image": oc.get("image")} if "image" in oc or "image" in nc else nc
                for nc, oc in zip(new_cs, old_cs, strict=True)
            ]
            munged[key] = [
                {k: v for k, v in c.items() if not (k == "image" and v is None)}
                for c in munged[key]
            ]
    for key in ("activeDeadlineSeconds", "tolerations"):
        if key in os_:
            munged[key] = os_[key]
        else:
            munged.pop(key, None)
    old_grace = os_.get("terminationGracePeriodSeconds")
    new_grace = ns.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new_grace == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if munged != dict(os_):
        errs.forbidden(
            "spec",
            "pod updates may not change fields other than " + ",".join(_POD_UPDATABLE) + "\n"
            + _spec_diff(dict(os_), munged),
        )


def _same_toleration(old: Obj, new: Obj) -> bool:
    keys = ("key", "operator", "value", "effect")
    return all((old.get(k) or "") == (new.get(k) or "") for k in keys)


# --- services -------------------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _cluster_ips(spec: Obj) -> list[str]:
    """The API server normalizes `clusterIP` into `clusterIPs`; validate the normal form."""
    ips = [str(ip) for ip in _l(spec.get("clusterIPs"))]
    if not ips and spec.get("clusterIP"):
        ips = [str(spec["clusterIP"])]
    return ips


def _is_headless(spec: Obj) -> bool:
    return spec.get("clusterIP") == "None" or _cluster_ips(spec)[:1] == ["None"]


def _externally_accessible(spec: Obj) -> bool:
    t = spec.get("type")
    return t in ("NodePort", "LoadBalancer") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _validate_service(errs: _Errs, obj: Obj) -> None:
    spec = _m(obj.get("spec"))
    svc_type = spec.get("type")
    headless = _is_headless(spec)
    ports = _ld(spec.get("ports"))
    if not ports and not headless and svc_type != "ExternalName":
        errs.required("spec.ports")
    if svc_type == "ExternalName":
        if _cluster_ips(spec):
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        if spec.get("ipFamilies"):
            errs.forbidden("spec.ipFamilies", "may not be set for ExternalName services")
        if spec.get("ipFamilyPolicy") is not None:
            errs.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs.each("spec.externalName", cname, dns1123_subdomain_errors(cname))
        else:
            errs.required("spec.externalName")
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        pname = str(port.get("name") or "")
        if len(ports) > 1 and not pname:
            errs.required(f"{p}.name")
        elif pname:
            errs.each(f"{p}.name", pname, dns1123_label_errors(pname))
            if pname in names:
                errs.duplicate(f"{p}.name", pname)
            names.add(pname)
        errs.each(f"{p}.port", port.get("port") or 0, port_num_errors(port.get("port")))
        protocol = port.get("protocol")
        if not protocol:
            errs.required(f"{p}.protocol")
        elif protocol not in _PROTOCOLS:
            errs.not_supported(f"{p}.protocol", protocol, _PROTOCOLS)
        _validate_port_num_or_name(errs, port.get("targetPort"), f"{p}.targetPort")
        app_protocol = port.get("appProtocol")
        if app_protocol is not None:
            errs.each(f"{p}.appProtocol", str(app_protocol),
                      qualified_name_errors(str(app_protocol)))
    if spec.get("selector") is not None:
        _validate_labels(errs, spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity")
    if not affinity:
        errs.required("spec.sessionAffinity")
    elif affinity not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"])
    if affinity == "ClientIP":
        _validate_client_ip_config(errs, spec.get("sessionAffinityConfig"))
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.forbidden(
            "spec.sessionAffinityConfig", "must not be set when session affinity is None"
        )
    if svc_type != "ExternalName":
        _validate_cluster_ips(errs, spec)
    for i, ip in enumerate(_l(spec.get("externalIPs"))):
        if not _is_ip(str(ip)):
            errs.invalid(f"spec.externalIPs[{i}]", str(ip),
                         "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    if not svc_type:
        errs.required("spec.type")
    elif svc_type not in _SERVICE_TYPES:
        errs.not_supported("spec.type", svc_type, _SERVICE_TYPES)
    if svc_type == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                errs.forbidden(f"spec.ports[{i}].nodePort",
                               "may not be used when `type` is 'ClusterIP'")
    seen_node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        node_port = port.get("nodePort")
        if not node_port:
            continue
        key = (str(port.get("protocol") or ""), int(node_port))
        if key in seen_node_ports:
            errs.duplicate(f"spec.ports[{i}].nodePort", node_port)
        seen_node_ports.add(key)
    seen_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        pkey = (str(port.get("protocol") or ""), int(port.get("port") or 0))
        if pkey in seen_ports:
            errs.duplicate(f"spec.ports[{i}]", _go_service_port_key(*pkey))
        seen_ports.add(pkey)
    if svc_type == "LoadBalancer":
        for i, port in enumerate(ports):
            if port.get("port") == KUBELET_PORT:
                errs.invalid(f"spec.ports[{i}]", KUBELET_PORT,
                             f"may not expose port {KUBELET_PORT} externally since it is used by "
                             "kubelet")
        if headless:
            errs.invalid("spec.clusterIPs[0]", "None",
                         "may not be set to 'None' for LoadBalancer services")
    elif svc_type == "NodePort" and headless:
        errs.invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for NodePort services")
    ranges = _l(spec.get("loadBalancerSourceRanges"))
    if ranges:
        if svc_type != "LoadBalancer":
            errs.forbidden("spec.loadBalancerSourceRanges",
                           "may only be used when `type` is 'LoadBalancer'")
        for i, cidr in enumerate(ranges):
            if not _is_cidr(str(cidr).strip()):
                errs.invalid(f"spec.loadBalancerSourceRanges[{i}]", str(cidr),
                             "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    _validate_traffic_policies(errs, spec)
    alloc = spec.get("allocateLoadBalancerNodePorts")
    if svc_type == "LoadBalancer" and alloc is None:
        errs.required("spec.allocateLoadBalancerNodePorts")
    elif svc_type != "LoadBalancer" and alloc is not None:
        errs.forbidden("spec.allocateLoadBalancerNodePorts",
                       "may only be used when `type` is 'LoadBalancer'")
    lb_class = spec.get("loadBalancerClass")
    if lb_class is not None:
        if svc_type == "LoadBalancer":
            errs.each("spec.loadBalancerClass", str(lb_class), qualified_name_errors(str(lb_class)))
        else:
            errs.forbidden("spec.loadBalancerClass",
                           "may only be used when `type` is 'LoadBalancer'")


def _validate_client_ip_config(errs: _Errs, config: Any) -> None:
    why = "when session affinity type is ClientIP"
    if not isinstance(config, Mapping):
        errs.required("spec.sessionAffinityConfig", why)
        return
    client_ip = config.get("clientIP")
    if not isinstance(client_ip, Mapping):
        errs.required("spec.sessionAffinityConfig.clientIP", why)
        return
    timeout = client_ip.get("timeoutSeconds")
    if timeout is None:
        errs.required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", why)
    elif not isinstance(timeout, int) or not 0 < timeout <= 86400:
        errs.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                     "must be greater than 0 and less than 86400")


def _validate_cluster_ips(errs: _Errs, spec: Obj) -> None:
    cluster_ip = spec.get("clusterIP")
    ips = _l(spec.get("clusterIPs"))
    if cluster_ip and ips and ips[0] != cluster_ip:
        errs.invalid("spec.clusterIPs", go_strings(ips), "first value must match `clusterIP`")
    normal = _cluster_ips(spec)
    for i, ip in enumerate(normal):
        if i == 0 and ip == "None":
            if len(normal) > 1:
                errs.invalid("spec.clusterIPs", go_strings(normal),
                             "'None' must be the first and only value")
            continue
        if not _is_ip(ip):
            errs.invalid(f"spec.clusterIPs[{i}]", ip,
                         "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack",
                                             "SingleStack"):
        errs.not_supported("spec.ipFamilyPolicy", policy,
                           ["PreferDualStack", "RequireDualStack", "SingleStack"])
    families = _l(spec.get("ipFamilies"))
    for i, fam in enumerate(families):
        if fam not in ("IPv4", "IPv6"):
            errs.not_supported(f"spec.ipFamilies[{i}]", fam, ["IPv4", "IPv6"])
        elif fam in families[:i]:
            errs.duplicate(f"spec.ipFamilies[{i}]", fam)
    if policy == "SingleStack" and len(families) > 1:
        errs.invalid("spec.ipFamilies", GoValue("[]core.IPFamily{" + ", ".join(
            go_quote(str(f)) for f in families) + "}"),
            "when multiple IP families are specified, `ipFamilyPolicy` must be "
            "'RequireDualStack' or 'PreferDualStack'")


def _validate_traffic_policies(errs: _Errs, spec: Obj) -> None:
    etp = spec.get("externalTrafficPolicy")
    if not _externally_accessible(spec):
        if etp:
            errs.invalid("spec.externalTrafficPolicy", etp,
                         "may only be set for externally-accessible services")
    elif not etp:
        errs.required("spec.externalTrafficPolicy")
    elif etp not in ("Cluster", "Local"):
        errs.not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"])
    hc = spec.get("healthCheckNodePort")
    needs_hc = spec.get("type") == "LoadBalancer" and etp == "Local"
    if not needs_hc:
        if hc:
            errs.invalid("spec.healthCheckNodePort", hc,
                         "may only be set when `type` is 'LoadBalancer' and "
                         "`externalTrafficPolicy` is 'Local'")
    elif hc:
        # Kubernetes also requires it here (its allocator runs before validation); podnet's
        # API server allocates after validating, so a missing one is not an error yet.
        errs.each("spec.healthCheckNodePort", hc, port_num_errors(hc))
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if spec.get("type") in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.required("spec.internalTrafficPolicy",
                          f"must be specified when `type` is '{spec.get('type')}'")
    elif itp not in ("Cluster", "Local"):
        errs.not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"])


def _validate_service_update(errs: _Errs, new: Obj, old: Obj) -> None:
    ns, os_ = _m(new.get("spec")), _m(old.get("spec"))
    if "ExternalName" not in (ns.get("type"), os_.get("type")) and not (
        _is_headless(ns) and _is_headless(os_)
    ):
        new_ips, old_ips = _cluster_ips(ns), _cluster_ips(os_)
        shown = go_strings(new_ips if new_ips else None)
        if len(old_ips) == len(new_ips):
            for i, ip in enumerate(old_ips):
                if ip != new_ips[i]:
                    errs.invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set")
        elif len(old_ips) > len(new_ips):
            if not new_ips:
                errs.invalid("spec.clusterIPs[0]", shown, "primary clusterIP can not be unset")
            elif new_ips[0] != old_ips[0]:
                errs.invalid("spec.clusterIPs[0]", shown, "may not change once set")
            if len(new_ips) == 1 and ns.get("ipFamilyPolicy") != "SingleStack":
                errs.invalid("spec.clusterIPs[0]", shown,
                             "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the "
                             "secondary clusterIP")
        elif old_ips and new_ips[0] != old_ips[0]:
            errs.invalid("spec.clusterIPs[0]", shown, "may not change once set")
    if (
        ns.get("type") == "LoadBalancer"
        and os_.get("type") == "LoadBalancer"
        and ns.get("loadBalancerClass") != os_.get("loadBalancerClass")
    ):
        errs.invalid("spec.loadBalancerClass", ns.get("loadBalancerClass"),
                     "may not change once set")


# --- apps -----------------------------------------------------------------------------


def _validate_template_for_replicas(errs: _Errs, spec: Obj, path: str) -> None:
    """`ValidatePodTemplateSpecForReplicaSet`, selector match included."""
    template = spec.get("template")
    if not isinstance(template, Mapping):
        errs.required(f"{path}.template")
        return
    tmeta = _m(template.get("metadata"))
    selector = spec.get("selector")
    if isinstance(selector, Mapping):
        try:
            parsed = LabelSelector.from_object(selector)
        except errors.StatusError:
            parsed = None
        if parsed is not None and not parsed.empty and not parsed.matches(
            _m(tmeta.get("labels"))
        ):
            errs.invalid(f"{path}.template.metadata.labels", go_map(tmeta.get("labels")),
                         "`selector` does not match template `labels`")
    _validate_labels(errs, tmeta.get("labels"), f"{path}.template.metadata.labels")
    _validate_annotations(errs, tmeta.get("annotations"), f"{path}.template.metadata.annotations")
    tspec = _m(template.get("spec"))
    _validate_pod_spec(errs, tspec, f"{path}.template.spec")
    restart = tspec.get("restartPolicy")
    if restart and restart != "Always":
        errs.not_supported(f"{path}.template.spec.restartPolicy", restart, ["Always"])
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.invalid(f"{path}.template.spec.activeDeadlineSeconds",
                     tspec.get("activeDeadlineSeconds"),
                     "activeDeadlineSeconds in ReplicaSet is not Supported")


def _validate_replicated(errs: _Errs, obj: Obj, kind: str) -> None:
    spec = _m(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    selector = spec.get("selector")
    if not isinstance(selector, Mapping):
        errs.required("spec.selector")
    else:
        _validate_selector(errs, selector, "spec.selector")
        if not _m(selector.get("matchLabels")) and not _l(selector.get("matchExpressions")):
            errs.invalid("spec.selector", go_label_selector(selector),
                         f"empty selector is invalid for {kind}")
    _validate_template_for_replicas(errs, spec, "spec")
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))


def _validate_deployment(errs: _Errs, obj: Obj) -> None:
    _validate_replicated(errs, obj, "deployment")
    spec = _m(obj.get("spec"))
    strategy = _m(spec.get("strategy"))
    stype = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if stype == "Recreate":
        if rolling is not None:
            errs.forbidden("spec.strategy.rollingUpdate",
                           "may not be specified when strategy `type` is 'Recreate'")
    elif stype == "RollingUpdate":
        if not isinstance(rolling, Mapping):
            errs.required("spec.strategy.rollingUpdate",
                          "this should be defaulted and never be nil")
        else:
            _validate_rolling_update(errs, rolling)
    else:
        shown = GoValue(
            f"apps.DeploymentStrategy{{Type:{go_quote(str(stype or ''))}, "
            "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}"
        )
        errs.not_supported("spec.strategy", shown, ["Recreate", "RollingUpdate"])
    errs.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    pds = spec.get("progressDeadlineSeconds")
    if isinstance(pds, int):
        errs.nonnegative("spec.progressDeadlineSeconds", pds)
        if pds <= int(spec.get("minReadySeconds") or 0):
            errs.invalid(
                "spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"
            )


def _int_or_percent(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _PERCENT_RE.match(value):
        return int(value[:-1])
    return None


def _validate_rolling_update(errs: _Errs, rolling: Obj) -> None:
    for key in ("maxUnavailable", "maxSurge"):
        value = rolling.get(key)
        path = f"spec.strategy.rollingUpdate.{key}"
        if isinstance(value, str):
            if not _PERCENT_RE.match(value):
                errs.invalid(path, go_int_or_string(value), regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    "[0-9]+%", "1%", "93%"))
        else:
            errs.nonnegative(path, value)
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    if _int_or_percent(unavailable) == 0 and _int_or_percent(surge) == 0:
        errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", go_int_or_string(unavailable),
                     "may not be 0 when `maxSurge` is 0")
    if isinstance(unavailable, str) and (_int_or_percent(unavailable) or 0) > 100:
        errs.invalid("spec.strategy.rollingUpdate.maxUnavailable", go_int_or_string(unavailable),
                     "must not be greater than 100%")


def _validate_replicaset(errs: _Errs, obj: Obj) -> None:
    _validate_replicated(errs, obj, "replicaset")


def _validate_selector_immutable(errs: _Errs, new: Obj, old: Obj) -> None:
    new_sel, old_sel = _m(new.get("spec")).get("selector"), _m(old.get("spec")).get("selector")
    if _normal_selector(new_sel) != _normal_selector(old_sel):
        errs.invalid("spec.selector", go_label_selector(new_sel), FIELD_IMMUTABLE)


def _normal_selector(sel: Any) -> Any:
    sel = _m(sel)
    return (dict(_m(sel.get("matchLabels"))), _l(sel.get("matchExpressions")))


# --- namespaces, config and secrets ---------------------------------------------------


def _validate_namespace(errs: _Errs, obj: Obj) -> None:
    for i, fin in enumerate(_l(_m(obj.get("spec")).get("finalizers"))):
        fin = str(fin)
        if "/" not in fin and fin != "kubernetes":
            errs.invalid(f"spec.finalizers[{i}]", fin,
                         "name is neither a standard finalizer name nor is it fully qualified")
        else:
            errs.each(f"spec.finalizers[{i}]", fin, qualified_name_errors(fin))


def _validate_data_keys(errs: _Errs, obj: Obj, bags: tuple[str, str]) -> int:
    total = 0
    first, second = bags
    for bag, other in ((first, second), (second, first)):
        data = _m(obj.get(bag))
        for key, value in data.items():
            errs.each(f"{bag}[{key}]", str(key), config_key_errors(str(key)))
            if key in _m(obj.get(other)) and bag == first:
                errs.invalid(f"{bag}[{key}]", str(key), f"duplicate of key present in {other}")
            total += len(str(value))
    return total


def _validate_configmap(errs: _Errs, obj: Obj) -> None:
    if _validate_data_keys(errs, obj, ("data", "binaryData")) > MAX_SECRET_SIZE:
        errs.too_long("", MAX_SECRET_SIZE)


def _validate_secret(errs: _Errs, obj: Obj) -> None:
    total = 0
    for bag in ("data", "stringData"):
        for key, value in _m(obj.get(bag)).items():
            errs.each(f"{bag}[{key}]", str(key), config_key_errors(str(key)))
            total += len(str(value))
    if total > MAX_SECRET_SIZE:
        errs.too_long("data", MAX_SECRET_SIZE)
    keys = set(_m(obj.get("data"))) | set(_m(obj.get("stringData")))
    stype = obj.get("type")
    annotations = _m(_m(obj.get("metadata")).get("annotations"))
    if stype == "kubernetes.io/service-account-token":
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    elif stype == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in keys:
            errs.required("data[.dockerconfigjson]")
    elif stype == "kubernetes.io/dockercfg":
        if ".dockercfg" not in keys:
            errs.required("data[.dockercfg]")
    elif stype == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in keys:
                errs.required(f"data[{key}]")
    elif stype == "kubernetes.io/ssh-auth":
        if "ssh-privatekey" not in keys:
            errs.required("data[ssh-privatekey]")
    elif stype == "kubernetes.io/basic-auth" and "username" not in keys and (
        "password" not in keys
    ):
        errs.required("data[username]")
        errs.required("data[password]")


def _validate_immutable_data(errs: _Errs, new: Obj, old: Obj, bags: tuple[str, ...]) -> None:
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        for bag in bags:
            if _m(new.get(bag)) != _m(old.get(bag)):
                errs.forbidden(bag, "field is immutable when `immutable` is set")


def _validate_configmap_update(errs: _Errs, new: Obj, old: Obj) -> None:
    _validate_immutable_data(errs, new, old, ("data", "binaryData"))


def _validate_secret_update(errs: _Errs, new: Obj, old: Obj) -> None:
    errs.immutable("type", new.get("type") or "", old.get("type") or "")
    _validate_immutable_data(errs, new, old, ("data",))


# --- endpoints ------------------------------------------------------------------------


def _validate_endpoints(errs: _Errs, obj: Obj) -> None:
    for i, subset in enumerate(_ld(obj.get("subsets"))):
        p = f"subsets[{i}]"
        addresses = _ld(subset.get("addresses")) + _ld(subset.get("notReadyAddresses"))
        if not addresses:
            errs.required(p, "must specify `addresses` or `notReadyAddresses`")
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(_ld(subset.get(key))):
                ip = str(addr.get("ip") or "")
                if not _is_ip(ip):
                    errs.invalid(f"{p}.{key}[{j}].ip", ip,
                                 "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        ports = _ld(subset.get("ports"))
        for j, port in enumerate(ports):
            pp = f"{p}.ports[{j}]"
            name = str(port.get("name") or "")
            if len(ports) > 1 and not name:
                errs.required(f"{pp}.name")
            elif name:
                errs.each(f"{pp}.name", name, dns1123_label_errors(name))
            errs.each(f"{pp}.port", port.get("port") or 0, port_num_errors(port.get("port")))
            protocol = port.get("protocol")
            if not protocol:
                errs.required(f"{pp}.protocol")
            elif protocol not in _PROTOCOLS:
                errs.not_supported(f"{pp}.protocol", protocol, _PROTOCOLS)


def _validate_endpointslice(errs: _Errs, obj: Obj) -> None:
    address_type = obj.get("addressType")
    if not address_type:
        errs.required("addressType")
    elif address_type not in ("FQDN", "IPv4", "IPv6"):
        errs.not_supported("addressType", address_type, ["FQDN", "IPv4", "IPv6"])
    endpoints = _ld(obj.get("endpoints"))
    if len(endpoints) > 1000:
        errs.append(Cause("FieldValueTooMany", "endpoints",
                          f"Too many: {len(endpoints)}: must have at most 1000 items"))
    for i, ep in enumerate(endpoints):
        addrs = _l(ep.get("addresses"))
        p = f"endpoints[{i}].addresses"
        if not addrs:
            errs.required(p, "must contain at least 1 address")
        elif len(addrs) > 100:
            errs.append(Cause("FieldValueTooMany", p,
                              f"Too many: {len(addrs)}: must have at most 100 items"))
        for j, addr in enumerate(addrs):
            addr = str(addr)
            if address_type == "IPv4":
                ok = _is_ip(addr) and ipaddress.ip_address(addr).version == 4
                if not ok:
                    errs.invalid(f"{p}[{j}]", addr, "must be a valid IPv4 address")
            elif address_type == "IPv6":
                ok = _is_ip(addr) and ipaddress.ip_address(addr).version == 6
                if not ok:
                    errs.invalid(f"{p}[{j}]", addr, "must be a valid IPv6 address")
            elif address_type == "FQDN":
                errs.each(f"{p}[{j}]", addr, dns1123_subdomain_errors(addr))
        hostname = ep.get("hostname")
        if hostname:
            errs.each(f"endpoints[{i}].hostname", str(hostname),
                      dns1123_label_errors(str(hostname)))
    names: set[str] = set()
    for i, port in enumerate(_ld(obj.get("ports"))):
        p = f"ports[{i}]"
        name = str(port.get("name") or "")
        if name:
            errs.each(f"{p}.name", name, dns1123_label_errors(name))
        if name in names:
            errs.duplicate(f"{p}.name", name)
        names.add(name)
        protocol = port.get("protocol")
        if not protocol:
            errs.required(f"{p}.protocol")
        elif protocol not in _PROTOCOLS:
            errs.not_supported(f"{p}.protocol", protocol, _PROTOCOLS)
        if port.get("port") is not None:
            errs.each(f"{p}.port", port["port"], port_num_errors(port["port"]))


def _validate_endpointslice_update(errs: _Errs, new: Obj, old: Obj) -> None:
    errs.immutable("addressType", new.get("addressType") or "", old.get("addressType") or "")


# --- networking -----------------------------------------------------------------------

_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


def _validate_ingress_backend(errs: _Errs, backend: Obj, path: str) -> None:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        errs.invalid(path, "", "cannot set both resource and service backends")
        return
    if resource is not None:
        res = _m(resource)
        if not res.get("kind"):
            errs.required(f"{path}.resource.kind")
        if not res.get("name"):
            errs.required(f"{path}.resource.name")
        return
    if service is None:
        errs.invalid(path, "", "resource or service backend is required")
        return
    svc = _m(service)
    name = str(svc.get("name") or "")
    if not name:
        errs.required(f"{path}.service.name")
    else:
        errs.each(f"{path}.service.name", name, dns1035_label_errors(name))
    port = _m(svc.get("port"))
    port_name, port_number = str(port.get("name") or ""), port.get("number") or 0
    if port_name and port_number:
        errs.invalid(path, "", "cannot set both port name & port number")
    elif port_name:
        errs.each(f"{path}.service.port.name", port_name, port_name_errors(port_name))
    elif port_number:
        errs.each(f"{path}.service.port.number", port_number, port_num_errors(port_number))
    else:
        errs.required(path, "port name or number is required")


def _validate_ingress_host(errs: _Errs, host: str, path: str) -> None:
    if _is_ip(host):
        errs.invalid(path, host, "must be a DNS name, not an IP address")
    if "*" in host:
        if not _WILDCARD_RE.match(host) or len(host) > 253:
            errs.invalid(path, host, regex_error(_WILDCARD_ERR, _WILDCARD_FMT, "*.example.com"))
    else:
        errs.each(path, host, dns1123_subdomain_errors(host))


def _validate_ingress(errs: _Errs, obj: Obj) -> None:
    spec = _m(obj.get("spec"))
    rules = _ld(spec.get("rules"))
    default_backend = spec.get("defaultBackend")
    if not rules and default_backend is None:
        errs.invalid("spec", GoValue("[]networking.IngressRule(nil)"),
                     "either `defaultBackend` or `rules` must be specified")
    if default_backend is not None:
        _validate_ingress_backend(errs, _m(default_backend), "spec.defaultBackend")
    class_name = spec.get("ingressClassName")
    if class_name:
        errs.each("spec.ingressClassName", str(class_name),
                  dns1123_subdomain_errors(str(class_name)))
    for i, tls in enumerate(_ld(spec.get("tls"))):
        for j, host in enumerate(_l(tls.get("hosts"))):
            if "*" in str(host):
                if not _WILDCARD_RE.match(str(host)):
                    errs.invalid(f"spec.tls[{i}].hosts[{j}]", str(host),
                                 regex_error(_WILDCARD_ERR, _WILDCARD_FMT, "*.example.com"))
            else:
                errs.each(f"spec.tls[{i}].hosts[{j}]", str(host),
                          dns1123_subdomain_errors(str(host)))
    for i, rule in enumerate(rules):
        rp = f"spec.rules[{i}]"
        host = str(rule.get("host") or "")
        if host:
            _validate_ingress_host(errs, host, f"{rp}.host")
        http = rule.get("http")
        if http is None:
            continue
        paths = _ld(_m(http).get("paths"))
        if not paths:
            errs.required(f"{rp}.http.paths")
        for j, hp in enumerate(paths):
            pp = f"{rp}.http.paths[{j}]"
            _validate_ingress_path(errs, hp, pp)
            backend = hp.get("backend")
            if not isinstance(backend, Mapping):
                errs.invalid(f"{pp}.backend", "", "resource or service backend is required")
            else:
                _validate_ingress_backend(errs, backend, f"{pp}.backend")


def _validate_ingress_path(errs: _Errs, hp: Obj, pp: str) -> None:
    path_type = hp.get("pathType")
    value = str(hp.get("path") or "")
    if path_type is None:
        errs.required(f"{pp}.pathType", "pathType must be specified")
        return
    if path_type not in _PATH_TYPES:
        errs.not_supported(f"{pp}.pathType", path_type, _PATH_TYPES)
        return
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.invalid(f"{pp}.path", value, "must be an absolute path")
        for seq in _INVALID_PATH_SEQUENCES:
            if seq in value:
                errs.invalid(f"{pp}.path", value, f"must not contain '{seq}'")
        for suffix in _INVALID_PATH_SUFFIXES:
            if value.endswith(suffix):
                errs.invalid(f"{pp}.path", value, f"must not end with '{suffix}'")
    elif value and not value.startswith("/"):
        errs.invalid(f"{pp}.path", value, "must be an absolute path")


def _validate_ingressclass(errs: _Errs, obj: Obj) -> None:
    controller = str(_m(obj.get("spec")).get("controller") or "")
    path = "spec.controller"
    if len(controller) > 250:
        errs.too_long(path, 250)
    if not controller:
        errs.required(path)
        return
    host, _, rest = controller.partition("/")
    if not host or not rest:
        errs.invalid(path, controller, 'must be a domain-prefixed path (such as "acme.io/foo")')
        return
    errs.each(path, host, dns1123_subdomain_errors(host))
    if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", rest):
        errs.invalid(path, rest, regex_error("must be a valid path",
                                             "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"))


def _validate_ingressclass_update(errs: _Errs, new: Obj, old: Obj) -> None:
    errs.immutable("spec.controller", _m(new.get("spec")).get("controller") or "",
                   _m(old.get("spec")).get("controller") or "")


def _validate_netpol_port(errs: _Errs, port: Obj, path: str) -> None:
    protocol = port.get("protocol")
    if protocol is not None and protocol not in _PROTOCOLS:
        errs.not_supported(f"{path}.protocol", protocol, _PROTOCOLS)
    value = port.get("port")
    end_port = port.get("endPort")
    if value is not None:
        if isinstance(value, str):
            errs.each(f"{path}.port", value, port_name_errors(value))
            if end_port is not None:
                errs.forbidden(f"{path}.endPort",
                               "may not be specified when `port` is non-numeric")
        else:
            errs.each(f"{path}.port", value, port_num_errors(value))
            if end_port is not None:
                errs.each(f"{path}.endPort", end_port, port_num_errors(end_port))
                if isinstance(end_port, int) and isinstance(value, int) and end_port < value:
                    errs.invalid(f"{path}.endPort", end_port,
                                 "must be greater than or equal to `port`")
    elif end_port is not None:
        errs.required(f"{path}.port", "must be specified when `endPort` is specified")


def _validate_netpol_peer(errs: _Errs, peer: Obj, path: str) -> None:
    kinds = ("podSelector", "namespaceSelector", "ipBlock")
    present = [k for k in kinds if peer.get(k) is not None]
    if not present:
        errs.required(path, "must specify a peer")
    elif "ipBlock" in present and len(present) > 1:
        errs.forbidden(path, "may not specify both ipBlock and another peer")
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            _validate_selector(errs, peer[key], f"{path}.{key}")
    block = peer.get("ipBlock")
    if block is None:
        return
    block = _m(block)
    cidr = str(block.get("cidr") or "")
    if not cidr:
        errs.required(f"{path}.ipBlock.cidr")
        return
    cidr_msg = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    if not _is_cidr(cidr):
        errs.invalid(f"{path}.ipBlock.cidr", cidr, cidr_msg)
        return
    outer = ipaddress.ip_network(cidr, strict=False)
    for i, exc in enumerate(_l(block.get("except"))):
        ep = f"{path}.ipBlock.except[{i}]"
        if not _is_cidr(str(exc)):
            errs.invalid(ep, str(exc), cidr_msg)
            continue
        inner = ipaddress.ip_network(str(exc), strict=False)
        if (
            inner.version != outer.version
            or not outer.supernet_of(inner)  # type: ignore[arg-type]
            or inner.prefixlen <= outer.prefixlen
        ):
            errs.invalid(ep, str(exc), "must be a strict subset of `cidr`")


def _validate_networkpolicy(errs: _Errs, obj: Obj) -> None:
    spec = _m(obj.get("spec"))
    # podSelector is required by the OpenAPI schema, but kube-apiserver accepts an object
    # without it (an absent selector is `{}`: every pod). We do the same.
    _validate_selector(errs, spec.get("podSelector"), "spec.podSelector")
    for direction, peer_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(_ld(spec.get(direction))):
            rp = f"spec.{direction}[{i}]"
            for j, port in enumerate(_ld(rule.get("ports"))):
                _validate_netpol_port(errs, port, f"{rp}.ports[{j}]")
            for j, peer in enumerate(_ld(rule.get(peer_key))):
                _validate_netpol_peer(errs, peer, f"{rp}.{peer_key}[{j}]")
    types = _l(spec.get("policyTypes"))
    for i, ptype in enumerate(types):
        if ptype not in ("Ingress", "Egress"):
            errs.not_supported(f"spec.policyTypes[{i}]", ptype, ["Ingress", "Egress"])
    if len(types) > 2:
        errs.invalid("spec.policyTypes", go_strings(types),
                     "may not specify more than two policyTypes")


# --- rbac -----------------------------------------------------------------------------

RBAC_GROUP = "rbac.authorization.k8s.io"


def _validate_rules(errs: _Errs, obj: Obj, namespaced: bool) -> None:
    for i, rule in enumerate(_ld(obj.get("rules"))):
        p = f"rules[{i}]"
        if not _l(rule.get("verbs")):
            errs.required(f"{p}.verbs", "verbs must contain at least one value")
        urls = _l(rule.get("nonResourceURLs"))
        if urls:
            if namespaced:
                errs.invalid(f"{p}.nonResourceURLs", go_strings(urls),
                             "namespaced rules cannot apply to non-resource URLs")
            if _l(rule.get("apiGroups")) or _l(rule.get("resources")) or _l(
                rule.get("resourceNames")
            ):
                errs.invalid(f"{p}.nonResourceURLs", go_strings(urls),
                             "rules cannot apply to both regular resources and non-resource URLs")
            continue
        if not _l(rule.get("apiGroups")):
            errs.required(f"{p}.apiGroups", "resource rules must supply at least one api group")
        if not _l(rule.get("resources")):
            errs.required(f"{p}.resources", "resource rules must supply at least one resource")


def _validate_role(errs: _Errs, obj: Obj) -> None:
    _validate_rules(errs, obj, True)


def _validate_clusterrole(errs: _Errs, obj: Obj) -> None:
    _validate_rules(errs, obj, False)


def _validate_binding(errs: _Errs, obj: Obj, namespaced: bool) -> None:
    ref = _m(obj.get("roleRef"))
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.not_supported("roleRef.apiGroup", str(ref.get("apiGroup") or ""), [RBAC_GROUP])
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.not_supported("roleRef.kind", str(ref.get("kind") or ""), kinds)
    ref_name = str(ref.get("name") or "")
    if not ref_name:
        errs.required("roleRef.name")
    else:
        errs.each("roleRef.name", ref_name, name_is_path_segment(ref_name, False))
    for i, subject in enumerate(_ld(obj.get("subjects"))):
        p = f"subjects[{i}]"
        name = str(subject.get("name") or "")
        if not name:
            errs.required(f"{p}.name")
        kind = subject.get("kind")
        group = str(subject.get("apiGroup") or "")
        if kind == "ServiceAccount":
            if name:
                errs.each(f"{p}.name", name, dns1123_subdomain_errors(name))
            if group:
                errs.not_supported(f"{p}.apiGroup", group, [""])
            if not namespaced and not subject.get("namespace"):
                errs.required(f"{p}.namespace")
        elif kind in ("User", "Group"):
            if group != RBAC_GROUP:
                errs.not_supported(f"{p}.apiGroup", group, [RBAC_GROUP])
        else:
            errs.not_supported(f"{p}.kind", str(kind or ""), ["ServiceAccount", "User", "Group"])


def _validate_rolebinding(errs: _Errs, obj: Obj) -> None:
    _validate_binding(errs, obj, True)


def _validate_clusterrolebinding(errs: _Errs, obj: Obj) -> None:
    _validate_binding(errs, obj, False)


def _validate_binding_update(errs: _Errs, new: Obj, old: Obj) -> None:
    new_ref, old_ref = _m(new.get("roleRef")), _m(old.get("roleRef"))
    keys = ("apiGroup", "kind", "name")
    if any((new_ref.get(k) or "") != (old_ref.get(k) or "") for k in keys):
        shown = GoValue(
            f"rbac.RoleRef{{APIGroup:{go_quote(str(new_ref.get('apiGroup') or ''))}, "
            f"Kind:{go_quote(str(new_ref.get('kind') or ''))}, "
            f"Name:{go_quote(str(new_ref.get('name') or ''))}}}"
        )
        errs.invalid("roleRef", shown, "cannot change roleRef")


# --- nodes ----------------------------------------------------------------------------


def _validate_node(errs: _Errs, obj: Obj) -> None:
    spec = _m(obj.get("spec"))
    cidrs = _l(spec.get("podCIDRs"))
    if spec.get("podCIDR") and not cidrs:
        cidrs = [spec["podCIDR"]]
    for i, cidr in enumerate(cidrs):
        if not _is_cidr(str(cidr)):
            errs.invalid(f"spec.podCIDRs[{i}]", str(cidr),
                         "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
    if len(cidrs) > 2:
        errs.invalid("spec.podCIDRs", go_strings(cidrs), "may specify no more than one CIDR for "
                     "each IP family")
    for i, taint in enumerate(_ld(spec.get("taints"))):
        p = f"spec.taints[{i}]"
        key = str(taint.get("key") or "")
        errs.each(f"{p}.key", key, qualified_name_errors(key))
        effect = taint.get("effect")
        if not effect:
            errs.required(f"{p}.effect")
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.not_supported(f"{p}.effect", effect,
                               ["NoSchedule", "PreferNoSchedule", "NoExecute"])


def _validate_node_update(errs: _Errs, new: Obj, old: Obj) -> None:
    old_cidrs = _l(_m(old.get("spec")).get("podCIDRs"))
    new_cidrs = _l(_m(new.get("spec")).get("podCIDRs"))
    if old_cidrs and new_cidrs != old_cidrs:
        errs.forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" "
                       "to valid")


# --- dispatch -------------------------------------------------------------------------


def _nothing(errs: _Errs, obj: Obj) -> None:
    """Kinds whose only rules are the ObjectMeta ones."""


def _nothing_update(errs: _Errs, new: Obj, old: Obj) -> None:
    """Kinds with no update rules beyond ObjectMeta."""


def _deployment_update(errs: _Errs, new: Obj, old: Obj) -> None:
    _validate_selector_immutable(errs, new, old)


@dataclass(frozen=True, slots=True)
class _KindRules:
    name_fn: NameFn
    create: Callable[[_Errs, Obj], None]
    update: Callable[[_Errs, Obj, Obj], None] = _nothing_update


_RULES: dict[tuple[str, str], _KindRules] = {
    ("", "Pod"): _KindRules(name_is_dns_subdomain, _validate_pod, _validate_pod_update),
    ("", "Service"): _KindRules(name_is_dns1035_label, _validate_service,
                                _validate_service_update),
    ("", "Namespace"): _KindRules(name_is_dns_label, _validate_namespace),
    ("", "ConfigMap"): _KindRules(name_is_dns_subdomain, _validate_configmap,
                                  _validate_configmap_update),
    ("", "Secret"): _KindRules(name_is_dns_subdomain, _validate_secret, _validate_secret_update),
    ("", "ServiceAccount"): _KindRules(name_is_dns_subdomain, _nothing),
    ("", "Endpoints"): _KindRules(name_is_dns_subdomain, _validate_endpoints),
    ("", "Node"): _KindRules(name_is_dns_subdomain, _validate_node, _validate_node_update),
    ("", "Event"): _KindRules(name_is_dns_subdomain, _nothing),
    ("apps", "Deployment"): _KindRules(name_is_dns_subdomain, _validate_deployment,
                                       _deployment_update),
    ("apps", "ReplicaSet"): _KindRules(name_is_dns_subdomain, _validate_replicaset,
                                       _deployment_update),
    ("discovery.k8s.io", "EndpointSlice"): _KindRules(
        name_is_dns_subdomain, _validate_endpointslice, _validate_endpointslice_update),
    ("networking.k8s.io", "Ingress"): _KindRules(name_is_dns_subdomain, _validate_ingress),
    ("networking.k8s.io", "IngressClass"): _KindRules(
        name_is_dns_subdomain, _validate_ingressclass, _validate_ingressclass_update),
    ("networking.k8s.io", "NetworkPolicy"): _KindRules(name_is_dns_subdomain,
                                                       _validate_networkpolicy),
    (RBAC_GROUP, "Role"): _KindRules(name_is_path_segment, _validate_role),
    (RBAC_GROUP, "ClusterRole"): _KindRules(name_is_path_segment, _validate_clusterrole),
    (RBAC_GROUP, "RoleBinding"): _KindRules(name_is_path_segment, _validate_rolebinding,
                                            _validate_binding_update),
    (RBAC_GROUP, "ClusterRoleBinding"): _KindRules(
        name_is_path_segment, _validate_clusterrolebinding, _validate_binding_update),
}

_NAMESPACED: dict[tuple[str, str], bool] = {(rt.group, rt.kind): rt.namespaced for rt in BUILTIN}


def _key(obj: Obj) -> tuple[str, str]:
    return str(obj.get("apiVersion") or "").rpartition("/")[0], str(obj.get("kind") or "")


def validate_create(obj: Obj, *, namespaced: bool | None = None) -> list[Cause]:
    """Causes that make `obj` invalid to create; empty when it is fine.

    `namespaced` is looked up in the resource table for built-in kinds; pass it for custom
    resources (whose names are DNS subdomains and whose content is not checked here).
    """
    key = _key(obj)
    rules = _RULES.get(key)
    if namespaced is None:
        namespaced = _NAMESPACED.get(key, True)
    errs = _Errs()
    _validate_meta(errs, obj, rules.name_fn if rules else name_is_dns_subdomain, namespaced)
    if rules:
        rules.create(errs, obj)
    return list(errs)


def validate_update(new: Obj, old: Obj, *, namespaced: bool | None = None) -> list[Cause]:
    """Causes that make replacing `old` by `new` invalid: the update rules (immutable
    fields first, as Kubernetes lists them) followed by `new`'s own validity."""
    key = _key(new)
    rules = _RULES.get(key)
    if namespaced is None:
        namespaced = _NAMESPACED.get(key, True)
    errs = _Errs()
    _validate_meta_update(errs, new, old)
    if rules:
        rules.update(errs, new, old)
    # Kubernetes validates the new object in full too; skip meta causes already reported.
    seen = {(c.field, c.message) for c in errs}
    for cause in validate_create(new, namespaced=namespaced):
        if (cause.field, cause.message) not in seen:
            errs.append(cause)
    return list(errs)
