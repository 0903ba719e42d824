"""RBAC authorization, evaluated exactly as Kubernetes' RBAC authorizer does it. Pure.

Inputs are small frozen views built once from raw Role / ClusterRole / RoleBinding /
ClusterRoleBinding objects. Because `authorize` runs on every request, the API server
keeps a `Policy`: an index of the bindings by subject (user name, group, ServiceAccount)
with each binding's rules already resolved. Rebuild it (`Policy.build`) whenever an RBAC
object changes; a check then costs a few dictionary lookups plus the rules of the few
bindings that name this user, not a scan of every binding.

Semantics carried over from Kubernetes (`plugin/pkg/auth/authorizer/rbac`):
- ClusterRoleBindings grant everywhere; RoleBindings grant only in their namespace and
  may reference a Role of that namespace or a ClusterRole.
- A ServiceAccount subject's namespace defaults to the RoleBinding's; in a
  ClusterRoleBinding it must be given, or the subject matches no one.
- A rule matches a request when verb, API group, resource (`pods/log` names a
  subresource, `*/scale` any resource's scale) and, if listed, resource name all match;
  non-resource rules match a path exactly or by a trailing `*` prefix; `*` is a wildcard.
- Bindings are visited ClusterRoleBindings first, then RoleBindings of the request's
  namespace; the first rule that allows wins and names itself in the reason. A denial's
  reason is empty unless some binding that applies referenced a missing role.
- The `system:masters` group is allowed everything before RBAC is consulted
  (kube-apiserver's privileged-group authorizer), so its reason is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

SUPERUSER_GROUP = "system:masters"
SA_PREFIX = "system:serviceaccount:"
RBAC_GROUP = "rbac.authorization.k8s.io"


class UserLike(Protocol):
    """What RBAC needs to know about a user (`authn.UserInfo` satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def groups(self) -> Sequence[str]: ...


# --- views --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule of a role. The tuples keep the object's order (for JSON); the sets
    beside them exist only to make matching fast."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    _verbs: frozenset[str] = field(init=False, repr=False, compare=False)
    _groups: frozenset[str] = field(init=False, repr=False, compare=False)
    _resources: frozenset[str] = field(init=False, repr=False, compare=False)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    # Subresources named by `*/<sub>` entries.
    _any_sub: frozenset[str] = field(init=False, repr=False, compare=False)
    # Non-resource URL prefixes from entries ending in `*` (the bare `*` gives "").
    _url_prefixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _urls: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "_verbs", frozenset(self.verbs))
        s(self, "_groups", frozenset(self.api_groups))
        s(self, "_resources", frozenset(self.resources))
        s(self, "_names", frozenset(self.resource_names))
        s(self, "_any_sub", frozenset(r[2:] for r in self.resources if r.startswith("*/")))
        # Go's strings.TrimRight(url, "*"): every trailing star goes.
        s(
            self,
            "_url_prefixes",
            tuple(u.rstrip("*") for u in self.non_resource_urls if u.endswith("*")),
        )
        s(self, "_urls", frozenset(self.non_resource_urls))

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PolicyRule:
        return cls(
            verbs=tuple(raw.get("verbs") or ()),
            api_groups=tuple(raw.get("apiGroups") or ()),
            resources=tuple(raw.get("resources") or ()),
            resource_names=tuple(raw.get("resourceNames") or ()),
            non_resource_urls=tuple(raw.get("nonResourceURLs") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": list(self.verbs)}
        if self.api_groups:
            out["apiGroups"] = list(self.api_groups)
        if self.resources:
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        return out

    def allows(self, attrs: Attributes) -> bool:
        """Kubernetes' `RuleAllows`."""
        v = self._verbs
        if "*" not in v and attrs.verb not in v:
            return False
        if not attrs.resource_request:
            if "*" in self._urls or attrs.path in self._urls:
                return True
            return any(attrs.path.startswith(p) for p in self._url_prefixes)
        g = self._groups
        if "*" not in g and attrs.api_group not in g:
            return False
        r = self._resources
        if "*" not in r:
            sub = attrs.subresource
            if sub:
                if f"{attrs.resource}/{sub}" not in r and sub not in self._any_sub:
                    return False
            elif attrs.resource not in r:
                return False
        return not self._names or attrs.name in self._names


@dataclass(frozen=True, slots=True)
class LabelSelectorRequirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A `metav1.LabelSelector`; only aggregation rules need it here."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> LabelSelector:
        return cls(
            match_labels=tuple(sorted((raw.get("matchLabels") or {}).items())),
            match_expressions=tuple(
                LabelSelectorRequirement(
                    e.get("key", ""), e.get("operator", ""), tuple(e.get("values") or ())
                )
                for e in raw.get("matchExpressions") or ()
            ),
        )

    def matches(self, labels: Mapping[str, str]) -> bool:
        for k, v in self.match_labels:
            if labels.get(k) != v:
                return False
        for e in self.match_expressions:
            present = e.key in labels
            if e.operator == "In":
                ok = present and labels[e.key] in e.values
            elif e.operator == "NotIn":
                ok = not present or labels[e.key] not in e.values
            elif e.operator == "Exists":
                ok = present
            elif e.operator == "DoesNotExist":
                ok = not present
            else:  # an invalid selector matches nothing, as LabelSelectorAsSelector errors
                ok = False
            if not ok:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Role:
    """A namespaced Role."""

    namespace: str
    name: str
    rules: tuple[PolicyRule, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Role:
        meta = raw.get("metadata") or {}
        return cls(
            meta.get("namespace", ""),
            meta.get("name", ""),
            tuple(PolicyRule.from_json(r) for r in raw.get("rules") or ()),
        )


@dataclass(frozen=True, slots=True)
class ClusterRole:
    name: str
    rules: tuple[PolicyRule, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    # None: not an aggregated role. A tuple (possibly empty): aggregated.
    aggregation: tuple[LabelSelector, ...] | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ClusterRole:
        meta = raw.get("metadata") or {}
        agg = raw.get("aggregationRule")
        return cls(
            meta.get("name", ""),
            tuple(PolicyRule.from_json(r) for r in raw.get("rules") or ()),
            dict(meta.get("labels") or {}),
            (
                tuple(LabelSelector.from_json(s) for s in agg.get("clusterRoleSelectors") or ())
                if isinstance(agg, Mapping)
                else None
            ),
        )


@dataclass(frozen=True, slots=True)
class RoleRef:
    kind: str  # "Role" or "ClusterRole"
    name: str
    api_group: str = RBAC_GROUP


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # "User", "Group" or "ServiceAccount"
    name: str
    namespace: str = ""

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Subject:
        return cls(raw.get("kind", ""), raw.get("name", ""), raw.get("namespace", "") or "")

    def describe(self, binding_namespace: str) -> str:
        """As Kubernetes' `describeSubject`: `Group "g"`, `ServiceAccount "sa/ns"`."""
        if self.kind == "ServiceAccount":
            return f'{self.kind} "{self.name}/{self.namespace or binding_namespace}"'
        return f'{self.kind} "{self.name}"'


@dataclass(frozen=True, slots=True)
class RoleBinding:
    namespace: str
    name: str
    role_ref: RoleRef
    subjects: tuple[Subject, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RoleBinding:
        meta = raw.get("metadata") or {}
        return cls(meta.get("namespace", ""), meta.get("name", ""), *_ref_and_subjects(raw))


@dataclass(frozen=True, slots=True)
class ClusterRoleBinding:
    name: str
    role_ref: RoleRef
    subjects: tuple[Subject, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ClusterRoleBinding:
        meta = raw.get("metadata") or {}
        return cls(meta.get("name", ""), *_ref_and_subjects(raw))


def _ref_and_subjects(raw: Mapping[str, Any]) -> tuple[RoleRef, tuple[Subject, ...]]:
    ref = raw.get("roleRef") or {}
    return (
        RoleRef(ref.get("kind", ""), ref.get("name", ""), ref.get("apiGroup", RBAC_GROUP)),
        tuple(Subject.from_json(s) for s in raw.get("subjects") or ()),
    )


@dataclass(frozen=True, slots=True)
class Attributes:
    """One request, as the authorizer sees it.

    For resource requests `verb` is the API verb (get, list, watch, create, update,
    patch, delete, deletecollection, or a special one such as impersonate); for
    non-resource requests it is the lower-case HTTP method and `path` the URL path.
    """

    user: UserLike
    verb: str
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


# --- the index ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """A binding that applies to some subject, with its role's rules resolved."""

    order: int  # visiting order: ClusterRoleBindings first, by name; then RoleBindings
    subject_index: int  # which of the binding's subjects this grant came from
    source: str  # `ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`, for reasons
    rules: tuple[PolicyRule, ...]
    error: str  # a missing role: reported in a denial's reason, as Kubernetes does


@dataclass(frozen=True, slots=True)
class _Index:
    by_user: Mapping[str, tuple[Grant, ...]]
    by_group: Mapping[str, tuple[Grant, ...]]


_EMPTY_INDEX = _Index({}, {})


@dataclass(frozen=True, slots=True)
class Policy:
    """Every RBAC object, indexed for `authorize`. Immutable: rebuild on change."""

    roles: Mapping[tuple[str, str], Role]
    cluster_roles: Mapping[str, ClusterRole]
    role_bindings: Mapping[str, tuple[RoleBinding, ...]]
    cluster_role_bindings: tuple[ClusterRoleBinding, ...]
    _cluster: _Index
    _namespaced: Mapping[str, _Index]

    @classmethod
    def build(
        cls,
        roles: Iterable[Role] = (),
        cluster_roles: Iterable[ClusterRole] = (),
        role_bindings: Iterable[RoleBinding] = (),
        cluster_role_bindings: Iterable[ClusterRoleBinding] = (),
    ) -> Policy:
        role_map = {(r.namespace, r.name): r for r in roles}
        cr_map = {r.name: r for r in cluster_roles}
        crbs = tuple(sorted(cluster_role_bindings, key=lambda b: b.name))
        rbs_by_ns: dict[str, list[RoleBinding]] = {}
        for rb in role_bindings:
            rbs_by_ns.setdefault(rb.namespace, []).append(rb)
        rbs = {ns: tuple(sorted(v, key=lambda b: b.name)) for ns, v in rbs_by_ns.items()}

        order = 0
        cluster = _IndexBuilder()
        for crb in crbs:
            rules, error = _resolve(crb.role_ref, "", role_map, cr_map)
            for i, subj, key in _subject_keys(crb.subjects, ""):
                source = (
                    f'ClusterRoleBinding "{crb.name}" of {crb.role_ref.kind} '
                    f'"{crb.role_ref.name}" to {subj.describe("")}'
                )
                cluster.add(subj.kind, key, Grant(order, i, source, rules, error))
            order += 1
        namespaced: dict[str, _Index] = {}
        for ns, bindings in rbs.items():
            b = _IndexBuilder()
            for rb in bindings:
                rules, error = _resolve(rb.role_ref, ns, role_map, cr_map)
                for i, subj, key in _subject_keys(rb.subjects, ns):
                    source = (
                        f'RoleBinding "{rb.name}/{ns}" of {rb.role_ref.kind} '
                        f'"{rb.role_ref.name}" to {subj.describe(ns)}'
                    )
                    b.add(subj.kind, key, Grant(order, i, source, rules, error))
                order += 1
            namespaced[ns] = b.freeze()
        return cls(role_map, cr_map, rbs, crbs, cluster.freeze(), namespaced)

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]]) -> Policy:
        """Build from raw API objects of the four RBAC kinds (others are ignored)."""
        roles: list[Role] = []
        crs: list[ClusterRole] = []
        rbs: list[RoleBinding] = []
        crbs: list[ClusterRoleBinding] = []
        for o in objects:
            kind = o.get("kind")
            if kind == "Role":
                roles.append(Role.from_json(o))
            elif kind == "ClusterRole":
                crs.append(ClusterRole.from_json(o))
            elif kind == "RoleBinding":
                rbs.append(RoleBinding.from_json(o))
            elif kind == "ClusterRoleBinding":
                crbs.append(ClusterRoleBinding.from_json(o))
        return cls.build(roles, crs, rbs, crbs)

    def grants_for(self, user: UserLike, namespace: str) -> list[Grant]:
        """The bindings that apply to `user` for a request in `namespace`, in order.

        A binding naming the user twice (say as User and through a Group) is visited
        once, through its first matching subject, as Kubernetes' `appliesTo` does.
        """
        found: dict[int, Grant] = {}
        indexes = [self._cluster]
        if namespace:
            indexes.append(self._namespaced.get(namespace, _EMPTY_INDEX))
        for idx in indexes:
            for g in idx.by_user.get(user.name, ()):
                _keep_first(found, g)
            for group in user.groups:
                for g in idx.by_group.get(group, ()):
                    _keep_first(found, g)
        return [found[k] for k in sorted(found)]


class _IndexBuilder:
    def __init__(self) -> None:
        self.users: dict[str, list[Grant]] = {}
        self.groups: dict[str, list[Grant]] = {}
        self._seen: set[tuple[str, str, int]] = set()

    def add(self, kind: str, key: str, grant: Grant) -> None:
        # Within one binding only the first subject naming a key counts.
        bucket_kind = "Group" if kind == "Group" else "User"
        if (bucket_kind, key, grant.order) in self._seen:
            return
        self._seen.add((bucket_kind, key, grant.order))
        bucket = self.groups if bucket_kind == "Group" else self.users
        bucket.setdefault(key, []).append(grant)

    def freeze(self) -> _Index:
        return _Index(
            {k: tuple(v) for k, v in self.users.items()},
            {k: tuple(v) for k, v in self.groups.items()},
        )


def _keep_first(found: dict[int, Grant], grant: Grant) -> None:
    """Of one binding's grants, keep the one from its earliest matching subject: that is
    the subject Kubernetes' `appliesTo` returns and names in the reason."""
    prev = found.get(grant.order)
    if prev is None or grant.subject_index < prev.subject_index:
        found[grant.order] = grant


def _subject_keys(
    subjects: Iterable[Subject], binding_namespace: str
) -> Iterable[tuple[int, Subject, str]]:
    """Index keys for subjects: user name, group name, or the ServiceAccount's user name.
    Subjects that can match no one (an unknown kind, a ServiceAccount without a
    namespace in a ClusterRoleBinding) are left out."""
    for i, s in enumerate(subjects):
        if s.kind in ("User", "Group"):
            yield i, s, s.name
        elif s.kind == "ServiceAccount":
            ns = s.namespace or binding_namespace
            if ns:
                yield i, s, f"{SA_PREFIX}{ns}:{s.name}"


def _resolve(
    ref: RoleRef,
    namespace: str,
    roles: Mapping[tuple[str, str], Role],
    cluster_roles: Mapping[str, ClusterRole],
) -> tuple[tuple[PolicyRule, ...], str]:
    """A binding's rules, or the error Kubernetes reports when its role is missing."""
    if ref.kind == "ClusterRole":
        cr = cluster_roles.get(ref.name)
        if cr is None:
            return (), f'clusterrole.rbac.authorization.k8s.io "{ref.name}" not found'
        return cr.rules, ""
    if ref.kind == "Role" and namespace:
        r = roles.get((namespace, ref.name))
        if r is None:
            return (), f'role.rbac.authorization.k8s.io "{ref.name}" not found'
        return r.rules, ""
    return (), f'unsupported role reference kind: "{ref.kind}"'


# --- decisions ----------------------------------------------------------------------


def authorize(attrs: Attributes, policy: Policy) -> Decision:
    """Allow or deny one request; the reason is what SubjectAccessReview reports."""
    if SUPERUSER_GROUP in attrs.user.groups:
        return Decision(True, "")
    errors: list[str] = []
    for grant in policy.grants_for(attrs.user, attrs.namespace):
        if grant.error:
            errors.append(grant.error)
            continue
        for rule in grant.rules:
            if rule.allows(attrs):
                return Decision(True, f"RBAC: allowed by {grant.source}")
    if not errors:
        return Decision(False, "")
    return Decision(False, "RBAC: " + _aggregate_errors(errors))


def authorize_views(
    attrs: Attributes,
    roles: Iterable[Role],
    cluster_roles: Iterable[ClusterRole],
    role_bindings: Iterable[RoleBinding],
    cluster_role_bindings: Iterable[ClusterRoleBinding],
) -> Decision:
    """`authorize` over plain collections; builds the index each call, so for one-off
    checks and tests. The API server keeps a `Policy` instead."""
    return authorize(
        attrs, Policy.build(roles, cluster_roles, role_bindings, cluster_role_bindings)
    )


def _aggregate_errors(errors: Sequence[str]) -> str:
    """Go's `utilerrors.NewAggregate(...).Error()`: one error bare, several in brackets."""
    unique = list(dict.fromkeys(errors))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def forbidden_message(attrs: Attributes, reason: str = "") -> str:
    """The 403 message kube-apiserver writes, word for word, e.g.
    `pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the
    namespace "default"`. The qualified resource at the front leaves out the
    subresource, the one after `resource` keeps it, as Kubernetes does."""
    user = attrs.user.name
    if not attrs.resource_request:
        inner = f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = attrs.resource
        if attrs.subresource:
            resource = f"{resource}/{attrs.subresource}"
        if attrs.namespace:
            inner = (
                f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group '
                f'"{attrs.api_group}" in the namespace "{attrs.namespace}"'
            )
        else:
            inner = (
                f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group '
                f'"{attrs.api_group}" at the cluster scope'
            )
    if reason:
        inner = f"{inner}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return f"forbidden: {inner}"
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if attrs.name:
        return f'{qualified} "{attrs.name}" is forbidden: {inner}'
    return f"{qualified} is forbidden: {inner}"


# --- SelfSubjectRulesReview ---------------------------------------------------------


_SUPERUSER_RESOURCE_RULE = PolicyRule(verbs=("*",), api_groups=("*",), resources=("*",))
_SUPERUSER_NON_RESOURCE_RULE = PolicyRule(verbs=("*",), non_resource_urls=("*",))


@dataclass(frozen=True, slots=True)
class RulesReview:
    """What `rules_for` found: the `status` of a SelfSubjectRulesReview."""

    resource_rules: tuple[PolicyRule, ...]
    non_resource_rules: tuple[PolicyRule, ...]
    incomplete: bool = False
    evaluation_error: str = ""

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "resourceRules": [r.to_json() for r in self.resource_rules],
            "nonResourceRules": [r.to_json() for r in self.non_resource_rules],
            "incomplete": self.incomplete,
        }
        if self.evaluation_error:
            status["evaluationError"] = self.evaluation_error
        return status


def rules_for(user: UserLike, namespace: str, policy: Policy) -> RulesReview:
    """Every rule that applies to `user` in `namespace` (cluster-wide ones included), split
    like Kubernetes' `RulesFor`: a rule with resources goes to the resource list, one
    with non-resource URLs to the other (a rule with both goes to both)."""
    res: list[PolicyRule] = []
    non: list[PolicyRule] = []
    if SUPERUSER_GROUP in user.groups:
        res.append(_SUPERUSER_RESOURCE_RULE)
        non.append(_SUPERUSER_NON_RESOURCE_RULE)
    errors: list[str] = []
    for grant in policy.grants_for(user, namespace):
        if grant.error:
            errors.append(grant.error)
        for rule in grant.rules:
            if rule.resources:
                res.append(
                    PolicyRule(rule.verbs, rule.api_groups, rule.resources, rule.resource_names)
                )
            if rule.non_resource_urls:
                non.append(PolicyRule(rule.verbs, non_resource_urls=rule.non_resource_urls))
    return RulesReview(
        tuple(res),
        tuple(non),
        incomplete=bool(errors),
        evaluation_error=_aggregate_errors(errors) if errors else "",
    )


# --- ClusterRole aggregation --------------------------------------------------------


def aggregate(cluster_roles: Mapping[str, ClusterRole]) -> dict[str, ClusterRole]:
    """Fill every aggregated ClusterRole's rules as the aggregation controller does.

    An aggregated role's rules become the union, without duplicates, of the rules of
    every other ClusterRole matching any of its selectors (roles taken by name within a
    selector, selectors in order); its own rules are replaced. Aggregated roles can feed
    each other (`view` → `edit` → `admin`), so repeat until nothing changes; the bound
    stops a selector cycle from looping forever.
    """
    current = dict(cluster_roles)
    aggregated = sorted(n for n, r in current.items() if r.aggregation is not None)
    names_sorted = sorted(current)
    for _ in range(len(aggregated) + 1):
        changed = False
        for name in aggregated:
            role = current[name]
            assert role.aggregation is not None
            rules: list[PolicyRule] = []
            for selector in role.aggregation:
                for other_name in names_sorted:
                    if other_name == name:
                        continue
                    other = current[other_name]
                    if not selector.matches(other.labels):
                        continue
                    for rule in other.rules:
                        if rule not in rules:
                            rules.append(rule)
            if tuple(rules) != role.rules:
                current[name] = replace(role, rules=tuple(rules))
                changed = True
        if not changed:
            break
    return current


def aggregate_objects(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`aggregate` over raw ClusterRole objects: copies with `rules` filled in for the
    aggregated ones (others returned unchanged), ready to store."""
    views = {o["metadata"]["name"]: ClusterRole.from_json(o) for o in objects}
    result = aggregate(views)
    out: list[dict[str, Any]] = []
    for o in objects:
        name = o["metadata"]["name"]
        if views[name].aggregation is None:
            out.append(dict(o))
            continue
        copy = dict(o)
        copy["rules"] = [r.to_json() for r in result[name].rules]
        out.append(copy)
    return out
