"""A container's environment as `env` inside the pod would print it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from podnet.agent import envvars
from podnet.agent.envvars import ContainerConfigError

KUBERNETES = {
    "metadata": {"name": "kubernetes", "namespace": "default"},
    "spec": {
        "clusterIP": "10.96.0.1",
        "ports": [{"name": "https", "port": 443, "protocol": "TCP"}],
    },
}


def svc(name: str, ns: str, ip: str, *ports: tuple[str, int, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "clusterIP": ip,
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
        },
    }


def pod(ns: str = "shop", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web-0",
            "namespace": ns,
            "uid": "0d9c-uid",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": 'say "hi"'},
        },
        "spec": {"nodeName": "node-0", "serviceAccountName": "default", **spec},
        "status": {"podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}], "hostIP": "10.250.0.2"},
    }


def lines(env: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in env.items()]


def test_service_links_for_every_service_in_the_namespace() -> None:
    services = [
        KUBERNETES,
        svc("redis-primary", "shop", "10.96.0.20", ("", 6379, "TCP")),
        svc("dns", "shop", "10.96.0.30", ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")),
        svc("headless", "shop", "None", ("", 80, "TCP")),
        svc("other-ns", "elsewhere", "10.96.0.40", ("", 80, "TCP")),
        {"metadata": {"name": "ext", "namespace": "shop"}, "spec": {"type": "ExternalName"}},
    ]
    env = envvars.container_env(pod(), {"name": "c"}, services)
    assert lines(env) == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOSTNAME=web-0",
        "DNS_SERVICE_HOST=10.96.0.30",
        "DNS_SERVICE_PORT=53",
        "DNS_SERVICE_PORT_DNS=53",
        "DNS_SERVICE_PORT_DNS_TCP=53",
        "DNS_PORT=udp://10.96.0.30:53",
        "DNS_PORT_53_UDP=udp://10.96.0.30:53",
        "DNS_PORT_53_UDP_PROTO=udp",
        "DNS_PORT_53_UDP_PORT=53",
        "DNS_PORT_53_UDP_ADDR=10.96.0.30",
        "DNS_PORT_53_TCP=tcp://10.96.0.30:53",
        "DNS_PORT_53_TCP_PROTO=tcp",
        "DNS_PORT_53_TCP_PORT=53",
        "DNS_PORT_53_TCP_ADDR=10.96.0.30",
        "KUBERNETES_SERVICE_HOST=10.96.0.1",
        "KUBERNETES_SERVICE_PORT=443",
        "KUBERNETES_SERVICE_PORT_HTTPS=443",
        "KUBERNETES_PORT=tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO=tcp",
        "KUBERNETES_PORT_443_TCP_PORT=443",
        "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1",
        "REDIS_PRIMARY_SERVICE_HOST=10.96.0.20",
        "REDIS_PRIMARY_SERVICE_PORT=6379",
        "REDIS_PRIMARY_PORT=tcp://10.96.0.20:6379",
        "REDIS_PRIMARY_PORT_6379_TCP=tcp://10.96.0.20:6379",
        "REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp",
        "REDIS_PRIMARY_PORT_6379_TCP_PORT=6379",
        "REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.96.0.20",
    ]


def test_enable_service_links_false_keeps_only_kubernetes() -> None:
    services = [KUBERNETES, svc("web", "shop", "10.96.0.20", ("http", 80, "TCP"))]
    env = envvars.container_env(pod(enableServiceLinks=False), {"name": "c"}, services)
    assert [k for k in env if k.startswith("WEB_")] == []
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"


def test_kubernetes_variables_even_without_the_service_listed() -> None:
    env = envvars.container_env(pod(enableServiceLinks=False), {"name": "c"}, [])
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"


def test_env_in_order_with_expansion() -> None:
    container = {
        "name": "c",
        "env": [
            {"name": "GREETING", "value": "hello"},
            {"name": "MSG", "value": "$(GREETING) world"},
            {"name": "ESCAPED", "value": "$$(GREETING) costs $$5"},
            {"name": "UNKNOWN", "value": "$(NOPE) and $(OPEN"},
            {
                "name": "SVC",
                "value": "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)",
            },
            {"name": "LATER", "value": "$(DEFINED_BELOW)"},
            {"name": "DEFINED_BELOW", "value": "x"},
            {"name": "EMPTY"},
        ],
    }
    env = envvars.container_env(pod(hostname="db"), container, [KUBERNETES])
    assert lines(env)[:10] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOSTNAME=db",
        "GREETING=hello",
        "MSG=hello world",
        "ESCAPED=$(GREETING) costs $5",
        "UNKNOWN=$(NOPE) and $(OPEN",
        "SVC=https://10.96.0.1:443",
        "LATER=$(DEFINED_BELOW)",
        "DEFINED_BELOW=x",
        "EMPTY=",
    ]


def test_expand_edge_cases() -> None:
    ctx = {"A": "1"}
    assert envvars.expand("$(A)$(A)", ctx) == "11"
    assert envvars.expand("$A $", ctx) == "$A $"
    assert envvars.expand("$$$(A)", ctx) == "$1"
    assert envvars.expand_args(["echo", "$(A)"], ctx) == ["echo", "1"]


def test_field_refs() -> None:
    def ref(path: str) -> dict[str, Any]:
        return {"name": path, "valueFrom": {"fieldRef": {"fieldPath": path}}}

    paths = [
        "metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels['app']",
        "metadata.annotations['note']", "metadata.labels", "spec.nodeName",
        "spec.serviceAccountName", "status.podIP", "status.podIPs", "status.hostIP",
        "status.hostIPs",
    ]  # fmt: skip
    env = envvars.container_env(pod(), {"name": "c", "env": [ref(p) for p in paths]}, [])
    assert [env[p] for p in paths] == [
        "web-0", "shop", "0d9c-uid", "web", 'say "hi"', 'app="web"\ntier="front"', "node-0",
        "default", "10.244.0.5", "10.244.0.5", "10.250.0.2", "10.250.0.2",
    ]  # fmt: skip


def test_unsupported_field_path() -> None:
    c = {"name": "c", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.x"}}}]}
    with pytest.raises(ContainerConfigError, match=r"unsupported fieldPath: spec\.x"):
        envvars.container_env(pod(), c, [])


def test_resource_field_refs() -> None:
    container = {
        "name": "c",
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
    }

    def value(resource: str, divisor: str | None = None) -> str:
        ref: dict[str, Any] = {"resource": resource}
        if divisor:
            ref["divisor"] = divisor
        return envvars.resource_field_value(ref, container, {"cpu": "2", "memory": "4Gi"})

    assert value("limits.cpu") == "1"  # ceiling of 0.5
    assert value("limits.cpu", "1m") == "500"
    assert value("requests.cpu", "1m") == "250"
    assert value("limits.memory") == str(128 * 2**20)
    assert value("limits.memory", "1Mi") == "128"
    assert value("requests.memory", "1Mi") == "128"  # requests default to limits
    bare = {"name": "c"}
    assert (
        envvars.resource_field_value(
            {"resource": "limits.memory", "divisor": "1Gi"}, bare, {"memory": "4Gi"}
        )
        == "4"
    )  # node allocatable


CONFIGMAPS = {
    ("shop", "settings"): {"data": {"LOG_LEVEL": "debug", "mode": "fast", "bad-key!": "x"}},
}
SECRETS = {
    ("shop", "creds"): {"data": {"password": base64.b64encode(b"s3cr3t").decode()}},
}


def lookup(table: dict[tuple[str, str], dict[str, Any]]) -> envvars.Lookup:
    return lambda ns, name: table.get((ns, name))


def build(container: dict[str, Any]) -> dict[str, str]:
    return envvars.container_env(
        pod(), container, [], configmaps=lookup(CONFIGMAPS), secrets=lookup(SECRETS)
    )


def test_env_from_with_prefix_and_env_overrides() -> None:
    env = build({
        "name": "c",
        "envFrom": [
            {"configMapRef": {"name": "settings"}, "prefix": "APP_"},
            {"secretRef": {"name": "creds"}},
            {"configMapRef": {"name": "missing", "optional": True}},
        ],
        "env": [{"name": "APP_mode", "value": "slow"}],
    })  # fmt: skip
    assert lines(env)[2:6] == [
        "APP_LOG_LEVEL=debug",
        "APP_mode=slow",
        "password=s3cr3t",
        "KUBERNETES_SERVICE_HOST=10.96.0.1",
    ]
    assert "APP_bad-key!" not in env


def test_key_refs() -> None:
    env = build({
        "name": "c",
        "env": [
            {"name": "LEVEL",
             "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LOG_LEVEL"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "OPT",
             "valueFrom": {"secretKeyRef": {"name": "creds", "key": "x", "optional": True}}},
        ],
    })  # fmt: skip
    assert env["LEVEL"] == "debug"
    assert env["PW"] == "s3cr3t"
    assert "OPT" not in env


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"configMapKeyRef": {"name": "settings", "key": "nope"}},
         "couldn't find key nope in ConfigMap shop/settings"),
        ({"configMapKeyRef": {"name": "gone", "key": "k"}}, 'configmap "gone" not found'),
        ({"secretKeyRef": {"name": "creds", "key": "user"}},
         "couldn't find key user in Secret shop/creds"),
        ({"secretKeyRef": {"name": "gone", "key": "k"}}, 'secret "gone" not found'),
    ],
)  # fmt: skip
def test_missing_sources_are_create_container_config_errors(
    source: dict[str, Any], message: str
) -> None:
    with pytest.raises(ContainerConfigError) as err:
        build({"name": "c", "env": [{"name": "X", "valueFrom": source}]})
    assert str(err.value) == message
    assert err.value.reason == "CreateContainerConfigError"


def test_missing_env_from_configmap() -> None:
    with pytest.raises(ContainerConfigError, match='configmap "nope" not found'):
        build({"name": "c", "envFrom": [{"configMapRef": {"name": "nope"}}]})


def test_declared_env_wins_over_service_links() -> None:
    c = {"name": "c", "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "example"}]}
    env = envvars.container_env(pod(), c, [KUBERNETES])
    assert env["KUBERNETES_SERVICE_HOST"] == "example"
    assert list(env).index("KUBERNETES_SERVICE_HOST") == 2
