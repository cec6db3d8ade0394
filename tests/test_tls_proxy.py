"""HTTPS served by `relations serve` itself, https hrefs behind a TLS-terminating proxy (forwarded
headers trusted only from RELATIONS_TRUSTED_PROXIES), and CORS for browser back offices."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from service import messages
from service.app import create_app
from service.middleware import TrustedProxies
from service.settings import Settings
from tests.conftest import Project, error_of, guid
from tests.processes import running_service


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relations test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def relation_body() -> dict[str, str]:
    return {"parentId": guid(), "childId": guid(), "relationTypeAlias": "relateDocumentOnCopy"}


async def test_https_with_a_self_signed_certificate(
    database_url: str, project: Project, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    async with running_service(
        database_url,
        tmp_path,
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        scheme="https",
        verify=trust,
    ) as service:
        async with httpx.AsyncClient(base_url=service.base_url, verify=trust) as http:
            created = await http.post("/relation", json=relation_body(), headers=project.headers)
            assert created.status_code == 201, created.text
            base = f"https://127.0.0.1:{service.port}"
            assert created.headers["location"] == f"{base}/relation/{created.json()['_id']}"
            assert created.json()["_links"]["relationType"]["href"] == (
                f"{base}/relation/type/relateDocumentOnCopy"
            )
        async with httpx.AsyncClient(verify=True) as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"{service.base_url}/health/live")


async def test_tls_files_from_the_environment(database_url: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    env = {"RELATIONS_TLS_CERT": str(cert), "RELATIONS_TLS_KEY": str(key)}
    async with (
        running_service(database_url, tmp_path, env=env, scheme="https", verify=trust) as service,
        httpx.AsyncClient(verify=trust) as http,
    ):
        assert (await http.get(f"{service.base_url}/health/ready")).status_code == 200


async def test_hrefs_behind_a_proxy_over_a_socket(
    database_url: str, project: Project, tmp_path: Path
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.example.com"}
    async with (
        running_service(database_url, tmp_path) as service,  # trusts 127.0.0.1 by default
        httpx.AsyncClient(base_url=service.base_url) as http,
    ):
        created = await http.post("/relation", json=relation_body(), headers={**project.headers, **forwarded})
        direct = await http.get("/relation/type/umbMedia", headers=project.headers)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"https://registry.example.com/relation/{created.json()['_id']}"
    assert (
        direct.json()["_links"]["self"]["href"] == f"http://127.0.0.1:{service.port}/relation/type/umbMedia"
    )


async def proxied_client(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://internal:8000")


FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "api.example.com:8443",
    "X-Forwarded-For": "198.51.100.7, 127.0.0.1",
}


async def test_forwarded_headers_from_a_trusted_address(app: Starlette, project: Project) -> None:
    async with await proxied_client(app, "127.0.0.1") as http:
        listed = await http.get("/relation/type", headers={**project.headers, **FORWARDED})
    assert listed.status_code == 200
    assert listed.json()["_links"]["self"]["href"].startswith("https://api.example.com:8443/relation/type?")


async def test_forwarded_headers_from_anyone_else_are_ignored(app: Starlette, project: Project) -> None:
    async with await proxied_client(app, "203.0.113.9") as http:
        listed = await http.get("/relation/type", headers={**project.headers, **FORWARDED})
    assert listed.status_code == 200
    assert listed.json()["_links"]["self"]["href"].startswith("http://internal:8000/relation/type?")


async def forwarded_scope(trusted: tuple[str, ...], client: str, headers: dict[str, str]) -> Scope:
    """The scope an app behind TrustedProxies sees."""
    seen: dict[str, Scope] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen["scope"] = scope

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    scope: dict[str, Any] = {
        "type": "http",
        "scheme": "http",
        "client": (client, 5000),
        "headers": [(b"host", b"internal")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }
    await TrustedProxies(inner, trusted=trusted)(scope, receive, send)
    return seen["scope"]


async def test_trusted_networks_and_the_client_address() -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.1, 10.1.2.3, 10.9.9.9"}
    scope = await forwarded_scope(("10.0.0.0/8",), "10.0.0.5", headers)
    assert scope["scheme"] == "https"
    assert scope["client"] == ("192.0.2.1", 0)  # the nearest address that is not a proxy of ours
    untrusted = await forwarded_scope(("10.0.0.0/8",), "11.0.0.5", headers)
    assert untrusted["scheme"] == "http" and untrusted["client"] == ("11.0.0.5", 5000)
    anyone = await forwarded_scope(("*",), "11.0.0.5", {"X-Forwarded-Proto": "https"})
    assert anyone["scheme"] == "https"


@pytest.mark.parametrize(
    "host", ["evil.example/path", "a b", "example.com:99999999", "x@evil", "<script>", "h" * 300]
)
async def test_malformed_forwarded_hosts_are_ignored(host: str) -> None:
    scope = await forwarded_scope(("127.0.0.1",), "127.0.0.1", {"X-Forwarded-Host": host})
    assert dict(scope["headers"])[b"host"] == b"internal"


async def test_forwarded_proto_other_than_http_or_https_is_ignored() -> None:
    scope = await forwarded_scope(("127.0.0.1",), "127.0.0.1", {"X-Forwarded-Proto": "javascript"})
    assert scope["scheme"] == "http"


ORIGIN = "https://backoffice.example"


@pytest.fixture
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=settings.database_url, cors_origins=(ORIGIN,), pool_min_size=1))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_cors_preflight_from_an_allowed_origin(cors_client: httpx.AsyncClient) -> None:
    answer = await cors_client.options(
        "/relation",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "api-key, content-type, idempotency-key, if-match",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    allowed = answer.headers["access-control-allow-headers"].lower()
    for header in ("api-key", "idempotency-key", "if-match", "authorization", "umb-project-alias"):
        assert header in allowed


async def test_cors_preflight_from_another_origin_is_refused_in_the_envelope(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.options(
        "/relation", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert answer.status_code == 400
    assert error_of(answer) == {
        "code": "BadRequest",
        "message": messages.CORS_DISALLOWED.format(failures="origin"),
    }


async def test_cors_answers_expose_location_and_etag(
    cors_client: httpx.AsyncClient, project: Project
) -> None:
    created = await cors_client.post(
        "/relation", json=relation_body(), headers={**project.headers, "Origin": ORIGIN}
    )
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == ORIGIN
    exposed = created.headers["access-control-expose-headers"].lower()
    assert "location" in exposed and "etag" in exposed and "x-request-id" in exposed


async def test_cors_is_off_by_default(client: httpx.AsyncClient, project: Project) -> None:
    listed = await client.get("/relation/type", headers={**project.headers, "Origin": ORIGIN})
    assert "access-control-allow-origin" not in listed.headers
    preflight = await client.options(
        "/relation", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 405
    assert error_of(preflight)["code"] == "MethodNotAllowed"
