"""Cluster DNS from inside pods (and from the host), through kube-dns at 10.96.0.10."""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import ROOT, Cluster, apply, wait_for

NS = "dns"

OBJECTS = """
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: dns}
spec:
  containers:
  - name: py
    image: python:3.11
    command: [python3, -c, "import time; time.sleep(100000)"]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dns}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 9376}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: dns, labels: {app: web}}
spec:
  hostname: web-0
  subdomain: web
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/agnhost:2.39
    args: [serve-hostname]
    readinessProbe: {tcpSocket: {port: 9376}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: dns, labels: {app: web}}
spec:
  hostname: web-1
  subdomain: web
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/agnhost:2.39
    args: [serve-hostname]
    readinessProbe: {tcpSocket: {port: 9376}, periodSeconds: 1}
"""






def in_pod(cluster: Cluster, code: str) -> str:
    return cluster.kubectl("exec", "-n", NS, "client", "--", "python3", "-c",
                           textwrap.dedent(code)).stdout.strip()


def ask(cluster: Cluster, name: str, rdtype: str) -> list[str]:
    """Answers as zone-file lines, from dnspython inside the pod (its resolv.conf)."""
    out = in_pod(cluster, f"""
        import dns.resolver
        try:
            ans = dns.resolver.resolve({name!r}, {rdtype!r}, search=False)
            for rr in ans.rrset:
                print(ans.rrset.name, ans.rrset.ttl, "IN", {rdtype!r}, rr.to_text())
        except dns.resolver.NXDOMAIN:
            print("NXDOMAIN")
        except dns.resolver.NoAnswer:
            print("NODATA")
        """)
    return sorted(out.splitlines())


@pytest.fixture(scope="module")
def dns_ns(cluster: Cluster) -> Iterator[Cluster]:
    cluster.kubectl("create", "namespace", NS)
    apply(cluster, OBJECTS)
    cluster.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "01-service-clusterip"))
    for pod in ("client", "web-0", "web-1"):
        cluster.kubectl("wait", "-n", NS, "--for=condition=Ready", f"pod/{pod}",
                        "--timeout=60s", timeout=90)
    yield cluster
    cluster.kubectl("delete", "namespace", NS, "--wait=true", timeout=120)


def test_service_names_resolve_through_the_search_path(dns_ns: Cluster) -> None:
    ip = dns_ns.kubectl("get", "svc", "-n", NS, "my-service", "-o",
                        "jsonpath={.spec.clusterIP}").stdout
    out = in_pod(dns_ns, """
        import socket
        for n in ["my-service", "my-service.dns", "my-service.dns.svc.cluster.local",
                  "kubernetes.default.svc"]:
            print(socket.getaddrinfo(n, 80, type=socket.SOCK_STREAM)[0][4][0])
        """)
    assert out.splitlines() == [ip, ip, ip, "10.96.0.1"]


def test_record_kinds_as_zone_file_lines(dns_ns: Cluster) -> None:
    ip = dns_ns.kubectl("get", "svc", "-n", NS, "my-service", "-o",
                        "jsonpath={.spec.clusterIP}").stdout
    assert ask(dns_ns, "my-service.dns.svc.cluster.local.", "A") == [
        f"my-service.dns.svc.cluster.local. 5 IN A {ip}"]
    assert ask(dns_ns, "_https._tcp.kubernetes.default.svc.cluster.local.", "SRV") == [
        "_https._tcp.kubernetes.default.svc.cluster.local. 5 IN SRV 0 100 443 "
        "kubernetes.default.svc.cluster.local."]
    rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa."
    assert ask(dns_ns, rev, "PTR") == [f"{rev} 5 IN PTR my-service.dns.svc.cluster.local."]
    pods = {p["metadata"]["name"]: p["status"]["podIP"] for p in dns_ns.kubectl_json(
        "get", "pods", "-n", NS, "-l", "app=web")["items"]}
    assert ask(dns_ns, "web.dns.svc.cluster.local.", "A") == sorted(
        f"web.dns.svc.cluster.local. 5 IN A {pip}" for pip in pods.values())
    assert ask(dns_ns, "web-0.web.dns.svc.cluster.local.", "A") == [
        f"web-0.web.dns.svc.cluster.local. 5 IN A {pods['web-0']}"]
    assert ask(dns_ns, "_http._tcp.web.dns.svc.cluster.local.", "SRV") == sorted(
        # Headless: one SRV per endpoint, with the endpoint's own port.
        f"_http._tcp.web.dns.svc.cluster.local. 5 IN SRV 0 100 9376 "
        f"{h}.web.dns.svc.cluster.local." for h in ("web-0", "web-1"))
    dashed = pods["web-1"].replace(".", "-")
    assert ask(dns_ns, f"{dashed}.dns.pod.cluster.local.", "A") == [
        f"{dashed}.dns.pod.cluster.local. 5 IN A {pods['web-1']}"]
    assert ask(dns_ns, "my-service.dns.svc.cluster.local.", "AAAA") == ["NODATA"]
    assert ask(dns_ns, "nothere.dns.svc.cluster.local.", "A") == ["NXDOMAIN"]


def test_external_name_is_a_cname_and_answers_change(dns_ns: Cluster) -> None:
    dns_ns.kubectl("apply", "-n", NS, "-f",
                   str(ROOT / "examples" / "04-service-externalname"))
    assert wait_for(lambda: ask(dns_ns, "my-service.dns.svc.cluster.local.", "CNAME") == [
        "my-service.dns.svc.cluster.local. 5 IN CNAME my.database.example.com."],
        what="CNAME")
    # Back to a ClusterIP Service: the answer follows the change.
    dns_ns.kubectl("delete", "svc", "-n", NS, "my-service")
    dns_ns.kubectl("apply", "-n", NS, "-f", str(ROOT / "examples" / "01-service-clusterip"))
    ip = dns_ns.kubectl("get", "svc", "-n", NS, "my-service", "-o",
                        "jsonpath={.spec.clusterIP}").stdout
    wait_for(lambda: ask(dns_ns, "my-service.dns.svc.cluster.local.", "A") == [
        f"my-service.dns.svc.cluster.local. 5 IN A {ip}"], what="A after change")


def test_the_host_can_query_kube_dns_too(dns_ns: Cluster) -> None:
    out = subprocess.run(["python3", "-c", textwrap.dedent("""
        import socket, struct
        q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
        for part in "kubernetes.default.svc.cluster.local".split("."):
            q += bytes([len(part)]) + part.encode()
        q += b"\\x00" + struct.pack(">HH", 1, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(q, ("10.96.0.10", 53))
        r = s.recv(512)
        print(".".join(str(b) for b in r[-4:]))
        """)], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "10.96.0.1", out.stderr
