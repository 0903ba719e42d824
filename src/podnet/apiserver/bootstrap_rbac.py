"""The ClusterRoles and ClusterRoleBindings kube-apiserver 1.32 creates at start. Data.

Taken from Kubernetes' bootstrap policy (`plugin/pkg/auth/authorizer/rbac/
bootstrappolicy`), reduced to the user-facing and node/proxy/DNS roles podnet has a use
for; the per-controller `system:controller:*` roles are left out because podnet's
controllers run inside the API server's trust boundary. Rules are copied rule by rule,
so `kubectl auth can-i` answers what it would on a real cluster: `view` reads the common
namespaced resources but not secrets, `edit` adds writes (secrets included) and
`admin` adds Roles, RoleBindings and LocalSubjectAccessReviews.

`admin`, `edit` and `view` are aggregated roles; `default_objects` returns them with
their rules already filled in, as they look once the aggregation controller has run.
"""

from __future__ import annotations

import copy
from typing import Any

from podnet.api.rbac import aggregate_objects

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
AGGREGATE_TO_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
AGGREGATE_TO_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
AGGREGATE_TO_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"

READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
READ_WRITE = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
EVENT_WRITE = ("create", "patch", "update")


def _r(
    verbs: tuple[str, ...] | str,
    groups: tuple[str, ...] | str,
    resources: tuple[str, ...] | str,
    names: tuple[str, ...] = (),
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "apiGroups": _as_list(groups),
        "resources": _as_list(resources),
        "verbs": _as_list(verbs),
    }
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _urls(verbs: tuple[str, ...] | str, *urls: str) -> dict[str, Any]:
    return {"nonResourceURLs": list(urls), "verbs": _as_list(verbs)}


def _as_list(v: tuple[str, ...] | str) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


# name -> (extra labels, aggregation selector label or None, rules)
_CLUSTER_ROLES: list[tuple[str, dict[str, str], str | None, list[dict[str, Any]]]] = [
    (
        "cluster-admin",
        {},
        None,
        [_r("*", "*", "*"), _urls("*", "*")],
    ),
    ("admin", {}, AGGREGATE_TO_ADMIN, []),
    ("edit", {AGGREGATE_TO_ADMIN: "true"}, AGGREGATE_TO_EDIT, []),
    ("view", {AGGREGATE_TO_EDIT: "true"}, AGGREGATE_TO_VIEW, []),
    (
        "system:aggregate-to-admin",
        {AGGREGATE_TO_ADMIN: "true"},
        None,
        [
            _r("create", "authorization.k8s.io", "localsubjectaccessreviews"),
            _r(READ_WRITE, RBAC_GROUP, ("rolebindings", "roles")),
        ],
    ),
    (
        "system:aggregate-to-edit",
        {AGGREGATE_TO_EDIT: "true"},
        None,
        [
            _r(
                READ,
                "",
                (
                    "pods/attach",
                    "pods/exec",
                    "pods/portforward",
                    "pods/proxy",
                    "secrets",
                    "services/proxy",
                ),
            ),
            _r("impersonate", "", "serviceaccounts"),
            _r(
                WRITE,
                "",
                ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"),
            ),
            _r("create", "", "pods/eviction"),
            _r(
                WRITE,
                "",
                (
                    "configmaps",
                    "events",
                    "persistentvolumeclaims",
                    "replicationcontrollers",
                    "replicationcontrollers/scale",
                    "secrets",
                    "serviceaccounts",
                    "services",
                    "services/proxy",
                ),
            ),
            _r("create", "", "serviceaccounts/token"),
            _r(
                WRITE,
                "apps",
                (
                    "daemonsets",
                    "deployments",
                    "deployments/rollback",
                    "deployments/scale",
                    "replicasets",
                    "replicasets/scale",
                    "statefulsets",
                    "statefulsets/scale",
                ),
            ),
            _r(WRITE, "autoscaling", "horizontalpodautoscalers"),
            _r(WRITE, "batch", ("cronjobs", "jobs")),
            _r(
                WRITE,
                "extensions",
                (
                    "daemonsets",
                    "deployments",
                    "deployments/rollback",
                    "deployments/scale",
                    "ingresses",
                    "networkpolicies",
                    "replicasets",
                    "replicasets/scale",
                    "replicationcontrollers/scale",
                ),
            ),
            _r(WRITE, "policy", "poddisruptionbudgets"),
            _r(WRITE, "networking.k8s.io", ("ingresses", "networkpolicies")),
            _r(READ_WRITE, "coordination.k8s.io", "leases"),
        ],
    ),
    (
        "system:aggregate-to-view",
        {AGGREGATE_TO_VIEW: "true"},
        None,
        [
            _r(
                READ,
                "",
                (
                    "configmaps",
                    "endpoints",
                    "persistentvolumeclaims",
                    "persistentvolumeclaims/status",
                    "pods",
                    "replicationcontrollers",
                    "replicationcontrollers/scale",
                    "serviceaccounts",
                    "services",
                    "services/status",
                ),
            ),
            _r(
                READ,
                "",
                (
                    "bindings",
                    "events",
                    "limitranges",
                    "namespaces/status",
                    "pods/log",
                    "pods/status",
                    "replicationcontrollers/status",
                    "resourcequotas",
                    "resourcequotas/status",
                ),
            ),
            _r(READ, "", "namespaces"),
            _r(READ, "discovery.k8s.io", "endpointslices"),
            _r(
                READ,
                "apps",
                (
                    "controllerrevisions",
                    "daemonsets",
                    "daemonsets/status",
                    "deployments",
                    "deployments/scale",
                    "deployments/status",
                    "replicasets",
                    "replicasets/scale",
                    "replicasets/status",
                    "statefulsets",
                    "statefulsets/scale",
                    "statefulsets/status",
                ),
            ),
            _r(
                READ,
                "autoscaling",
                ("horizontalpodautoscalers", "horizontalpodautoscalers/status"),
            ),
            _r(READ, "batch", ("cronjobs", "cronjobs/status", "jobs", "jobs/status")),
            _r(
                READ,
                "extensions",
                (
                    "daemonsets",
                    "daemonsets/status",
                    "deployments",
                    "deployments/scale",
                    "deployments/status",
                    "ingresses",
                    "ingresses/status",
                    "networkpolicies",
                    "replicasets",
                    "replicasets/scale",
                    "replicasets/status",
                    "replicationcontrollers/scale",
                ),
            ),
            _r(READ, "policy", ("poddisruptionbudgets", "poddisruptionbudgets/status")),
            _r(
                READ,
                "networking.k8s.io",
                ("ingresses", "ingresses/status", "networkpolicies"),
            ),
        ],
    ),
    (
        "system:auth-delegator",
        {},
        None,
        [
            _r("create", "authentication.k8s.io", "tokenreviews"),
            _r("create", "authorization.k8s.io", "subjectaccessreviews"),
        ],
    ),
    (
        "system:basic-user",
        {},
        None,
        [
            _r(
                "create",
                "authorization.k8s.io",
                ("selfsubjectaccessreviews", "selfsubjectrulesreviews"),
            ),
            _r("create", "authentication.k8s.io", "selfsubjectreviews"),
        ],
    ),
    (
        "system:discovery",
        {},
        None,
        [
            _urls(
                "get",
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            )
        ],
    ),
    (
        "system:public-info-viewer",
        {},
        None,
        [_urls("get", "/healthz", "/livez", "/readyz", "/version", "/version/")],
    ),
    (
        "system:monitoring",
        {},
        None,
        [
            _urls(
                "get",
                "/healthz",
                "/healthz/*",
                "/livez",
                "/livez/*",
                "/metrics",
                "/metrics/slis",
                "/readyz",
                "/readyz/*",
            )
        ],
    ),
    (
        "system:service-account-issuer-discovery",
        {},
        None,
        [_urls("get", "/.well-known/openid-configuration", "/openid/v1/jwks")],
    ),
    (
        "system:node-proxier",
        {},
        None,
        [
            _r(("list", "watch"), "", ("endpoints", "services")),
            _r(READ, "", "nodes"),
            _r(EVENT_WRITE, ("", "events.k8s.io"), "events"),
            _r(("list", "watch"), "discovery.k8s.io", "endpointslices"),
        ],
    ),
    (
        "system:kube-dns",
        {},
        None,
        [_r(("list", "watch"), "", ("endpoints", "services"))],
    ),
    (
        "system:node",
        {},
        None,
        [
            _r("create", "authentication.k8s.io", "tokenreviews"),
            _r(
                "create",
                "authorization.k8s.io",
                ("localsubjectaccessreviews", "subjectaccessreviews"),
            ),
            _r(READ, "", "services"),
            _r(("create", "get", "list", "watch"), "", "nodes"),
            _r(("patch", "update"), "", "nodes/status"),
            _r(("patch", "update"), "", "nodes"),
            _r(EVENT_WRITE, "", "events"),
            _r(READ, "", "pods"),
            _r(("create", "delete"), "", "pods"),
            _r(("patch", "update"), "", "pods/status"),
            _r("create", "", "pods/eviction"),
            _r(READ, "", ("configmaps", "secrets")),
            _r("get", "", ("persistentvolumeclaims", "persistentvolumes")),
            _r("get", "", "endpoints"),
            _r(
                ("create", "get", "list", "watch"),
                "certificates.k8s.io",
                "certificatesigningrequests",
            ),
            _r(("create", "delete", "get", "patch", "update"), "coordination.k8s.io", "leases"),
            _r("get", "storage.k8s.io", "volumeattachments"),
            _r("create", "", "serviceaccounts/token"),
            _r(("get", "patch", "update"), "", "persistentvolumeclaims/status"),
            _r(READ, "storage.k8s.io", "csidrivers"),
            _r(("create", "delete", "get", "patch", "update"), "storage.k8s.io", "csinodes"),
            _r(READ, "node.k8s.io", "runtimeclasses"),
        ],
    ),
    (
        "system:node-bootstrapper",
        {},
        None,
        [
            _r(
                ("create", "get", "list", "watch"),
                "certificates.k8s.io",
                "certificatesigningrequests",
            )
        ],
    ),
    (
        "system:node-problem-detector",
        {},
        None,
        [
            _r("get", "", "nodes"),
            _r("patch", "", "nodes/status"),
            _r(EVENT_WRITE, ("", "events.k8s.io"), "events"),
        ],
    ),
    (
        "system:kubelet-api-admin",
        {},
        None,
        [
            _r(READ, "", "nodes"),
            _r("proxy", "", "nodes"),
            _r("*", "", ("nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats")),
        ],
    ),
    (
        "system:kube-aggregator",
        {},
        None,
        [_r(READ, "", ("endpoints", "services"))],
    ),
    (
        "system:kube-controller-manager",
        {},
        None,
        [
            _r(EVENT_WRITE, ("", "events.k8s.io"), "events"),
            _r("create", "coordination.k8s.io", "leases"),
            _r(("get", "update"), "coordination.k8s.io", "leases", ("kube-controller-manager",)),
            _r("create", "", ("secrets", "serviceaccounts")),
            _r("delete", "", "secrets"),
            _r("get", "", ("configmaps", "namespaces", "secrets", "serviceaccounts")),
            _r("update", "", ("secrets", "serviceaccounts")),
            _r("create", "authentication.k8s.io", "tokenreviews"),
            _r("create", "authorization.k8s.io", "subjectaccessreviews"),
            _r(("list", "watch"), "*", "*"),
            _r("create", "", "serviceaccounts/token"),
        ],
    ),
    (
        "system:kube-scheduler",
        {},
        None,
        [
            _r(EVENT_WRITE, ("", "events.k8s.io"), "events"),
            _r("create", "coordination.k8s.io", "leases"),
            _r(("get", "update"), "coordination.k8s.io", "leases", ("kube-scheduler",)),
            _r(READ, "", "nodes"),
            _r(("delete", "get", "list", "watch"), "", "pods"),
            _r("create", "", ("bindings", "pods/binding")),
            _r(("patch", "update"), "", "pods/status"),
            _r(READ, "", ("replicationcontrollers", "services")),
            _r(READ, ("apps", "extensions"), "replicasets"),
            _r(READ, "apps", "statefulsets"),
            _r(READ, "policy", "poddisruptionbudgets"),
            _r(READ, "", ("persistentvolumeclaims", "persistentvolumes")),
            _r("create", "authentication.k8s.io", "tokenreviews"),
            _r("create", "authorization.k8s.io", "subjectaccessreviews"),
            _r(READ, "storage.k8s.io", "csinodes"),
            _r(READ, "", "namespaces"),
            _r(READ, "storage.k8s.io", "csidrivers"),
            _r(READ, "storage.k8s.io", "csistoragecapacities"),
        ],
    ),
    (
        "system:volume-scheduler",
        {},
        None,
        [
            _r(("get", "list", "patch", "update", "watch"), "", "persistentvolumes"),
            _r(READ, "storage.k8s.io", "storageclasses"),
            _r(("get", "list", "patch", "update", "watch"), "", "persistentvolumeclaims"),
        ],
    ),
    (
        "system:persistent-volume-provisioner",
        {},
        None,
        [
            _r(("create", "delete", "get", "list", "watch"), "", "persistentvolumes"),
            _r(("get", "list", "update", "watch"), "", "persistentvolumeclaims"),
            _r(READ, "storage.k8s.io", "storageclasses"),
            _r("watch", "", "events"),
            _r(EVENT_WRITE, ("", "events.k8s.io"), "events"),
        ],
    ),
    (
        "system:heapster",
        {},
        None,
        [
            _r(READ, "", ("events", "namespaces", "nodes", "pods")),
            _r(READ, "extensions", "deployments"),
        ],
    ),
    (
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        {},
        None,
        [_r("create", "certificates.k8s.io", "certificatesigningrequests/nodeclient")],
    ),
    (
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        {},
        None,
        [_r("create", "certificates.k8s.io", "certificatesigningrequests/selfnodeclient")],
    ),
    *[
        (
            f"system:certificates.k8s.io:{role}",
            {},
            None,
            [_r("approve", "certificates.k8s.io", "signers", (f"kubernetes.io/{signer}",))],
        )
        for role, signer in (
            ("kube-apiserver-client-approver", "kube-apiserver-client"),
            ("kube-apiserver-client-kubelet-approver", "kube-apiserver-client-kubelet"),
            ("kubelet-serving-approver", "kubelet-serving"),
            ("legacy-unknown-approver", "legacy-unknown"),
        )
    ],
]

# binding name (= ClusterRole name) -> subjects as (kind, name[, namespace])
_CLUSTER_ROLE_BINDINGS: list[tuple[str, list[tuple[str, ...]]]] = [
    ("cluster-admin", [("Group", "system:masters")]),
    ("system:basic-user", [("Group", "system:authenticated")]),
    ("system:discovery", [("Group", "system:authenticated")]),
    (
        "system:public-info-viewer",
        [("Group", "system:authenticated"), ("Group", "system:unauthenticated")],
    ),
    ("system:service-account-issuer-discovery", [("Group", "system:serviceaccounts")]),
    ("system:monitoring", [("Group", "system:monitoring")]),
    ("system:kube-controller-manager", [("User", "system:kube-controller-manager")]),
    ("system:kube-scheduler", [("User", "system:kube-scheduler")]),
    ("system:volume-scheduler", [("User", "system:kube-scheduler")]),
    ("system:kube-dns", [("ServiceAccount", "kube-dns", "kube-system")]),
    ("system:node-proxier", [("User", "system:kube-proxy")]),
    # Kubernetes keeps this binding but with no subjects (since 1.8 nodes are authorized
    # by the Node authorizer); whoever runs a node agent binds it explicitly.
    ("system:node", []),
]


def _metadata(name: str, extra_labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {**BOOTSTRAP_LABELS, **extra_labels},
        "annotations": dict(AUTOUPDATE_ANNOTATIONS),
    }


def _subject(spec: tuple[str, ...]) -> dict[str, Any]:
    kind, name = spec[0], spec[1]
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": spec[2]}
    return {"apiGroup": RBAC_GROUP, "kind": kind, "name": name}


def default_cluster_roles() -> list[dict[str, Any]]:
    """The bootstrap ClusterRoles, aggregated ones with their rules filled in."""
    roles: list[dict[str, Any]] = []
    for name, labels, aggregate_label, rules in _CLUSTER_ROLES:
        obj: dict[str, Any] = {
            "apiVersion": RBAC_API_VERSION,
            "kind": "ClusterRole",
            "metadata": _metadata(name, labels),
            "rules": copy.deepcopy(rules),
        }
        if aggregate_label is not None:
            obj["aggregationRule"] = {
                "clusterRoleSelectors": [{"matchLabels": {aggregate_label: "true"}}]
            }
        roles.append(obj)
    return aggregate_objects(roles)


def default_cluster_role_bindings() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, subjects in _CLUSTER_ROLE_BINDINGS:
        obj: dict[str, Any] = {
            "apiVersion": RBAC_API_VERSION,
            "kind": "ClusterRoleBinding",
            "metadata": _metadata(name, {}),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        }
        if subjects:  # `subjects` is omitempty in the API
            obj["subjects"] = [_subject(s) for s in subjects]
        out.append(obj)
    return out


def default_objects() -> list[dict[str, Any]]:
    """Every bootstrap RBAC object, ClusterRoles first, as fresh dicts the caller may
    mutate (e.g. to add uid and resourceVersion when storing)."""
    return default_cluster_roles() + default_cluster_role_bindings()
