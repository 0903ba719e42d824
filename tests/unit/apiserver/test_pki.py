"""The cluster PKI: created once, reused, re-issued when stale; and TLS that kubectl, pods
and the Python client can all use."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from podnet.apiserver.authn import Authenticator
from podnet.apiserver.pki import Pki, client_ssl_context, ensure_pki, server_ssl_context


def sans(pem: bytes) -> tuple[set[str], set[str]]:
    ext = x509.load_pem_x509_certificate(pem).extensions
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        {str(i) for i in san.get_values_for_type(x509.IPAddress)},
        set(san.get_values_for_type(x509.DNSName)),
    )


def test_first_run_creates_everything(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    # P-256 for the CA, server and admin (cheap to make at `podnet up`); the
    # ServiceAccount signing key is RSA, as RS256 tokens need.
    for key_path in (pki.ca_key_path, pki.server_key_path, pki.admin_key_path):
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), key_path
        assert key.curve.name == "secp256r1"

    assert pki.directory == tmp_path / "pki"
    for p in (pki.ca_key_path, pki.server_key_path, pki.admin_key_path, pki.sa_key_path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(pki.directory.stat().st_mode) == 0o700

    ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650

    ips, names = sans(pki.server_cert_pem)
    assert ips == {"127.0.0.1", "10.96.0.1"}
    assert names == {
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    }
    server = x509.load_pem_x509_certificate(pki.server_cert_pem)
    assert server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == (
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    )
    server.verify_directly_issued_by(ca)

    admin = x509.load_pem_x509_certificate(pki.admin_cert_pem)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "kubernetes-admin"
    )
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:masters"
    )
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    admin.verify_directly_issued_by(ca)

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    sa_key = load_pem_private_key(pki.sa_key_pem, None)
    assert isinstance(sa_key, rsa.RSAPrivateKey) and sa_key.key_size == 2048
    assert b"PUBLIC KEY" in pki.sa_pub_pem


def test_second_run_loads_the_same_files(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path)
    second = ensure_pki(tmp_path)
    assert second == first


def test_changed_sans_reissue_only_the_serving_cert(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path)
    second = ensure_pki(tmp_path, extra_ips=("10.200.0.1",), extra_names=("podnet.local",))
    assert second.server_cert_pem != first.server_cert_pem
    assert second.ca_cert_pem == first.ca_cert_pem
    assert second.admin_cert_pem == first.admin_cert_pem
    assert second.sa_key_pem == first.sa_key_pem
    ips, names = sans(second.server_cert_pem)
    assert ips == {"127.0.0.1", "10.96.0.1", "10.200.0.1"}
    assert "podnet.local" in names
    # Asking again for the same SANs keeps the new certificate.
    assert ensure_pki(tmp_path, extra_ips=("10.200.0.1",), extra_names=("podnet.local",)) == second


def test_lost_ca_reissues_leaves_but_keeps_the_sa_key(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path)
    first.ca_key_path.unlink()
    second = ensure_pki(tmp_path)
    assert second.ca_cert_pem != first.ca_cert_pem
    ca = x509.load_pem_x509_certificate(second.ca_cert_pem)
    x509.load_pem_x509_certificate(second.server_cert_pem).verify_directly_issued_by(ca)
    x509.load_pem_x509_certificate(second.admin_cert_pem).verify_directly_issued_by(ca)
    assert second.sa_key_pem == first.sa_key_pem


def test_server_context_settings(tmp_path: Path) -> None:
    ctx = server_ssl_context(ensure_pki(tmp_path))
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


# --- TLS round trip ---------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(tmp_path)


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[int]:
    """An HTTPS server answering with the identity the authenticator finds."""
    authn = Authenticator()

    async def whoami(request: web.Request) -> web.Response:
        peercert = request.transport.get_extra_info("peercert") if request.transport else None
        user = authn.authenticate(peercert, request.headers.get("Authorization"))
        assert user is not None
        return web.json_response({"name": user.name, "groups": list(user.groups)})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(pki))
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        yield port
    finally:
        await runner.cleanup()


async def get_whoami(port: int, ctx: ssl.SSLContext) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"https://127.0.0.1:{port}/whoami", ssl=ctx) as resp,
    ):
        assert resp.status == 200
        body: dict[str, object] = await resp.json()
        return body


async def test_client_certificate_identity(pki: Pki, server: int) -> None:
    body = await get_whoami(server, client_ssl_context(pki, admin=True))
    assert body == {
        "name": "kubernetes-admin",
        "groups": ["system:masters", "system:authenticated"],
    }


async def test_client_without_certificate_still_connects(pki: Pki, server: int) -> None:
    body = await get_whoami(server, client_ssl_context(pki, admin=False))
    assert body == {"name": "system:anonymous", "groups": ["system:unauthenticated"]}


async def test_certificate_from_another_ca_is_refused(
    pki: Pki, server: int, tmp_path: Path
) -> None:
    stranger = ensure_pki(tmp_path / "other")
    ctx = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())
    ctx.load_cert_chain(str(stranger.admin_cert_path), str(stranger.admin_key_path))
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await get_whoami(server, ctx)


@pytest.mark.parametrize("hostname", ["127.0.0.1", "kubernetes.default.svc", "kubernetes"])
async def test_server_certificate_verifies_for_cluster_names(
    pki: Pki, server: int, hostname: str
) -> None:
    ctx = client_ssl_context(pki, admin=False)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", server, ssl=ctx, server_hostname=hostname
    )
    try:
        ssl_obj = writer.get_extra_info("ssl_object")
        assert ssl_obj.selected_alpn_protocol() == "http/1.1"
        peer = x509.load_der_x509_certificate(ssl_obj.getpeercert(binary_form=True))
        assert ipaddress.ip_address("10.96.0.1") in peer.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.IPAddress)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_server_certificate_fails_for_other_names(pki: Pki, server: int) -> None:
    ctx = client_ssl_context(pki, admin=False)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", server, ssl=ctx, server_hostname="evil.example")
