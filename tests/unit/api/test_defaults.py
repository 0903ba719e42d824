"""Defaulting: what `kubectl get -o yaml` shows after applying a minimal manifest."""

from __future__ import annotations

from typing import Any

import pytest

from podnet.api.defaults import (
    apply_defaults,
    drop_type_dependent_fields,
    image_tag,
    patch_allocated_values,
    pod_qos_class,
    pod_template_defaults,
)


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": base}


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "my-service", "namespace": "default"}, "spec": spec}


def test_pod_gets_kubernetes_defaults() -> None:
    out = apply_defaults(pod())
    assert out["spec"] == {
        "containers": [{
            "name": "app", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
            "resources": {}, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable",
             "operator": "Exists", "tolerationSeconds": 300},
        ],
    }
    assert out["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_defaults_return_a_copy() -> None:
    original = pod()
    apply_defaults(original)
    assert "dnsPolicy" not in original["spec"]


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.27", "IfNotPresent"),
    ("localhost:5000/team/app", "Always"),  # registry port is not a tag
    ("localhost:5000/team/app:v2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),  # digest, no tag
])
def test_image_pull_policy(image: str, policy: str) -> None:
    out = apply_defaults(pod(containers=[{"name": "app", "image": image}]))
    assert out["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_image_tag() -> None:
    assert image_tag("registry.k8s.io/e2e-test-images/agnhost:2.52") == "2.52"


def test_container_details() -> None:
    c = {
        "name": "app", "image": "busybox", "imagePullPolicy": "Never",
        "ports": [{"containerPort": 8080}],
        "livenessProbe": {"httpGet": {"port": 8080}},
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    }
    out = apply_defaults(pod(containers=[c]))["spec"]["containers"][0]
    assert out["imagePullPolicy"] == "Never"  # never overwritten
    assert out["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert out["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
    }
    assert out["readinessProbe"]["periodSeconds"] == 5
    assert out["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName",
                                                      "apiVersion": "v1"}


def test_volumes() -> None:
    out = apply_defaults(pod(volumes=[
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
        {"name": "scratch"},
    ]))
    assert out["spec"]["volumes"] == [
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
        {"name": "scratch", "emptyDir": {}},
    ]


def test_host_network_ports_mirror_container_ports() -> None:
    out = apply_defaults(pod(hostNetwork=True, containers=[
        {"name": "app", "image": "x:1", "ports": [{"containerPort": 53}]}]))
    assert out["spec"]["containers"][0]["ports"] == [
        {"containerPort": 53, "protocol": "TCP", "hostPort": 53}]


def test_existing_toleration_for_all_keys_suppresses_defaults() -> None:
    out = apply_defaults(pod(tolerations=[{"operator": "Exists"}]))
    assert out["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_update_defaults_skip_admission_fields() -> None:
    out = apply_defaults(pod(), create=False)
    assert "serviceAccountName" not in out["spec"]
    assert "tolerations" not in out["spec"]
    assert "status" not in out
    assert out["spec"]["dnsPolicy"] == "ClusterFirst"


def resources(requests: dict[str, str] | None = None,
              limits: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


QOS = [
    ([{}], "BestEffort"),
    ([resources(requests={"cpu": "100m"})], "Burstable"),
    ([resources(limits={"cpu": "500m", "memory": "128Mi"})], "Guaranteed"),  # requests copied
    ([resources(requests={"cpu": "0.5", "memory": "128Mi"},
                limits={"cpu": "500m", "memory": "134217728"})], "Guaranteed"),
    ([resources(requests={"cpu": "250m", "memory": "128Mi"},
                limits={"cpu": "500m", "memory": "128Mi"})], "Burstable"),
    ([resources(limits={"cpu": "1", "memory": "1Gi"}), {}], "Burstable"),
    ([resources(requests={"ephemeral-storage": "1Gi"})], "BestEffort"),  # only cpu/memory count
]


@pytest.mark.parametrize(("per_container", "qos"), QOS)
def test_qos_class(per_container: list[dict[str, Any]], qos: str) -> None:
    containers = [{"name": f"c{i}", "image": "x:1", "resources": r}
                  for i, r in enumerate(per_container)]
    out = apply_defaults(pod(containers=containers))
    assert out["status"]["qosClass"] == qos
    assert pod_qos_class(out["spec"]) == qos


def test_pod_template_defaults_are_scheme_defaults_only() -> None:
    spec = pod_template_defaults({"containers": [
        {"name": "a", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}]})
    assert spec["restartPolicy"] == "Always"
    assert "enableServiceLinks" not in spec
    assert "serviceAccountName" not in spec
    assert "requests" not in spec["containers"][0]["resources"]


# --- services -------------------------------------------------------------------------


SERVICE_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        {"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
         "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
         "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]},
    ),
    (
        {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}]},
        {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}],
         "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
         "externalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack",
         "ipFamilies": ["IPv4"]},
    ),
    (
        {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 8443}]},
        {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 8443, "protocol": "TCP"}],
         "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
         "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True,
         "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]},
    ),
    (
        {"type": "ExternalName", "externalName": "db.example.com"},
        {"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"},
    ),
    (
        {"clusterIP": "None", "ports": [{"port": 53}]},  # headless, no selector
        {"clusterIP": "None", "ports": [{"port": 53, "protocol": "TCP", "targetPort": 53}],
         "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
         "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4"]},
    ),
    (
        {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]},
        {"sessionAffinity": "ClientIP",
         "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
         "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "ClusterIP",
         "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack",
         "ipFamilies": ["IPv4"]},
    ),
]


@pytest.mark.parametrize(("spec", "expected"), SERVICE_CASES)
def test_service_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    out = apply_defaults(service(**spec))
    assert out["spec"] == expected
    assert out["status"] == {"loadBalancer": {}}


# --- Service type changes through kubectl apply ----------------------------------------


def stored(spec: dict[str, Any]) -> dict[str, Any]:
    """A Service as the API server would hold it: defaulted, then allocated."""
    return apply_defaults(service(**spec))


CLUSTER_IP = stored({"selector": {"app": "web"}, "ports": [{"port": 80}],
                     "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"]})


def test_clusterip_to_nodeport_keeps_cluster_ip() -> None:
    new = {**CLUSTER_IP, "spec": {**CLUSTER_IP["spec"], "type": "NodePort"}}
    out = drop_type_dependent_fields(CLUSTER_IP, apply_defaults(new))
    assert out["spec"]["clusterIP"] == "10.96.0.20"


def lb_service() -> dict[str, Any]:
    spec = dict(CLUSTER_IP["spec"])
    spec.update({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": True,
                 "externalTrafficPolicy": "Cluster",
                 "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80,
                            "nodePort": 30080}]})
    return {**CLUSTER_IP, "spec": spec,
            "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.1"}]}}}


def test_loadbalancer_to_externalname_drops_allocated_fields() -> None:
    old = lb_service()
    # What the three-way merge of `kubectl apply` produces: the manifest's fields over the
    # live object, allocated values untouched.
    merged = {**old, "spec": {**old["spec"], "type": "ExternalName",
                              "externalName": "my.database.example.com"}}
    merged["spec"].pop("selector")
    out = drop_type_dependent_fields(old, apply_defaults(merged, create=False))
    assert out["spec"] == {
        "type": "ExternalName", "externalName": "my.database.example.com",
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
    }
    assert out["status"] == {"loadBalancer": {}}


def test_user_changed_values_are_kept_for_validation_to_judge() -> None:
    old = lb_service()
    merged = {**old, "spec": {**old["spec"], "type": "ClusterIP",
                              "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30099}]}}
    out = drop_type_dependent_fields(old, merged)
    assert out["spec"]["ports"][0]["nodePort"] == 30099  # net-new nodePort: not ours to drop
    assert "allocateLoadBalancerNodePorts" not in out["spec"]
    assert "externalTrafficPolicy" not in out["spec"]


def test_healthcheck_node_port_dropped_with_local_policy() -> None:
    old = lb_service()
    old["spec"].update({"externalTrafficPolicy": "Local", "healthCheckNodePort": 31000})
    new = {**old, "spec": {**old["spec"], "externalTrafficPolicy": "Cluster"}}
    out = drop_type_dependent_fields(old, new)
    assert "healthCheckNodePort" not in out["spec"]


def test_patch_allocated_values_for_replace() -> None:
    old = lb_service()
    replaced = apply_defaults(service(type="LoadBalancer", selector={"app": "web"},
                                      ports=[{"port": 80}]), create=False)
    out = patch_allocated_values(old, replaced)
    assert out["spec"]["clusterIP"] == "10.96.0.20"
    assert out["spec"]["ports"][0]["nodePort"] == 30080


# --- everything else --------------------------------------------------------------------


def test_deployment_defaults() -> None:
    out = apply_defaults({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    })
    spec = out["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"


def test_recreate_strategy_gets_no_rolling_update() -> None:
    out = apply_defaults({"apiVersion": "apps/v1", "kind": "Deployment",
                          "spec": {"strategy": {"type": "Recreate"}, "replicas": 0}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    assert out["spec"]["replicas"] == 0


def test_replicaset_defaults() -> None:
    out = apply_defaults({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                          "spec": {"template": {"spec": {"containers": []}}}})
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_namespace_defaults() -> None:
    out = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    assert out["metadata"]["labels"] == {"kubernetes.io/metadata.name": "shop"}
    assert out["spec"] == {"finalizers": ["kubernetes"]}
    assert out["status"] == {"phase": "Active"}


def test_namespace_update_does_not_bring_back_the_finalizer() -> None:
    out = apply_defaults({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"},
                          "spec": {"finalizers": []}, "status": {"phase": "Terminating"}},
                         create=False)
    assert out["spec"] == {"finalizers": []}
    assert out["status"] == {"phase": "Terminating"}


SIMPLE: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"apiVersion": "v1", "kind": "Secret"}, {"apiVersion": "v1", "kind": "Secret",
                                              "type": "Opaque"}),
    ({"apiVersion": "v1", "kind": "Endpoints", "subsets": [{"ports": [{"port": 80}]}]},
     {"apiVersion": "v1", "kind": "Endpoints",
      "subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}),
    ({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "ports": [{"port": 80}]},
     {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
      "ports": [{"port": 80, "name": "", "protocol": "TCP"}]}),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
      "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}},
     {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
      "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}]}],
               "policyTypes": ["Ingress"]}}),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
      "spec": {"podSelector": {}, "egress": [{}]}},
     {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
      "spec": {"podSelector": {}, "egress": [{}], "policyTypes": ["Ingress", "Egress"]}}),
    ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
      "roleRef": {"kind": "Role", "name": "r"},
      "subjects": [{"kind": "User", "name": "jane"},
                   {"kind": "ServiceAccount", "name": "default", "namespace": "x"}]},
     {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
      "roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"},
      "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"},
                   {"kind": "ServiceAccount", "name": "default", "namespace": "x"}]}),
    ({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}},
     {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}),
    ({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}},
     {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}}),
]


@pytest.mark.parametrize(("obj", "expected"), SIMPLE)
def test_simple_kinds(obj: dict[str, Any], expected: dict[str, Any]) -> None:
    assert apply_defaults(obj) == expected
