"""Defaulting of built-in kinds, as a Kubernetes 1.32 API server fills in omitted fields.

Kubernetes spreads this over three places, and so do users' expectations of what
`kubectl get -o yaml` shows after an apply:

* scheme defaulting (`pkg/apis/*/v1/defaults.go`), run on every decode, create or update;
* the registry strategy's `PrepareForCreate` (a Pod's `status.phase`, a Namespace's
  `kubernetes` finalizer) — create only;
* admission plugins that every cluster runs (ServiceAccount, Priority,
  DefaultTolerationSeconds) — create only.

`apply_defaults(obj)` does all three for a create; `apply_defaults(obj, create=False)` does
only the first, for updates (e.g. a Namespace's finalizer may be removed over its life and
must not come back). Allocation of clusterIPs and nodePorts is the API server's job, not
this module's.

Everything here is pure: a deep copy goes in, a defaulted dict comes out (or, with
`apply_defaults(obj, copy=False)`, the caller's own dict is defaulted in place).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from podnet.util import jsonutil

Obj = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"

# Well-known PriorityClasses every cluster has (pkg/apis/scheduling).
SYSTEM_PRIORITY_CLASSES = {
    "system-cluster-critical": 2000000000,
    "system-node-critical": 2000001000,
}

# Volume sources of a v1.Volume; a volume naming none of them is an emptyDir.
_VOLUME_SOURCES = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image",
})


def apply_defaults(obj: Mapping[str, Any], *, create: bool = True, copy: bool = True) -> Obj:
    """A defaulted deep copy of `obj`; kinds without defaults come back unchanged.
    `copy=False`: default `obj` itself (a dict the caller owns and may change)."""
    out: Obj = jsonutil.deepcopy(dict(obj)) if copy or not isinstance(obj, dict) else obj
    api_version = str(out.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    fn = _DEFAULTERS.get((group, str(out.get("kind", ""))))
    if fn is not None:
        fn(out, create)
    return out


def pod_template_defaults(template_spec: Mapping[str, Any]) -> Obj:
    """Scheme defaults for a PodSpec inside a template (Deployment, ReplicaSet, Job, ...).

    Deliberately less than a Pod gets: no limits-to-requests copy, no enableServiceLinks,
    no admission-time fields (service account, priority, tolerations) — those are applied
    when the controller creates the Pod, exactly as in Kubernetes.
    """
    spec: Obj = jsonutil.deepcopy(dict(template_spec))
    _default_pod_spec(spec)
    return spec


# --- pods -----------------------------------------------------------------------------


def _setdefault(d: Obj, key: str, value: Any) -> None:
    """Set `key` when it is absent or null/empty-string (Go's zero value)."""
    if d.get(key) in (None, ""):
        d[key] = value


def _child(d: Obj, key: str) -> Obj:
    value = d.get(key)
    if not isinstance(value, dict):
        value = {}
        d[key] = value
    return value


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def image_tag(image: str) -> str:
    """The tag Kubernetes sees in an image reference: "latest" when neither tag nor digest."""
    name, at, _digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if not tag and not at:
        return "latest"
    return tag


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _setdefault(probe, "timeoutSeconds", 1)
    _setdefault(probe, "periodSeconds", 10)
    _setdefault(probe, "successThreshold", 1)
    _setdefault(probe, "failureThreshold", 3)
    _default_handler(probe)


def _default_handler(handler: Any) -> None:
    if isinstance(handler, dict) and isinstance(handler.get("httpGet"), dict):
        _setdefault(handler["httpGet"], "path", "/")
        _setdefault(handler["httpGet"], "scheme", "HTTP")


def _default_field_ref(holder: Any) -> None:
    if not isinstance(holder, dict):
        return
    if isinstance(holder.get("fieldRef"), dict):
        _setdefault(holder["fieldRef"], "apiVersion", "v1")
    if isinstance(holder.get("resourceFieldRef"), dict):
        # A zero resource.Quantity still serializes, so real objects show divisor "0".
        _setdefault(holder["resourceFieldRef"], "divisor", "0")


def _default_container(c: Obj, host_network: bool) -> None:
    if c.get("imagePullPolicy") in (None, ""):
        c["imagePullPolicy"] = (
            "Always" if image_tag(str(c.get("image") or "")) == "latest" else "IfNotPresent"
        )
    _setdefault(c, "terminationMessagePath", "/dev/termination-log")
    _setdefault(c, "terminationMessagePolicy", "File")
    if not isinstance(c.get("resources"), dict):
        c["resources"] = {}
    for port in _dicts(c.get("ports")):
        _setdefault(port, "protocol", "TCP")
        if host_network and not port.get("hostPort"):
            port["hostPort"] = port.get("containerPort")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))
    for env in _dicts(c.get("env")):
        _default_field_ref(env.get("valueFrom"))


def _default_volume(v: Obj) -> None:
    if not any(k in v for k in _VOLUME_SOURCES):
        v["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(v.get(key), dict):
            _setdefault(v[key], "defaultMode", 420)
    if isinstance(v.get("downwardAPI"), dict):
        for item in _dicts(v["downwardAPI"].get("items")):
            _default_field_ref(item)
    if isinstance(v.get("projected"), dict):
        for source in _dicts(v["projected"].get("sources")):
            if isinstance(source.get("downwardAPI"), dict):
                for item in _dicts(source["downwardAPI"].get("items")):
                    _default_field_ref(item)
    if isinstance(v.get("hostPath"), dict) and "type" not in v["hostPath"]:
        v["hostPath"]["type"] = ""


def _default_pod_spec(spec: Obj, *, host_ports: bool = False) -> None:
    """`SetDefaults_PodSpec` plus the per-container/volume/probe defaults under it."""
    _setdefault(spec, "dnsPolicy", "ClusterFirst")
    _setdefault(spec, "restartPolicy", "Always")
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    _setdefault(spec, "terminationGracePeriodSeconds", 30)
    _setdefault(spec, "schedulerName", "default-scheduler")
    host_network = host_ports and bool(spec.get("hostNetwork"))
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            _default_container(c, host_network)
    for v in _dicts(spec.get("volumes")):
        _default_volume(v)


def _default_requests_from_limits(spec: Obj) -> None:
    """`SetDefaults_Pod`: a container with limits but no request for a resource requests
    its limit — which is what makes `limits`-only pods Guaranteed."""
    for key in ("initContainers", "containers"):
        for c in _dicts(spec.get(key)):
            res = c.get("resources")
            if not isinstance(res, dict) or not isinstance(res.get("limits"), dict):
                continue
            requests = _child(res, "requests")
            for name, value in res["limits"].items():
                requests.setdefault(name, value)


def _default_tolerations(spec: Obj) -> None:
    """The DefaultTolerationSeconds admission plugin: ride out 5 minutes of node trouble."""
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        covered = any(
            isinstance(t, dict)
            and t.get("key", "") in (key, "")
            and t.get("effect", "") in ("NoExecute", "")
            for t in tolerations
        )
        if not covered:
            tolerations.append({
                "key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 300,
            })
    spec["tolerations"] = tolerations


def _pod(obj: Obj, create: bool) -> None:
    spec = _child(obj, "spec")
    _default_pod_spec(spec, host_ports=True)
    _default_requests_from_limits(spec)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    # v1 keeps the deprecated `serviceAccount` alias in step with serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if not create:
        if spec.get("serviceAccountName"):
            spec["serviceAccount"] = spec["serviceAccountName"]
        return
    _setdefault(spec, "serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    class_name = spec.get("priorityClassName") or ""
    if spec.get("priority") is None:
        if not class_name:
            spec["priority"] = 0
        elif class_name in SYSTEM_PRIORITY_CLASSES:
            spec["priority"] = SYSTEM_PRIORITY_CLASSES[class_name]
    _setdefault(spec, "preemptionPolicy", "PreemptLowerPriority")
    _default_tolerations(spec)
    status = _child(obj, "status")
    _setdefault(status, "phase", "Pending")
    _setdefault(status, "qosClass", pod_qos_class(spec))


_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[a-zA-Z]{0,2})$")
_SUFFIXES = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}


def parse_quantity(value: Any) -> Fraction | None:
    """A resource.Quantity as an exact number ("500m" -> 1/2); None if unparseable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Fraction(value)
    m = _QUANTITY_RE.match(str(value).strip())
    if not m:
        return None
    try:
        number = Fraction(m.group(1))
    except (ValueError, ZeroDivisionError):
        return None
    suffix = m.group(2)
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * Fraction(10) ** int(suffix[1:])
    scale = _SUFFIXES.get(suffix)
    return None if scale is None else number * scale


def pod_qos_class(spec: Mapping[str, Any]) -> str:
    """BestEffort, Burstable or Guaranteed, by the rules of `qos.GetPodQOS`.

    Only cpu and memory count. Guaranteed needs every container (init included) to set
    both limits, and the pod's summed requests to equal its summed limits.
    """
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    containers = _dicts(spec.get("containers")) + _dicts(spec.get("initContainers"))
    for c in containers:
        res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        assert isinstance(res, dict)
        for name, q in (res.get("requests") or {}).items():
            amount = parse_quantity(q)
            if name in ("cpu", "memory") and amount is not None and amount > 0:
                requests[name] = requests.get(name, Fraction(0)) + amount
        found: set[str] = set()
        for name, q in (res.get("limits") or {}).items():
            amount = parse_quantity(q)
            if name in ("cpu", "memory") and amount is not None and amount > 0:
                found.add(name)
                limits[name] = limits.get(name, Fraction(0)) + amount
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if (
        guaranteed
        and all(limits.get(n) == v for n, v in requests.items())
        and len(requests) == len(limits)
    ):
        return "Guaranteed"
    return "Burstable"


# --- workloads ------------------------------------------------------------------------


def _default_template(spec: Obj) -> None:
    template = _child(spec, "template")
    template["spec"] = pod_template_defaults(_child(template, "spec"))


def _deployment(obj: Obj, create: bool) -> None:
    spec = _child(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _child(spec, "strategy")
    _setdefault(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = "25%"
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def _replicaset(obj: Obj, create: bool) -> None:
    spec = _child(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


# --- services and networking ----------------------------------------------------------


def externally_accessible(spec: Mapping[str, Any]) -> bool:
    """`service.ExternallyAccessible`: NodePort, LoadBalancer, or ClusterIP with externalIPs."""
    t = spec.get("type") or "ClusterIP"
    return t in ("NodePort", "LoadBalancer") or (
        t == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def _service(obj: Obj, create: bool) -> None:
    spec = _child(obj, "spec")
    _setdefault(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        client_ip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _setdefault(spec, "type", "ClusterIP")
    svc_type = spec["type"]
    for port in _dicts(spec.get("ports")):
        _setdefault(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if externally_accessible(spec):
        _setdefault(spec, "externalTrafficPolicy", "Cluster")
    if spec.get("internalTrafficPolicy") is None and svc_type in (
        "ClusterIP", "NodePort", "LoadBalancer"
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if svc_type != "ExternalName":
        # Set by the registry's IP-family logic on a single-stack IPv4 cluster; a headless
        # Service without a selector asks for both families and gets what exists.
        headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
        if spec.get("ipFamilyPolicy") in (None, ""):
            spec["ipFamilyPolicy"] = (
                "RequireDualStack" if headless_selectorless else "SingleStack"
            )
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = ["IPv4"]
    status = _child(obj, "status")
    if not isinstance(status.get("loadBalancer"), dict):
        status["loadBalancer"] = {}


def _ports_protocol(ports: Any) -> None:
    for port in _dicts(ports):
        _setdefault(port, "protocol", "TCP")


def _endpoints(obj: Obj, create: bool) -> None:
    for subset in _dicts(obj.get("subsets")):
        _ports_protocol(subset.get("ports"))


def _endpointslice(obj: Obj, create: bool) -> None:
    for port in _dicts(obj.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        _setdefault(port, "protocol", "TCP")


def _networkpolicy(obj: Obj, create: bool) -> None:
    spec = _child(obj, "spec")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for rule in _dicts(spec.get("ingress")) + _dicts(spec.get("egress")):
        _ports_protocol(rule.get("ports"))


# --- namespaces, config, rbac, nodes --------------------------------------------------


def _namespace(obj: Obj, create: bool) -> None:
    name = (obj.get("metadata") or {}).get("name")
    if name:
        labels = _child(_child(obj, "metadata"), "labels")
        labels["kubernetes.io/metadata.name"] = name
    if not create:
        return
    spec = _child(obj, "spec")
    finalizers = spec.get("finalizers") if isinstance(spec.get("finalizers"), list) else []
    assert isinstance(finalizers, list)
    if "kubernetes" not in finalizers:
        finalizers.append("kubernetes")
    spec["finalizers"] = finalizers
    _child(obj, "status")["phase"] = "Active"


def _secret(obj: Obj, create: bool) -> None:
    _setdefault(obj, "type", "Opaque")


def _binding(obj: Obj, create: bool) -> None:
    role_ref = obj.get("roleRef")
    if isinstance(role_ref, dict):
        _setdefault(role_ref, "apiGroup", RBAC_GROUP)
    for subject in _dicts(obj.get("subjects")):
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def _node(obj: Obj, create: bool) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("allocatable") is None and status.get("capacity"):
        status["allocatable"] = jsonutil.deepcopy(status["capacity"])


def _none(obj: Obj, create: bool) -> None:
    """Kinds Kubernetes does not default (ConfigMap, ServiceAccount, Event, Ingress, ...)."""


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj, bool], None]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("", "Endpoints"): _endpoints,
    ("", "Node"): _node,
    ("", "ConfigMap"): _none,
    ("", "ServiceAccount"): _none,
    ("", "Event"): _none,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("discovery.k8s.io", "EndpointSlice"): _endpointslice,
    ("networking.k8s.io", "NetworkPolicy"): _networkpolicy,
    ("networking.k8s.io", "Ingress"): _none,
    ("networking.k8s.io", "IngressClass"): _none,
    (RBAC_GROUP, "RoleBinding"): _binding,
    (RBAC_GROUP, "ClusterRoleBinding"): _binding,
    (RBAC_GROUP, "Role"): _none,
    (RBAC_GROUP, "ClusterRole"): _none,
}


# --- Service updates ------------------------------------------------------------------


def _spec(svc: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = svc.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _type(svc: Mapping[str, Any]) -> str:
    return str(_spec(svc).get("type") or "ClusterIP")


def _needs_cluster_ip(svc: Mapping[str, Any]) -> bool:
    return _type(svc) != "ExternalName"


def _needs_node_port(svc: Mapping[str, Any]) -> bool:
    return _type(svc) in ("NodePort", "LoadBalancer")


def _needs_hc_node_port(svc: Mapping[str, Any]) -> bool:
    return _type(svc) == "LoadBalancer" and _spec(svc).get("externalTrafficPolicy") == "Local"


def _node_ports(svc: Mapping[str, Any]) -> set[int]:
    return {int(p["nodePort"]) for p in _dicts(_spec(svc).get("ports")) if p.get("nodePort")}


def _same(old: Mapping[str, Any], new: Mapping[str, Any], key: str, empty: Any = None) -> bool:
    return bool((_spec(old).get(key) or empty) == (_spec(new).get(key) or empty))


def drop_type_dependent_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> Obj:
    """On a Service update, clear fields the new `type` no longer uses — but only those the
    user left as they were (a changed value is theirs, and validation should see it).

    This is Kubernetes' `dropTypeDependentFields` (pkg/registry/core/service/strategy.go).
    It is what lets `kubectl apply` walk one Service through ClusterIP → NodePort →
    LoadBalancer → ExternalName: the three-way merge keeps the allocated clusterIP and
    nodePorts (they were never in the manifest), and this drops them when they stop
    applying. Returns a new dict; run it before validation.
    """
    out: Obj = jsonutil.deepcopy(dict(new))
    spec = _child(out, "spec")
    if _needs_cluster_ip(old) and not _needs_cluster_ip(out):
        if _same(old, out, "clusterIP", "") and _same(old, out, "clusterIPs", []):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if _same(old, out, "ipFamilies", []):
            spec.pop("ipFamilies", None)
        if _same(old, out, "ipFamilyPolicy", ""):
            spec.pop("ipFamilyPolicy", None)
    # Users may add, drop or edit ports as long as no net-new nodePort appears.
    if _needs_node_port(old) and not _needs_node_port(out) and (
        _node_ports(out) <= _node_ports(old)
    ):
        for port in _dicts(spec.get("ports")):
            port.pop("nodePort", None)
    if _needs_hc_node_port(old) and not _needs_hc_node_port(out) and _same(
        old, out, "healthCheckNodePort", 0
    ):
        spec.pop("healthCheckNodePort", None)
    if _type(old) == "LoadBalancer" and _type(out) != "LoadBalancer":
        old_alloc = _spec(old).get("allocateLoadBalancerNodePorts")
        new_alloc = spec.get("allocateLoadBalancerNodePorts")
        if old_alloc is not None and new_alloc is not None and old_alloc == new_alloc:
            spec.pop("allocateLoadBalancerNodePorts", None)
        if _spec(old).get("loadBalancerClass") == spec.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if (
        _needs_node_port(old)
        and not _needs_node_port(out)
        and _same(old, out, "externalTrafficPolicy", "")
    ):
        spec.pop("externalTrafficPolicy", None)
    # Load-balancer status goes as soon as the type does; deprovisioning is not the
    # user's concern.
    if _type(out) != "LoadBalancer" and isinstance(out.get("status"), dict):
        out["status"]["loadBalancer"] = {}
    return out


def patch_allocated_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> Obj:
    """Carry allocated values the client omitted into an updated Service.

    Kubernetes does this in the Service REST storage (`patchAllocatedValues`) so that a
    `kubectl replace` of the original manifest, which has no clusterIP or nodePorts, is not
    an attempt to change them. NodePorts are matched by port name.
    """
    out: Obj = jsonutil.deepcopy(dict(new))
    spec = _child(out, "spec")
    old_spec = _spec(old)
    if _needs_cluster_ip(old) and _needs_cluster_ip(out):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if _needs_node_port(old) and _needs_node_port(out):
        used = _node_ports(old) & _node_ports(out)
        by_name = {str(p.get("name") or ""): p.get("nodePort")
                   for p in _dicts(old_spec.get("ports"))}
        for port in _dicts(spec.get("ports")):
            if not port.get("nodePort"):
                value = by_name.get(str(port.get("name") or ""))
                if value and value not in used:
                    port["nodePort"] = value
    if (
        _needs_hc_node_port(old)
        and _needs_hc_node_port(out)
        and not spec.get("healthCheckNodePort")
        and old_spec.get("healthCheckNodePort")
    ):
        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]
    return out
