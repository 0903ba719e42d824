"""The resource table: every kind podnet serves, with the facts discovery needs.

One row per (group, version, resource). Custom resources from CRDs are added at run
time with `Registry.add`; the built-in table below is never mutated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True, slots=True)
class Subresource:
    name: str  # "status", "log", "exec", ...
    kind: str  # responseKind
    verbs: tuple[str, ...]
    group: str = ""  # responseKind group when it differs from the parent (e.g. autoscaling Scale)
    version: str = ""


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    # Built-in kinds have a JSON schema (strict validation, strategic merge patch);
    # custom resources are unstructured: unknown fields kept, merge patch only.
    structured: bool = True
    # Extra versions this resource is also served at (first version is preferred).
    singular: str = ""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def qualified(self) -> str:
        """`pods` or `deployments.apps`: the name used in error messages and RBAC."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        for s in self.subresources:
            if s.name == name:
                return s
        return None

    def key_prefix(self, namespace: str | None = None) -> str:
        """Store key prefix: `/registry/<group>/<plural>/[<ns>/]`.

        Keys are per resource, not per version, so every served version of one
        resource shares one set of objects (as in Kubernetes).
        """
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return base + namespace + "/"
        return base

    def key(self, namespace: str | None, name: str) -> str:
        return self.key_prefix(namespace) + name


def _status(kind: str) -> Subresource:
    return Subresource("status", kind, ("get", "patch", "update"))


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    *,
    verbs: tuple[str, ...] = ALL_VERBS,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    subs: tuple[Subresource, ...] = (),
    structured: bool = True,
) -> ResourceType:
    return ResourceType(
        group, version, kind, plural, namespaced, verbs, short, cats, subs, structured
    )


_ALL = ("all",)

BUILTIN: tuple[ResourceType, ...] = (
    # core/v1
    _rt("", "v1", "Namespace", "namespaces", False,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        short=("ns",),
        subs=(_status("Namespace"), Subresource("finalize", "Namespace", ("update",)))),
    _rt("", "v1", "Pod", "pods", short=("po",), cats=_ALL, subs=(
        _status("Pod"),
        Subresource("log", "Pod", ("get",)),
        Subresource("exec", "PodExecOptions", ("create", "get")),
        Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
        Subresource("attach", "PodAttachOptions", ("create", "get")),
        Subresource("binding", "Binding", ("create",)),
        Subresource("eviction", "Eviction", ("create",), group="policy", version="v1"),
        Subresource("ephemeralcontainers", "Pod", ("get", "patch", "update")),
    )),
    _rt("", "v1", "Binding", "bindings", verbs=CREATE_ONLY),
    _rt("", "v1", "Service", "services", short=("svc",), cats=_ALL,
        subs=(_status("Service"), Subresource("proxy", "ServiceProxyOptions", (
            "create", "delete", "get", "patch", "update")))),
    _rt("", "v1", "Endpoints", "endpoints", short=("ep",)),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", short=("sa",),
        subs=(Subresource("token", "TokenRequest", ("create",), group="authentication.k8s.io",
                          version="v1"),)),
    _rt("", "v1", "Secret", "secrets"),
    _rt("", "v1", "ConfigMap", "configmaps", short=("cm",)),
    _rt("", "v1", "Node", "nodes", False, short=("no",),
        subs=(_status("Node"), Subresource("proxy", "NodeProxyOptions", (
            "create", "delete", "get", "patch", "update")))),
    _rt("", "v1", "Event", "events", short=("ev",)),
    # apps/v1
    _rt("apps", "v1", "Deployment", "deployments", short=("deploy",), cats=_ALL, subs=(
        _status("Deployment"),
        Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling",
                    version="v1"),
    )),
    _rt("apps", "v1", "ReplicaSet", "replicasets", short=("rs",), cats=_ALL, subs=(
        _status("ReplicaSet"),
        Subresource("scale", "Scale", ("get", "patch", "update"), group="autoscaling",
                    version="v1"),
    )),
    # discovery.k8s.io/v1
    _rt("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # networking.k8s.io/v1
    _rt("networking.k8s.io", "v1", "Ingress", "ingresses", short=("ing",),
        subs=(_status("Ingress"),)),
    _rt("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=("netpol",)),
    # rbac.authorization.k8s.io/v1
    _rt("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _rt("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    # authorization.k8s.io/v1 (create-only reviews)
    _rt("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
        False, verbs=CREATE_ONLY),
    _rt("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
        False, verbs=CREATE_ONLY),
    _rt("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False,
        verbs=CREATE_ONLY),
    _rt("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
        verbs=CREATE_ONLY),
    # authentication.k8s.io/v1
    _rt("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=CREATE_ONLY),
    _rt("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
        verbs=CREATE_ONLY),
    # apiextensions.k8s.io/v1
    _rt("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
        False, short=("crd", "crds"), subs=(_status("CustomResourceDefinition"),)),
    # gateway.networking.k8s.io/v1 — built in (no CRD install needed), unstructured.
    _rt("gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", False,
        short=("gc",), subs=(_status("GatewayClass"),), structured=False),
    _rt("gateway.networking.k8s.io", "v1", "Gateway", "gateways", short=("gtw",),
        subs=(_status("Gateway"),), structured=False),
    _rt("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes",
        subs=(_status("HTTPRoute"),), structured=False),
    _rt("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants",
        short=("refgrant",), structured=False),
    _rt("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes",
        subs=(_status("GRPCRoute"),), structured=False),
    # networking.istio.io — v1 preferred, v1beta1 and v1alpha3 served too.
    *(
        _rt("networking.istio.io", v, k, p, short=s, cats=("istio-io", "networking-istio-io"),
            subs=(_status(k),), structured=False)
        for v in ("v1", "v1beta1", "v1alpha3")
        for k, p, s in (
            ("VirtualService", "virtualservices", ("vs",)),
            ("DestinationRule", "destinationrules", ("dr",)),
            ("Gateway", "gateways", ("gw",)),
        )
    ),
    # configuration.konghq.com/v1
    _rt("configuration.konghq.com", "v1", "KongIngress", "kongingresses", short=("ki",),
        cats=("kong-ingress-controller",), structured=False),
    _rt("configuration.konghq.com", "v1", "KongPlugin", "kongplugins", short=("kp",),
        cats=("kong-ingress-controller",), structured=False),
    _rt("configuration.konghq.com", "v1", "KongClusterPlugin", "kongclusterplugins", False,
        short=("kcp",), cats=("kong-ingress-controller",), structured=False),
    _rt("configuration.konghq.com", "v1", "KongConsumer", "kongconsumers", short=("kc",),
        cats=("kong-ingress-controller",), subs=(_status("KongConsumer"),), structured=False),
)

# ReferenceGrant is also served at v1 in Gateway API v1.3+; keep v1beta1 as the one most
# manifests use and add v1 as a second version of the same resource.
BUILTIN = (
    *BUILTIN,
    _rt("gateway.networking.k8s.io", "v1beta1", "HTTPRoute", "httproutes",
        subs=(_status("HTTPRoute"),), structured=False),
    _rt("gateway.networking.k8s.io", "v1beta1", "Gateway", "gateways", short=("gtw",),
        subs=(_status("Gateway"),), structured=False),
    _rt("gateway.networking.k8s.io", "v1beta1", "GatewayClass", "gatewayclasses", False,
        short=("gc",), subs=(_status("GatewayClass"),), structured=False),
)

# Preferred version per group, in discovery order (the first version listed is preferred).
GROUP_ORDER = (
    "",
    "apps",
    "discovery.k8s.io",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "authorization.k8s.io",
    "authentication.k8s.io",
    "apiextensions.k8s.io",
    "gateway.networking.k8s.io",
    "networking.istio.io",
    "configuration.konghq.com",
)

# Kinds the API server itself creates and never stores (reviews), answered on create.
VIRTUAL_KINDS = frozenset(
    {
        "SelfSubjectAccessReview",
        "SelfSubjectRulesReview",
        "SubjectAccessReview",
        "LocalSubjectAccessReview",
        "TokenReview",
        "SelfSubjectReview",
        "Binding",
    }
)


@dataclass
class Registry:
    """Lookup over built-in and custom resource types.

    Mutable only through `add`/`remove` (CRDs); readers get frozen `ResourceType`s.
    """

    _by_gvr: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _custom: set[tuple[str, str, str]] = field(default_factory=set)

    @classmethod
    def builtin(cls) -> Registry:
        reg = cls()
        for rt in BUILTIN:
            reg._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        return reg

    def add(self, rt: ResourceType) -> None:
        key = (rt.group, rt.version, rt.plural)
        self._by_gvr[key] = rt
        self._custom.add(key)

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._custom if k[0] == group and k[2] == plural]:
            self._custom.discard(key)
            del self._by_gvr[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        for rt in self._by_gvr.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def by_api_version_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self.by_kind(group, version, kind)

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        return [rt for rt in self._by_gvr.values() if rt.group == group and rt.plural == plural]

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._by_gvr.values())

    def groups(self) -> list[tuple[str, list[str]]]:
        """[(group, [versions, preferred first])] in discovery order."""
        seen: dict[str, list[str]] = {}
        for rt in self._by_gvr.values():
            versions = seen.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        result = []
        for group in sorted(seen, key=lambda g: (order.get(g, len(order)), g)):
            result.append((group, _sort_versions(seen[group])))
        return result

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._by_gvr.values() if rt.group == group and rt.version == version]

    def is_custom(self, rt: ResourceType) -> bool:
        return (rt.group, rt.version, rt.plural) in self._custom


def _sort_versions(versions: Iterable[str]) -> list[str]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first."""
    import re

    def key(v: str) -> tuple[int, int, int]:
        m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", v)
        if not m:
            return (3, 0, 0)
        major = int(m.group(1))
        stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
        minor = int(m.group(3) or 0)
        return (stage, -major, -minor)

    return sorted(versions, key=key)
