"""The bootstrap RBAC objects answer `kubectl auth can-i` as a fresh 1.32 cluster does."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from podnet.api.rbac import Attributes, Policy, authorize
from podnet.apiserver.bootstrap_rbac import default_objects


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


POLICY = Policy.from_objects(default_objects())
AUTHENTICATED = ("system:authenticated",)


def bound_to(role: str) -> Policy:
    """The defaults plus a RoleBinding of `role` to user "u" in namespace "team"."""
    binding = {
        "kind": "RoleBinding",
        "metadata": {"namespace": "team", "name": "u"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    return Policy.from_objects([*default_objects(), binding])


def can(policy: Policy, verb: str, resource: str, group: str = "", sub: str = "") -> bool:
    attrs = Attributes(User("u", AUTHENTICATED), verb, "team", group, resource, sub)
    return authorize(attrs, policy).allowed


def test_every_object_is_labelled_and_autoupdated() -> None:
    objects = default_objects()
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for required in [
        "cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
        "system:public-info-viewer", "system:service-account-issuer-discovery",
        "system:node-proxier", "system:kube-dns", "system:node", "system:auth-delegator",
        "system:monitoring", "system:kube-controller-manager",
    ]:  # fmt: skip
        assert ("ClusterRole", required) in names
    for o in objects:
        assert o["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert o["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert o["metadata"]["annotations"] == {
            "rbac.authorization.kubernetes.io/autoupdate": "true"
        }


def test_objects_are_fresh_copies() -> None:
    a = default_objects()
    a[0]["rules"].clear()
    assert default_objects()[0]["rules"]


def test_aggregated_roles_carry_labels_and_rules() -> None:
    by_name = {o["metadata"]["name"]: o for o in default_objects() if o["kind"] == "ClusterRole"}
    assert (
        by_name["view"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"]
        == "true"
    )
    assert (
        by_name["edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"]
        == "true"
    )
    assert by_name["admin"]["aggregationRule"] == {
        "clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}
        ]
    }
    assert len(by_name["view"]["rules"]) < len(by_name["edit"]["rules"])
    assert len(by_name["edit"]["rules"]) < len(by_name["admin"]["rules"])


def test_bindings() -> None:
    crbs = {
        o["metadata"]["name"]: o for o in default_objects() if o["kind"] == "ClusterRoleBinding"
    }
    subjects = {n: [(s["kind"], s["name"]) for s in o.get("subjects", [])] for n, o in crbs.items()}
    assert subjects["cluster-admin"] == [("Group", "system:masters")]
    assert subjects["system:discovery"] == [("Group", "system:authenticated")]
    assert subjects["system:basic-user"] == [("Group", "system:authenticated")]
    assert subjects["system:public-info-viewer"] == [
        ("Group", "system:authenticated"),
        ("Group", "system:unauthenticated"),
    ]
    assert subjects["system:service-account-issuer-discovery"] == [
        ("Group", "system:serviceaccounts")
    ]
    assert crbs["system:kube-dns"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "kube-dns", "namespace": "kube-system"}
    ]


# role, verb, resource, group, subresource, expected
MATRIX = [
    ("view", "list", "pods", "", "", True),
    ("view", "get", "pods", "", "log", True),
    ("view", "watch", "services", "", "", True),
    ("view", "list", "endpointslices", "discovery.k8s.io", "", True),
    ("view", "get", "deployments", "apps", "", True),
    ("view", "list", "ingresses", "networking.k8s.io", "", True),
    ("view", "get", "secrets", "", "", False),
    ("view", "create", "pods", "", "", False),
    ("view", "create", "pods", "", "exec", False),
    ("view", "list", "roles", "rbac.authorization.k8s.io", "", False),
    ("edit", "get", "secrets", "", "", True),
    ("edit", "create", "secrets", "", "", True),
    ("edit", "patch", "deployments", "apps", "", True),
    ("edit", "update", "deployments", "apps", "scale", True),
    ("edit", "create", "pods", "", "exec", True),
    ("edit", "create", "pods", "", "portforward", True),
    ("edit", "delete", "services", "", "", True),
    ("edit", "create", "networkpolicies", "networking.k8s.io", "", True),
    ("edit", "create", "serviceaccounts", "", "token", True),
    ("edit", "create", "rolebindings", "rbac.authorization.k8s.io", "", False),
    ("edit", "create", "localsubjectaccessreviews", "authorization.k8s.io", "", False),
    ("admin", "create", "rolebindings", "rbac.authorization.k8s.io", "", True),
    ("admin", "delete", "roles", "rbac.authorization.k8s.io", "", True),
    ("admin", "create", "localsubjectaccessreviews", "authorization.k8s.io", "", True),
    ("admin", "list", "pods", "", "", True),
    ("admin", "update", "resourcequotas", "", "", False),
    ("cluster-admin", "escalate", "clusterroles", "rbac.authorization.k8s.io", "", True),
]


@pytest.mark.parametrize(("role", "verb", "resource", "group", "sub", "expected"), MATRIX)
def test_default_role_matrix(
    role: str, verb: str, resource: str, group: str, sub: str, expected: bool
) -> None:
    assert can(bound_to(role), verb, resource, group, sub) is expected


def test_fresh_cluster_defaults_for_everyone() -> None:
    anon = User("system:anonymous", ("system:unauthenticated",))
    someone = User("someone", AUTHENTICATED)

    def get(user: User, path: str) -> bool:
        return authorize(Attributes(user, "get", path=path, resource_request=False), POLICY).allowed

    assert get(anon, "/version") and get(anon, "/healthz") and get(anon, "/readyz")
    assert not get(anon, "/api") and not get(anon, "/metrics")
    assert get(someone, "/api") and get(someone, "/apis/apps/v1") and get(someone, "/openapi/v3")
    assert not get(someone, "/metrics")
    assert not authorize(Attributes(someone, "list", "default", "", "pods"), POLICY).allowed
    proxy = User("system:kube-proxy", AUTHENTICATED)
    assert authorize(Attributes(proxy, "watch", "", "", "services"), POLICY).allowed
    assert not authorize(Attributes(proxy, "create", "", "", "services"), POLICY).allowed
