"""Cluster DNS per the Kubernetes DNS-Based Service Discovery specification."""

from podnet.dns.forward import Forwarder, default_upstreams
from podnet.dns.querylog import QueryLog, QueryLogEntry
from podnet.dns.records import Answer, Record, Zone, ZoneFeeder
from podnet.dns.server import DnsServer

__all__ = ["Answer", "DnsServer", "Forwarder", "QueryLog", "QueryLogEntry", "Record", "Zone",
           "ZoneFeeder", "default_upstreams"]
