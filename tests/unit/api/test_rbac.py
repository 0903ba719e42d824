"""RBAC, stated as `kubectl auth can-i` sessions: who asks, what for, yes or no."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from podnet.api.rbac import (
    Attributes,
    ClusterRole,
    Decision,
    Policy,
    PolicyRule,
    aggregate,
    authorize,
    authorize_views,
    forbidden_message,
    rules_for,
)
from podnet.apiserver.bootstrap_rbac import default_objects


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ("system:authenticated",)


def sa(ns: str, name: str) -> User:
    return User(
        f"system:serviceaccount:{ns}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
    )


ALICE = User("alice")
BOB = User("bob", ("devs", "system:authenticated"))
ANON = User("system:anonymous", ("system:unauthenticated",))
ADMIN = User("kubernetes-admin", ("system:masters", "system:authenticated"))


def role(ns: str, name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Role",
        "metadata": {"namespace": ns, "name": name},
        "rules": list(rules),
    }


def cluster_role(
    name: str, *rules: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels or {}},
        "rules": list(rules),
    }


def binding(
    ns: str, name: str, ref_kind: str, ref: str, *subjects: dict[str, str]
) -> dict[str, Any]:
    return {
        "kind": "RoleBinding",
        "metadata": {"namespace": ns, "name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
        "subjects": list(subjects),
    }


def cluster_binding(name: str, ref: str, *subjects: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ref},
        "subjects": list(subjects),
    }


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def serviceaccount(name: str, ns: str = "") -> dict[str, str]:
    s = {"kind": "ServiceAccount", "name": name}
    if ns:
        s["namespace"] = ns
    return s


OBJECTS = [
    *default_objects(),
    role(
        "dev",
        "pod-reader",
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
    ),
    role(
        "dev",
        "scaler",
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update", "patch"]},
    ),
    role(
        "dev",
        "one-cm",
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["app-config"],
            "verbs": ["get", "update"],
        },
    ),
    cluster_role(
        "node-reader", {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}
    ),
    cluster_role("health", {"nonResourceURLs": ["/healthz/*", "/custom"], "verbs": ["get"]}),
    binding("dev", "alice-pods", "Role", "pod-reader", user("alice")),
    binding("dev", "alice-scale", "Role", "scaler", user("alice")),
    binding("dev", "alice-cm", "Role", "one-cm", user("alice")),
    binding("dev", "devs-edit", "ClusterRole", "edit", group("devs")),
    binding("dev", "default-view", "ClusterRole", "view", serviceaccount("default")),
    binding("prod", "ci-admin", "ClusterRole", "admin", serviceaccount("ci", "tools")),
    binding("dev", "dangling", "Role", "no-such-role", user("carol")),
    cluster_binding("alice-nodes", "node-reader", user("alice")),
    cluster_binding("alice-health", "health", user("alice")),
    cluster_binding("sa-without-ns", "cluster-admin", serviceaccount("ghost")),
]

POLICY = Policy.from_objects(OBJECTS)

# who, verb, resource (group/resource/subresource as kubectl spells it), namespace, name,
# expected answer
CAN_I: list[tuple[User, str, str, str, str, bool]] = [
    # Role in a namespace grants only there
    (ALICE, "list", "pods", "dev", "", True),
    (ALICE, "get", "pods/log", "dev", "web", True),
    (ALICE, "list", "pods", "prod", "", False),
    (ALICE, "delete", "pods", "dev", "web", False),
    (ALICE, "create", "pods/exec", "dev", "web", False),
    # */scale matches the scale subresource of any resource, and nothing else
    (ALICE, "update", "deployments.apps/scale", "dev", "web", True),
    (ALICE, "patch", "statefulsets.apps/scale", "dev", "db", True),
    (ALICE, "update", "deployments.apps", "dev", "web", False),
    (ALICE, "update", "deployments.apps/status", "dev", "web", False),
    # resourceNames restrict to named objects; a list has no name and is refused
    (ALICE, "get", "configmaps", "dev", "app-config", True),
    (ALICE, "get", "configmaps", "dev", "other", False),
    (ALICE, "list", "configmaps", "dev", "", False),
    # ClusterRoleBinding grants everywhere, cluster scope included
    (ALICE, "list", "nodes", "", "", True),
    (ALICE, "get", "nodes", "", "n1", True),
    (ALICE, "watch", "nodes", "", "", False),
    # RoleBinding to a ClusterRole: edit through a group, only in that namespace
    (BOB, "create", "deployments.apps", "dev", "", True),
    (BOB, "delete", "secrets", "dev", "s", True),
    (BOB, "create", "roles.rbac.authorization.k8s.io", "dev", "", False),
    (BOB, "create", "deployments.apps", "prod", "", False),
    (BOB, "create", "pods/exec", "dev", "web", True),
    # ServiceAccount subject without namespace defaults to the binding's namespace
    (sa("dev", "default"), "list", "pods", "dev", "", True),
    (sa("dev", "default"), "get", "secrets", "dev", "s", False),  # view excludes secrets
    (sa("prod", "default"), "list", "pods", "prod", "", False),
    (sa("dev", "other"), "list", "pods", "dev", "", False),
    # ServiceAccount subject with an explicit namespace, bound elsewhere
    (sa("tools", "ci"), "create", "rolebindings.rbac.authorization.k8s.io", "prod", "", True),
    (
        sa("tools", "ci"),
        "create",
        "localsubjectaccessreviews.authorization.k8s.io",
        "prod",
        "",
        True,
    ),
    (sa("tools", "ci"), "create", "pods", "tools", "", False),
    # A ServiceAccount subject with no namespace in a ClusterRoleBinding matches no one
    (sa("default", "ghost"), "get", "pods", "default", "", False),
    (User("ghost"), "get", "pods", "default", "", False),
    # system:masters is the superuser
    (ADMIN, "delete", "nodes", "", "n1", True),
    (ADMIN, "create", "widgets.example.com", "x", "", True),
    # defaults: authenticated users may review themselves, anonymous may not
    (ALICE, "create", "selfsubjectaccessreviews.authorization.k8s.io", "", "", True),
    (ANON, "create", "selfsubjectaccessreviews.authorization.k8s.io", "", "", False),
    (ANON, "list", "pods", "default", "", False),
    (User("system:kube-proxy", ()), "watch", "endpointslices.discovery.k8s.io", "", "", True),
    (sa("kube-system", "kube-dns"), "list", "services", "", "", True),
]


def can_i(who: User, verb: str, resource: str, ns: str = "", name: str = "") -> Attributes:
    res, _, sub = resource.partition("/")
    plural, _, api_group = res.partition(".")
    return Attributes(who, verb, ns, api_group, plural, sub, name)


@pytest.mark.parametrize(("who", "verb", "resource", "ns", "name", "expected"), CAN_I)
def test_can_i(who: User, verb: str, resource: str, ns: str, name: str, expected: bool) -> None:
    assert authorize(can_i(who, verb, resource, ns, name), POLICY).allowed is expected


NON_RESOURCE: list[tuple[User, str, str, bool]] = [
    (ALICE, "get", "/healthz/etcd", True),  # trailing * is a prefix match
    (ALICE, "get", "/healthz/", True),
    (ALICE, "get", "/custom", True),
    (ALICE, "get", "/custom/sub", False),
    (ALICE, "post", "/custom", False),
    (ALICE, "get", "/apis/apps/v1", True),  # system:discovery for authenticated
    (ANON, "get", "/version", True),  # system:public-info-viewer for everyone
    (ANON, "get", "/apis", False),
    (ANON, "get", "/openid/v1/jwks", False),
    (sa("dev", "default"), "get", "/openid/v1/jwks", True),
    (ADMIN, "delete", "/anything", True),
]


@pytest.mark.parametrize(("who", "verb", "path", "expected"), NON_RESOURCE)
def test_can_i_non_resource(who: User, verb: str, path: str, expected: bool) -> None:
    attrs = Attributes(who, verb, path=path, resource_request=False)
    assert authorize(attrs, POLICY).allowed is expected


def test_allowed_reason_names_the_binding_like_kubernetes() -> None:
    assert authorize(can_i(ALICE, "list", "pods", "dev"), POLICY) == Decision(
        True, 'RBAC: allowed by RoleBinding "alice-pods/dev" of Role "pod-reader" to User "alice"'
    )
    assert authorize(can_i(sa("dev", "default"), "list", "pods", "dev"), POLICY) == Decision(
        True,
        'RBAC: allowed by RoleBinding "default-view/dev" of ClusterRole "view" to '
        'ServiceAccount "default/dev"',
    )
    assert authorize(can_i(ALICE, "list", "nodes"), POLICY).reason == (
        'RBAC: allowed by ClusterRoleBinding "alice-nodes" of ClusterRole "node-reader" '
        'to User "alice"'
    )
    # The superuser check comes before RBAC and gives no reason.
    assert authorize(can_i(ADMIN, "list", "pods", "dev"), POLICY) == Decision(True, "")


def test_denial_has_no_reason_unless_a_role_is_missing() -> None:
    assert authorize(can_i(ALICE, "delete", "pods", "dev"), POLICY) == Decision(False, "")
    carol = User("carol")
    assert authorize(can_i(carol, "get", "pods", "dev"), POLICY) == Decision(
        False, 'RBAC: role.rbac.authorization.k8s.io "no-such-role" not found'
    )
    # The dangling binding is in "dev" only: elsewhere it is not visited.
    assert authorize(can_i(carol, "get", "pods", "prod"), POLICY) == Decision(False, "")


def test_binding_naming_the_user_twice_reports_its_first_matching_subject() -> None:
    p = Policy.from_objects(
        [
            cluster_role("r", {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
            cluster_binding("b", "r", group("devs"), user("bob")),
        ]
    )
    assert authorize(can_i(BOB, "get", "pods", "x"), p).reason == (
        'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "devs"'
    )


FORBIDDEN = [
    (
        can_i(sa("default", "default"), "list", "pods", "default"),
        'pods is forbidden: User "system:serviceaccount:default:default" cannot list resource '
        '"pods" in API group "" in the namespace "default"',
    ),
    (
        can_i(User("u"), "get", "pods", "default", "x"),
        'pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the '
        'namespace "default"',
    ),
    (
        can_i(User("u"), "list", "nodes"),
        'nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the '
        "cluster scope",
    ),
    (
        can_i(User("u"), "create", "pods/exec", "default", "web"),
        'pods "web" is forbidden: User "u" cannot create resource "pods/exec" in API group "" '
        'in the namespace "default"',
    ),
    (
        can_i(User("u"), "list", "deployments.apps", "default"),
        'deployments.apps is forbidden: User "u" cannot list resource "deployments" in API '
        'group "apps" in the namespace "default"',
    ),
    (
        Attributes(User("u"), "get", path="/foo", resource_request=False),
        'forbidden: User "u" cannot get path "/foo"',
    ),
]


@pytest.mark.parametrize(("attrs", "message"), FORBIDDEN)
def test_forbidden_message_wording(attrs: Attributes, message: str) -> None:
    assert forbidden_message(attrs) == message


def test_forbidden_message_appends_reason() -> None:
    attrs = can_i(User("carol"), "get", "pods", "dev")
    assert forbidden_message(attrs, "RBAC: x").endswith('in the namespace "dev": RBAC: x')


def test_rules_for_lists_cluster_and_namespace_rules() -> None:
    review = rules_for(ALICE, "dev", POLICY)
    resources = {(r.api_groups, r.resources) for r in review.resource_rules}
    assert (("",), ("nodes",)) in resources
    assert (("",), ("pods", "pods/log")) in resources
    assert (
        ("authorization.k8s.io",),
        ("selfsubjectaccessreviews", "selfsubjectrulesreviews"),
    ) in resources
    urls = {u for r in review.non_resource_rules for u in r.non_resource_urls}
    assert {"/healthz/*", "/custom", "/api", "/version"} <= urls
    assert not review.incomplete
    status = review.to_status()
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["nodes"]} in status[
        "resourceRules"
    ]
    assert {
        "verbs": ["get", "update"],
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["app-config"],
    } in status["resourceRules"]
    # In another namespace only the cluster-wide rules remain.
    other = rules_for(ALICE, "prod", POLICY)
    assert (("",), ("pods", "pods/log")) not in {
        (r.api_groups, r.resources) for r in other.resource_rules
    }


def test_rules_for_superuser_and_missing_roles() -> None:
    review = rules_for(ADMIN, "dev", POLICY)
    assert review.resource_rules[0] == PolicyRule(("*",), ("*",), ("*",))
    assert review.non_resource_rules[0] == PolicyRule(("*",), non_resource_urls=("*",))
    broken = rules_for(User("carol"), "dev", POLICY)
    assert broken.incomplete
    assert broken.to_status()["evaluationError"] == (
        'role.rbac.authorization.k8s.io "no-such-role" not found'
    )


def test_aggregation_unions_labelled_roles_transitively() -> None:
    def r(verb: str) -> dict[str, Any]:
        return {"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}

    raw: list[dict[str, Any]] = [
        {
            "kind": "ClusterRole",
            "metadata": {"name": "top"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"to-top": "1"}}]},
            "rules": [r("stale")],
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "mid", "labels": {"to-top": "1"}},
            "aggregationRule": {
                "clusterRoleSelectors": [
                    {"matchExpressions": [{"key": "to-mid", "operator": "Exists"}]}
                ]
            },
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "b", "labels": {"to-mid": "x"}},
            "rules": [r("get"), r("list")],
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "a", "labels": {"to-mid": "y"}},
            "rules": [r("list"), r("watch")],
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "c", "labels": {"to-top": "1"}},
            "rules": [r("delete")],
        },
        {"kind": "ClusterRole", "metadata": {"name": "other"}, "rules": [r("patch")]},
    ]
    roles = {c.name: c for c in map(ClusterRole.from_json, raw)}
    out = aggregate(roles)

    def verbs(name: str) -> list[str]:
        return [rule.verbs[0] for rule in out[name].rules]

    assert verbs("mid") == ["list", "watch", "get"]  # roles by name, duplicates dropped
    assert verbs("top") == ["delete", "list", "watch", "get"]  # own stale rules replaced
    assert out["other"] is roles["other"]


def test_default_admin_edit_view_are_aggregated() -> None:
    assert authorize(can_i(sa("dev", "default"), "get", "pods/log", "dev", "p"), POLICY).allowed
    assert not authorize(can_i(sa("dev", "default"), "create", "pods", "dev"), POLICY).allowed


def test_authorize_views_matches_policy() -> None:
    p = Policy.from_objects(OBJECTS)
    attrs = can_i(ALICE, "list", "pods", "dev")
    d = authorize_views(
        attrs,
        p.roles.values(),
        p.cluster_roles.values(),
        [b for bs in p.role_bindings.values() for b in bs],
        p.cluster_role_bindings,
    )
    assert d == authorize(attrs, p)


def test_check_is_fast_with_the_default_roles() -> None:
    extra = [
        cluster_role(f"extra-{i}", {"apiGroups": ["x"], "resources": [f"r{i}"], "verbs": ["get"]})
        for i in range(30)
    ]
    extra += [cluster_binding(f"extra-{i}", f"extra-{i}", user(f"u{i}")) for i in range(30)]
    policy = Policy.from_objects([*OBJECTS, *extra])
    assert len(policy.cluster_roles) >= 60
    cases = [
        can_i(sa("dev", "default"), "list", "secrets", "dev"),  # denied: walks everything
        can_i(BOB, "create", "networkpolicies.networking.k8s.io", "dev"),
        Attributes(ALICE, "get", path="/apis/apps/v1", resource_request=False),
    ]
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        for attrs in cases:
            authorize(attrs, policy)
    per_check = (time.perf_counter() - start) / (n * len(cases))
    assert per_check < 50e-6, f"{per_check * 1e6:.1f} µs per check"
