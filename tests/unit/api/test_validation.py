"""Validation: field paths and messages as kube-apiserver prints them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from podnet.api import errors
from podnet.api.defaults import apply_defaults, drop_type_dependent_fields
from podnet.api.validation import check_request_namespace, validate_create, validate_update

DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def lines(causes: list[errors.Cause]) -> list[str]:
    return [f"{c.field}: {c.message}" if c.field else c.message for c in causes]


def svc(**spec: Any) -> dict[str, Any]:
    return apply_defaults({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "my-service", "namespace": "default"},
                           "spec": spec})


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    base.update(spec)
    return apply_defaults({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": "web", "namespace": "default"}, "spec": base})


def deploy(selector: Any, labels: Any, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": {"metadata": {"labels": labels},
                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
    }
    if selector is not None:
        body["selector"] = selector
    body.update(spec)
    return apply_defaults({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "web", "namespace": "default"}, "spec": body})


# --- metadata ---------------------------------------------------------------------------

META_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default"}},
     ["metadata.name: Required value: name or generateName is required"]),
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"generateName": "cm-", "namespace": "default"}}, []),
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "Bad_Name", "namespace": "default"}},
     [f'metadata.name: Invalid value: "Bad_Name": {DNS1123_SUBDOMAIN}']),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a.b"}},
     ["metadata.namespace: Required value"]),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}},
     ['metadata.name: Invalid value: "a.b": must not contain dots']),
    ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "x"}},
     ["metadata.namespace: Forbidden: not allowed on this type"]),
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "c", "namespace": "default", "labels": {"app": "a b"}}},
     ['metadata.labels: Invalid value: "a b": a valid label must be an empty string or consist '
      "of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
      "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "c", "namespace": "default", "labels": {"a/b/c": "x"}}},
     ["metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric "
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
      "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
      "'/' (e.g. 'example.com/MyName')"]),
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "c", "namespace": "default",
                   "annotations": {"Example.COM/Note": "upper case keys are fine"}}}, []),
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "c", "namespace": "default", "annotations": {"big": "x" * 262142}}},
     ['metadata.annotations: Too long: may not be more than 262144 bytes']),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
      "metadata": {"name": "system:controller:podnet"}}, []),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
      "metadata": {"name": "a/b"}},
     ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]),
]


@pytest.mark.parametrize(("obj", "expected"), META_CASES)
def test_metadata(obj: dict[str, Any], expected: list[str]) -> None:
    assert lines(validate_create(obj)) == expected


def test_immutable_metadata_on_update() -> None:
    old = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "namespace": "default", "uid": "u1",
                        "creationTimestamp": "2024-01-01T00:00:00Z"}}
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "u2"
    assert lines(validate_update(new, old)) == [
        'metadata.uid: Invalid value: "u2": field is immutable']


def test_request_namespace_mismatch_is_bad_request() -> None:
    with pytest.raises(errors.StatusError) as info:
        check_request_namespace({"metadata": {"namespace": "a"}}, "b")
    assert info.value.code == 400
    assert info.value.message == (
        "the namespace of the provided object does not match the namespace sent on the request")


# --- services ----------------------------------------------------------------------------

SERVICE_CASES: list[tuple[dict[str, Any], list[str]]] = [
    (svc(selector={"app": "web"}, ports=[{"port": 80}]), []),
    (svc(selector={"app": "web"}), ["spec.ports: Required value"]),
    (svc(clusterIP="None", selector={"app": "web"}), []),  # headless needs no ports
    (svc(type="ExternalName", externalName="db.example.com."), []),
    (svc(type="ExternalName"), ["spec.externalName: Required value"]),
    (svc(type="ExternalName", externalName="Not_A_Host"),
     [f'spec.externalName: Invalid value: "Not_A_Host": {DNS1123_SUBDOMAIN}']),
    # targetPort defaults to port, so Kubernetes reports both.
    (svc(ports=[{"port": 0}]),
     ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
      "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    (svc(ports=[{"port": 70000}]),
     ["spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
      "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, "
      "inclusive"]),
    (svc(ports=[{"port": 80, "protocol": "HTTP"}]),
     ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", '
      '"UDP"']),
    (svc(ports=[{"port": 80}, {"port": 443}]),
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    (svc(ports=[{"name": "web", "port": 80}, {"name": "web", "port": 443}]),
     ['spec.ports[1].name: Duplicate value: "web"']),
    (svc(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
     ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
      'AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, '
      'StrVal:""}, NodePort:0}']),
    (svc(ports=[{"name": "dns", "port": 53}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}]),
     []),
    (svc(type="Balanced", ports=[{"port": 80}]),
     ['spec.type: Unsupported value: "Balanced": supported values: "ClusterIP", "ExternalName", '
      '"LoadBalancer", "NodePort"']),
    (svc(ports=[{"port": 80, "nodePort": 30080}]),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    (svc(sessionAffinity="Sticky", ports=[{"port": 80}]),
     ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", '
      '"None"']),
    (svc(externalTrafficPolicy="Local", ports=[{"port": 80}]),
     ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
      "externally-accessible services"]),
    (svc(type="NodePort", externalTrafficPolicy="Nearest", ports=[{"port": 80}]),
     ['spec.externalTrafficPolicy: Unsupported value: "Nearest": supported values: "Cluster", '
      '"Local"']),
    (svc(ports=[{"port": 80, "targetPort": "Web_Port"}]),
     ['spec.ports[0].targetPort: Invalid value: "Web_Port": must contain only alpha-numeric '
      "characters (a-z, 0-9), and hyphens (-)"]),
    (svc(selector={"app": "a b"}, ports=[{"port": 80}]),
     ['spec.selector: Invalid value: "a b": a valid label must be an empty string or consist of '
      "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
      "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    (svc(type="LoadBalancer", clusterIP="None", ports=[{"port": 80}]),
     ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer "
      "services"]),
    (svc(loadBalancerClass="example.com/lb", ports=[{"port": 80}]),
     ["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"]),
]


@pytest.mark.parametrize(("obj", "expected"), SERVICE_CASES)
def test_service(obj: dict[str, Any], expected: list[str]) -> None:
    assert lines(validate_create(obj)) == expected


def test_service_name_is_a_dns1035_label() -> None:
    obj = svc(ports=[{"port": 80}])
    obj["metadata"]["name"] = "1st-service"
    assert lines(validate_create(obj)) == [
        f'metadata.name: Invalid value: "1st-service": {DNS1035}']


def test_invalid_message_reads_like_kube_apiserver() -> None:
    causes = validate_create(svc(ports=[{"port": 80, "protocol": "HTTP"}]))
    err = errors.invalid("Service", "my-service", causes)
    assert err.message == (
        'Service "my-service" is invalid: spec.ports[0].protocol: Unsupported value: "HTTP": '
        'supported values: "SCTP", "TCP", "UDP"')


def allocated(obj: dict[str, Any], ip: str = "10.96.0.20") -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["spec"]["clusterIP"] = ip
    out["spec"]["clusterIPs"] = [ip]
    return out


def test_cluster_ip_may_not_change() -> None:
    old = allocated(svc(ports=[{"port": 80}]))
    new = allocated(old, "10.96.0.99")
    assert lines(validate_update(new, old)) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.99"}: may not change once set']


def manifest(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "my-service", "namespace": "default"}, "spec": spec}


def kubectl_apply(live: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
    """A simplified three-way merge: the manifest's spec fields over the live object."""
    merged = copy.deepcopy(live)
    for key in ("type", "selector", "externalName"):
        if key in m["spec"]:
            merged["spec"][key] = m["spec"][key]
        else:
            merged["spec"].pop(key, None)
    live_ports = {p["port"]: p for p in live["spec"].get("ports", [])}
    if "ports" in m["spec"]:
        merged["spec"]["ports"] = [{**live_ports.get(p["port"], {}), **p}
                                   for p in m["spec"]["ports"]]
    return merged


def test_clusterip_nodeport_loadbalancer_externalname_sequence() -> None:
    """The four Service manifests of the docs, applied in turn to one `my-service`."""
    ports = [{"port": 80, "targetPort": 9376}]
    live = allocated(apply_defaults(manifest(selector={"app": "web"}, ports=ports)))
    assert validate_create(live) == []
    steps = [
        (manifest(type="NodePort", selector={"app": "web"}, ports=ports), 30007),
        (manifest(type="LoadBalancer", selector={"app": "web"}, ports=ports), None),
        (manifest(type="ExternalName", externalName="my.database.example.com"), None),
    ]
    for m, node_port in steps:
        new = apply_defaults(kubectl_apply(live, m), create=False)
        new = drop_type_dependent_fields(live, new)
        if node_port:  # the allocator's job, before validation
            for p in new["spec"]["ports"]:
                p.setdefault("nodePort", node_port)
        assert lines(validate_update(new, live)) == [], m["spec"]["type"]
        live = new
    assert "clusterIP" not in live["spec"]
    assert "nodePort" not in live["spec"]["ports"][0]


def test_externalname_with_cluster_ip_is_forbidden() -> None:
    obj = allocated(svc(type="ExternalName", externalName="db.example.com"))
    assert lines(validate_create(obj)) == [
        "spec.clusterIPs: Forbidden: may not be set for ExternalName services"]


# --- pods --------------------------------------------------------------------------------

POD_CASES: list[tuple[dict[str, Any], list[str]]] = [
    (pod(), []),
    (pod(containers=[]), ["spec.containers: Required value"]),
    (pod(containers=[{"name": "app"}]), ["spec.containers[0].image: Required value"]),
    (pod(containers=[{"name": "App_1", "image": "x:1"}]),
     [f'spec.containers[0].name: Invalid value: "App_1": {DNS1123_LABEL}']),
    (pod(containers=[{"name": "a", "image": "x:1"}, {"name": "a", "image": "y:1"}]),
     ['spec.containers[1].name: Duplicate value: "a"']),
    (pod(initContainers=[{"name": "a", "image": "x:1"}],
         containers=[{"name": "a", "image": "y:1"}]),
     ['spec.containers[0].name: Duplicate value: "a"']),
    (pod(containers=[{"name": "a", "image": "x:1", "ports": [{"containerPort": 0}]}]),
     ["spec.containers[0].ports[0].containerPort: Required value"]),
    (pod(containers=[{"name": "a", "image": "x:1", "ports": [{"containerPort": 99999}]}]),
     ["spec.containers[0].ports[0].containerPort: Invalid value: 99999: must be between 1 and "
      "65535, inclusive"]),
    (pod(restartPolicy="Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    (pod(dnsPolicy="Cluster"),
     ['spec.dnsPolicy: Unsupported value: "Cluster": supported values: '
      '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"']),
    (pod(dnsPolicy="None"),
     ["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]),
    (pod(containers=[{"name": "a", "image": "x:1",
                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
]


@pytest.mark.parametrize(("obj", "expected"), POD_CASES)
def test_pod(obj: dict[str, Any], expected: list[str]) -> None:
    assert lines(validate_create(obj)) == expected


UPDATABLE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)


def test_pod_image_may_change() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.28"
    new["spec"]["tolerations"].append({"key": "k", "operator": "Exists"})
    assert validate_update(new, old) == []


def test_pod_spec_is_otherwise_immutable() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    causes = validate_update(new, old)
    assert len(causes) == 1
    assert causes[0].field == "spec"
    assert causes[0].reason == "FieldValueForbidden"
    assert causes[0].message.startswith(f"Forbidden: {UPDATABLE}\n")
    assert '-  restartPolicy: "Always",' in causes[0].message


# --- deployments ---------------------------------------------------------------------------


def test_deployment_valid() -> None:
    assert validate_create(deploy({"matchLabels": {"app": "web"}}, {"app": "web"})) == []


DEPLOYMENT_CASES: list[tuple[dict[str, Any], list[str]]] = [
    (deploy(None, {"app": "web"}), ["spec.selector: Required value"]),
    (deploy({"matchLabels": {"app": "web"}}, {"app": "x"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` '
      "does not match template `labels`"]),
    (deploy({}, {"app": "web"}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
      "deployment"]),
    (deploy({"matchLabels": {"app": "web"}}, {"app": "web"}, replicas=-1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    (deploy({"matchExpressions": [{"key": "app", "operator": "In"}]}, {"app": "web"}),
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when "
      "`operator` is 'In' or 'NotIn'"]),
    (deploy({"matchLabels": {"app": "web"}}, {"app": "web"},
            strategy={"type": "RollingUpdate",
                      "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, '
      'IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0']),
    (deploy({"matchLabels": {"app": "web"}}, {"app": "web"}, strategy={"type": "BlueGreen"}),
     ['spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
      "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", "
      '"RollingUpdate"']),
]


@pytest.mark.parametrize(("obj", "expected"), DEPLOYMENT_CASES)
def test_deployment(obj: dict[str, Any], expected: list[str]) -> None:
    assert lines(validate_create(obj)) == expected


def test_deployment_template_restart_policy_must_be_always() -> None:
    obj = deploy({"matchLabels": {"app": "web"}}, {"app": "web"})
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert lines(validate_create(obj)) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
        '"Always"']


def test_deployment_selector_is_immutable() -> None:
    old = deploy({"matchLabels": {"app": "web"}}, {"app": "web", "v": "2"})
    new = deploy({"matchLabels": {"app": "web", "v": "2"}}, {"app": "web", "v": "2"})
    assert lines(validate_update(new, old)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":'
        '"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is '
        "immutable"]


# --- other kinds ---------------------------------------------------------------------------

INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "web", "namespace": "default"}}


def ingress_path(**path: Any) -> dict[str, Any]:
    return {**INGRESS, "spec": {"rules": [{"host": "shop.example.com",
                                           "http": {"paths": [path]}}]}}


BACKEND = {"service": {"name": "web", "port": {"number": 80}}}

OTHER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    (ingress_path(path="/", pathType="Prefix", backend=BACKEND), []),
    (ingress_path(path="/", backend=BACKEND),
     ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]),
    (ingress_path(path="/", pathType="Regex", backend=BACKEND),
     ['spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: '
      '"Exact", "ImplementationSpecific", "Prefix"']),
    (ingress_path(path="api", pathType="Exact", backend=BACKEND),
     ['spec.rules[0].http.paths[0].path: Invalid value: "api": must be an absolute path']),
    (ingress_path(path="/", pathType="Prefix", backend={"service": {"name": "web"}}),
     ["spec.rules[0].http.paths[0].backend: Required value: port name or number is required"]),
    ({**INGRESS, "spec": {"rules": [{"host": "*.example.com"}]}}, []),
    ({**INGRESS, "spec": {"rules": [{"host": "shop.*.com"}]}},
     ["spec.rules[0].host: Invalid value: \"shop.*.com\": a wildcard DNS-1123 subdomain must "
      "start with '*.', followed by a valid DNS subdomain, which must consist of lower case "
      "alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. "
      "'*.example.com', regex used for validation is "
      "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    ({**INGRESS, "spec": {}},
     ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` "
      "must be specified"]),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
      "metadata": {"name": "np", "namespace": "default"},
      "spec": {"podSelector": {}, "ingress": [{
          "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}],
          "ports": [{"port": 80, "protocol": "ICMP"}]}]}},
     ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: '
      '"SCTP", "TCP", "UDP"',
      'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a '
      "strict subset of `cidr`"]),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
      "metadata": {"name": "np", "namespace": "default"},
      "spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]}},
     ['spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "10.0.0.300/8": must be a valid '
      "CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]),
    ({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
      "metadata": {"name": "web-abc", "namespace": "default"}, "addressType": "IPv5",
      "endpoints": [{"addresses": []}]},
     ['addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
      "endpoints[0].addresses: Required value: must contain at least 1 address"]),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"},
      "data": {"bad key": "x"}},
     ['data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric '
      "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
      "for validation is '[-._a-zA-Z0-9]+')"]),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
      "metadata": {"name": "r", "namespace": "d"}, "rules": [{"apiGroups": [""]}]},
     ["rules[0].verbs: Required value: verbs must contain at least one value",
      "rules[0].resources: Required value: resource rules must supply at least one resource"]),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
      "metadata": {"name": "rb", "namespace": "d"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
      "subjects": [{"kind": "Robot", "name": "x"}]},
     ['subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", '
      '"User", "Group"']),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
      "spec": {"controller": "nginx"}},
     ['spec.controller: Invalid value: "nginx": must be a domain-prefixed path (such as '
      '"acme.io/foo")']),
]


@pytest.mark.parametrize(("obj", "expected"), OTHER_CASES)
def test_other_kinds(obj: dict[str, Any], expected: list[str]) -> None:
    assert lines(validate_create(apply_defaults(obj))) == expected


def test_role_ref_cannot_change() -> None:
    old = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "rb", "namespace": "d"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}}
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "b"
    assert lines(validate_update(new, old)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", '
        'Name:"b"}: cannot change roleRef']


def test_immutable_configmap() -> None:
    old = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"},
           "immutable": True, "data": {"a": "1"}}
    new = {**old, "data": {"a": "2"}}
    assert lines(validate_update(new, old)) == [
        "data: Forbidden: field is immutable when `immutable` is set"]


def test_custom_resources_get_metadata_rules_only() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "Bad"},
           "spec": {"anything": True}}
    assert lines(validate_create(obj, namespaced=False)) == [
        f'metadata.name: Invalid value: "Bad": {DNS1123_SUBDOMAIN}']
