"""healthCheckNodePort answers, as the bytes an external load balancer reads."""

from __future__ import annotations

from podnet.proxy.healthcheck import Target, response
from podnet.proxy.proxier import health_targets


def svc(hc: int | None) -> dict[str, object]:
    spec: dict[str, object] = {"type": "LoadBalancer", "clusterIP": "10.96.0.20",
                               "externalTrafficPolicy": "Local",
                               "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                          "targetPort": 8080, "nodePort": 30080}]}
    if hc:
        spec["healthCheckNodePort"] = hc
    return {"metadata": {"namespace": "default", "name": "web"}, "spec": spec}


def slice_(*eps: tuple[str, str, bool]) -> dict[str, object]:
    return {"metadata": {"namespace": "default", "name": "web-abc",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": node,
                           "conditions": {"ready": ready, "serving": ready}}
                          for ip, node, ready in eps]}


def test_200_with_local_endpoints_503_without() -> None:
    ok = response(Target("default", "web", 2)).decode()
    assert ok.startswith("HTTP/1.1 200 OK\r\n")
    assert ok.endswith('{"service": {"namespace": "default", "name": "web"}, '
                       '"localEndpoints": 2, "serviceProxyHealthy": true}')
    assert response(Target("default", "web", 0)).decode().startswith(
        "HTTP/1.1 503 Service Unavailable\r\n")


def test_targets_count_only_this_nodes_ready_endpoints() -> None:
    slices = [slice_(("10.244.0.5", "node-0", True), ("10.244.0.6", "node-0", False),
                     ("10.244.1.5", "node-1", True))]
    assert health_targets([svc(32000)], slices, "node-0") == {
        32000: Target("default", "web", 1)}
    assert health_targets([svc(None)], slices, "node-0") == {}
