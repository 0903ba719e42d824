"""The record table, asked directly: every record kind of the Kubernetes DNS spec."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from podnet.dns.records import RCODE_NAMES, TYPE_CODES, Zone, ZoneFeeder
from tests.unit.dns import SOA_LINE, Cluster, service


class ZoneCluster(Cluster):
    def __init__(self) -> None:
        self.zone = Zone()
        super().__init__(ZoneFeeder(self.zone), lambda fn: fn())
        self.feeder.mark_synced()

    def query(self, name: str, rtype: str) -> tuple[str, list[str], list[str], list[str]]:
        ans = self.zone.lookup(name, TYPE_CODES[rtype])
        assert ans is not None, f"{name} is not in the zone"
        return (RCODE_NAMES[ans.rcode], [r.to_text() for r in ans.answers],
                [r.to_text() for r in ans.authority], [r.to_text() for r in ans.additional])


@pytest.fixture
def dns() -> ZoneCluster:
    return ZoneCluster()


WEB = "web.default.svc.cluster.local."


def test_schema_version(dns: ZoneCluster) -> None:
    assert dns.ask("dns-version.cluster.local.", "TXT") == [
        'dns-version.cluster.local. 5 IN TXT "1.1.0"']


def test_cluster_ip_service(dns: ZoneCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20", ports=[("http", 80, "TCP"), ("", 81, "TCP")])
    assert dns.ask(WEB, "A") == [f"{WEB} 5 IN A 10.96.0.20"]
    assert dns.ask("_http._tcp." + WEB, "SRV") == [
        f"_http._tcp.{WEB} 5 IN SRV 0 100 80 {WEB}"]
    assert dns.additional("_http._tcp." + WEB, "SRV") == [f"{WEB} 5 IN A 10.96.0.20"]
    assert dns.ask("20.0.96.10.in-addr.arpa.", "PTR") == [
        f"20.0.96.10.in-addr.arpa. 5 IN PTR {WEB}"]


def test_udp_port_srv_and_ipv6(dns: ZoneCluster) -> None:
    dns.add_service("dns", "kube-system", cluster_ip="fd00::a", ports=[("dns", 53, "UDP")])
    name = "dns.kube-system.svc.cluster.local."
    assert dns.ask(name, "AAAA") == [f"{name} 5 IN AAAA fd00::a"]
    assert dns.ask("_dns._udp." + name, "SRV") == [f"_dns._udp.{name} 5 IN SRV 0 100 53 {name}"]
    assert dns.rcode("_dns._tcp." + name, "SRV") == "NXDOMAIN"


def test_headless_service(dns: ZoneCluster) -> None:
    dns.add_service("db", headless=True)
    dns.set_endpoints("db", endpoints=[("10.244.0.7", "db-0", True), ("10.244.0.8", "", True),
                                       ("10.244.0.9", "db-2", False)],
                      ports=[("pg", 5432, "TCP"), ("metrics", 9187, "TCP")])
    db = "db.default.svc.cluster.local."
    assert dns.ask(db, "A") == [f"{db} 5 IN A 10.244.0.7", f"{db} 5 IN A 10.244.0.8"]
    assert dns.ask("db-0." + db, "A") == [f"db-0.{db} 5 IN A 10.244.0.7"]
    assert dns.ask("10-244-0-8." + db, "A") == [f"10-244-0-8.{db} 5 IN A 10.244.0.8"]
    assert dns.rcode("db-2." + db, "A") == "NXDOMAIN"  # not ready
    assert dns.ask("_pg._tcp." + db, "SRV") == [
        f"_pg._tcp.{db} 5 IN SRV 0 100 5432 db-0.{db}",
        f"_pg._tcp.{db} 5 IN SRV 0 100 5432 10-244-0-8.{db}"]
    assert dns.ask("_metrics._tcp." + db, "SRV") == [
        f"_metrics._tcp.{db} 5 IN SRV 0 100 9187 db-0.{db}",
        f"_metrics._tcp.{db} 5 IN SRV 0 100 9187 10-244-0-8.{db}"]
    assert dns.ask("7.0.244.10.in-addr.arpa.", "PTR") == [
        f"7.0.244.10.in-addr.arpa. 5 IN PTR db-0.{db}"]


def test_headless_without_ready_endpoints_is_nxdomain(dns: ZoneCluster) -> None:
    dns.add_service("db", headless=True)
    dns.set_endpoints("db", endpoints=[("10.244.0.9", "", False)])
    assert dns.query("db.default.svc.cluster.local.", "A") == ("NXDOMAIN", [], [SOA_LINE], [])


def test_publish_not_ready_addresses(dns: ZoneCluster) -> None:
    dns.add_service("db", headless=True, publish_not_ready=True)
    dns.set_endpoints("db", endpoints=[("10.244.0.9", "db-0", False)])
    assert dns.ask("db-0.db.default.svc.cluster.local.", "A") == [
        "db-0.db.default.svc.cluster.local. 5 IN A 10.244.0.9"]


def test_external_name(dns: ZoneCluster) -> None:
    dns.add_service("my-service", "prod", external_name="my.database.example.com")
    name = "my-service.prod.svc.cluster.local."
    ans = dns.zone.lookup(name, TYPE_CODES["A"])
    assert ans is not None and ans.chase == "my.database.example.com."
    assert dns.ask(name, "A") == [f"{name} 5 IN CNAME my.database.example.com."]


def test_external_name_chased_inside_the_zone(dns: ZoneCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    dns.add_service("alias", external_name="web.default.svc.cluster.local")
    assert dns.ask("alias.default.svc.cluster.local.", "A") == [
        f"alias.default.svc.cluster.local. 5 IN CNAME {WEB}", f"{WEB} 5 IN A 10.96.0.20"]
    dns.delete_service("web")
    assert dns.query("alias.default.svc.cluster.local.", "A") == (
        "NXDOMAIN", [f"alias.default.svc.cluster.local. 5 IN CNAME {WEB}"], [SOA_LINE], [])


def test_cname_loop_is_servfail(dns: ZoneCluster) -> None:
    dns.add_service("a", external_name="b.default.svc.cluster.local")
    dns.add_service("b", external_name="a.default.svc.cluster.local")
    assert dns.rcode("a.default.svc.cluster.local.", "A") == "SERVFAIL"


def test_pod_dashed_ip(dns: ZoneCluster) -> None:
    assert dns.ask("10-244-0-5.default.pod.cluster.local.", "A") == [
        "10-244-0-5.default.pod.cluster.local. 5 IN A 10.244.0.5"]
    assert dns.query("10-244-0-5.default.pod.cluster.local.", "AAAA") == (
        "NOERROR", [], [SOA_LINE], [])
    assert dns.rcode("not-an-ip.default.pod.cluster.local.", "A") == "NXDOMAIN"


def test_pod_dashed_ip_verified() -> None:
    zone = Zone(pods="verified")
    feed = ZoneFeeder(zone)
    c = ZoneCluster()
    c.zone, c.feeder = zone, feed
    c.add_pod("p", ip="10.244.0.5")
    assert c.ask("10-244-0-5.default.pod.cluster.local.", "A") == [
        "10-244-0-5.default.pod.cluster.local. 5 IN A 10.244.0.5"]
    assert c.rcode("10-244-0-6.default.pod.cluster.local.", "A") == "NXDOMAIN"
    assert c.rcode("10-244-0-5.other.pod.cluster.local.", "A") == "NXDOMAIN"


def test_pod_hostname_and_subdomain(dns: ZoneCluster) -> None:
    dns.add_pod("busybox-1", ip="10.244.0.11", hostname="busybox-1", subdomain="sub")
    name = "busybox-1.sub.default.svc.cluster.local."
    assert dns.rcode(name, "A") == "NXDOMAIN"  # no headless Service named `sub` yet
    dns.add_service("sub", headless=True)
    assert dns.ask(name, "A") == [f"{name} 5 IN A 10.244.0.11"]
    dns.delete_pod("busybox-1")
    assert dns.rcode(name, "A") == "NXDOMAIN"


def test_nxdomain_and_nodata(dns: ZoneCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    assert dns.query("nope.default.svc.cluster.local.", "A") == ("NXDOMAIN", [], [SOA_LINE], [])
    assert dns.query(WEB, "AAAA") == ("NOERROR", [], [SOA_LINE], [])  # NODATA
    assert dns.query(WEB, "TXT") == ("NOERROR", [], [SOA_LINE], [])
    assert dns.query("default.svc.cluster.local.", "A") == ("NOERROR", [], [SOA_LINE], [])
    assert dns.query("svc.cluster.local.", "A") == ("NOERROR", [], [SOA_LINE], [])
    assert dns.ask("cluster.local.", "SOA") == [SOA_LINE]
    dns.delete_service("web")
    assert dns.rcode("default.svc.cluster.local.", "A") == "NXDOMAIN"


def test_names_are_case_insensitive(dns: ZoneCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20")
    assert dns.ask("WeB.DeFault.SVC.cluster.LOCAL.", "A") == [f"{WEB} 5 IN A 10.96.0.20"]


def test_names_outside_the_zone_are_not_ours(dns: ZoneCluster) -> None:
    assert dns.zone.lookup("example.com.", TYPE_CODES["A"]) is None
    assert dns.zone.lookup("8.8.8.8.in-addr.arpa.", TYPE_CODES["PTR"]) is None


def test_changes_are_tracked_by_owner_name(dns: ZoneCluster) -> None:
    dns.add_service("web", cluster_ip="10.96.0.20", ports=[("http", 80, "TCP")])
    dns.zone.take_dirty()
    before = dns.zone.version
    dns.add_service("web", cluster_ip="10.96.0.21", ports=[("http", 80, "TCP")])
    assert dns.zone.version > before
    assert dns.zone.take_dirty() == {WEB, "20.0.96.10.in-addr.arpa.",
                                     "21.0.96.10.in-addr.arpa."}
    dns.add_service("web", cluster_ip="10.96.0.21", ports=[("http", 80, "TCP")])
    assert dns.zone.take_dirty() == set()  # the same object again changes nothing


@pytest.mark.parametrize("delete", [
    lambda c: c.delete_service("db"),
    lambda c: c.set_endpoints("db", endpoints=[]),
])
def test_deletes_remove_every_record(dns: ZoneCluster,
                                     delete: Callable[[ZoneCluster], None]) -> None:
    dns.add_service("db", headless=True)
    dns.set_endpoints("db", endpoints=[("10.244.0.7", "db-0", True)], ports=[("pg", 5432, "TCP")])
    delete(dns)
    assert dns.rcode("db-0.db.default.svc.cluster.local.", "A") == "NXDOMAIN"
    assert dns.rcode("_pg._tcp.db.default.svc.cluster.local.", "SRV") == "NXDOMAIN"
    assert dns.zone.lookup("7.0.244.10.in-addr.arpa.", TYPE_CODES["PTR"]) is None


def test_replace_all_after_relist(dns: ZoneCluster) -> None:
    dns.add_service("old", cluster_ip="10.96.0.30")
    dns.zone.replace_all([service("web", cluster_ip="10.96.0.20")], [], [])
    assert dns.rcode("old.default.svc.cluster.local.", "A") == "NXDOMAIN"
    assert dns.ask(WEB, "A") == [f"{WEB} 5 IN A 10.96.0.20"]
