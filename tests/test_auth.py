"""SPEC §2: every API route against every credential case, and the order of the checks.

The routes come from the app itself (`api_routes()`), so a route added later is covered without
editing this file: its path parameters are filled in from the path template."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.responses import Response

from service import messages
from service.app import api_routes, create_app
from service.auth import CACHE_LIMIT, Authenticator
from service.db import Database
from service.endpoint import ApiRoute, Context, api_route
from service.errors import Unauthorized
from service.projects import queries as project_queries
from service.projects.service import SCOPES, create_key, create_project, key_digest
from service.settings import InvalidSetting, Settings
from tests.conftest import Lookups, error_of, guid

SECRET = "test-secret-of-at-least-thirty-two-bytes!"
ISSUER = "https://issuer.test/"
AUDIENCE = "relation-registry"
BAD_VERSION = {"Api-Version": "3"}

# ---------------------------------------------------------------------------------------------------------
# Routes, with concrete paths generated from their templates


def all_api_routes() -> list[ApiRoute]:
    """Every route behind the credential checks (health, docs and metrics have no scope)."""
    return [single for route in api_routes() if isinstance(route, ApiRoute) for single in route.per_method()]


ROUTES = all_api_routes()
ROUTE_IDS = [f"{next(iter(route.methods or {'?'} - {'HEAD'}))} {route.path}" for route in ROUTES]
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
FIXED_GUID = "0b6f1a7e-8f3c-4c1e-9d3a-5d2f6b7c8e9a"


def method_of(route: ApiRoute) -> str:
    return next(iter((route.methods or set()) - {"HEAD"}))


def concrete_path(route: ApiRoute, values: Mapping[str, str] | None = None) -> str:
    """`route.path` with every `{param}` filled: from `values` by name, else a plausible value."""

    def fill(found: re.Match[str]) -> str:
        name, convertor = found.group(1), found.group(2)
        if values and name in values:
            return values[name]
        if convertor == "int" or name == "id":
            return "1"
        if "guid" in name or name in ("uuid", "parent", "child"):
            return FIXED_GUID
        if "alias" in name or name == "type":
            return "relateDocumentOnCopy"
        return "x"

    return _PARAM.sub(fill, route.path)


def request_body(route: ApiRoute) -> bytes | None:
    """A body for methods that carry one (its validity does not matter before the credential checks)."""
    if method_of(route) in ("POST", "PUT", "PATCH"):
        return b"{}"
    return None


def test_concrete_paths_from_templates() -> None:
    """Routes added later get their parameters from the template (e.g. the child-list routes)."""
    child_list = api_route("/relation/parent/{guid}/{alias}", _noop, method="PATCH", name="t", scope="x")
    assert concrete_path(child_list) == f"/relation/parent/{FIXED_GUID}/relateDocumentOnCopy"
    by_id = api_route("/relation/{id:int}", _noop, method="GET", name="t", scope="x")
    assert concrete_path(by_id) == "/relation/1"
    assert concrete_path(by_id, {"id": "42"}) == "/relation/42"


async def _noop(ctx: Context) -> Response:
    return Response()


def test_routes_are_found() -> None:
    paths = {(method_of(route), route.path) for route in ROUTES}
    assert ("GET", "/relation/{id:int}") in paths
    assert ("POST", "/relation") in paths
    assert ("DELETE", "/relation/type/{alias}") in paths
    assert all(route.scope in SCOPES for route in ROUTES)
    assert not any(route.path.startswith("/health") for route in ROUTES)


# ---------------------------------------------------------------------------------------------------------
# Tokens


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hand_made_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token PyJWT would refuse to make (alg none, HS256 over a public key)."""
    encoded = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return encoded + "." + _b64(signature)


def hs256_with_secret(claims: dict[str, Any], secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def pem_pair(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


RSA_PRIVATE, RSA_PUBLIC = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
OTHER_RSA_PRIVATE, _ = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PRIVATE, EC_PUBLIC = pem_pair(ec.generate_private_key(ec.SECP256R1()))


def claims_for(project: str, scope: str = " ".join(SCOPES), **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "project": project,
        "scope": scope,
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def rs256(claims: dict[str, Any], private_pem: str = RSA_PRIVATE) -> str:
    return jwt.encode(claims, private_pem, algorithm="RS256")


def es256(claims: dict[str, Any], private_pem: str = EC_PRIVATE) -> str:
    return jwt.encode(claims, private_pem, algorithm="ES256")


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---------------------------------------------------------------------------------------------------------
# Apps configured for JWT, and the credentials the cases use


def jwt_settings(database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "key_cache_seconds": 0,
        "jwt_secret": SECRET,
        "jwt_public_key": RSA_PUBLIC,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "pool_min_size": 1,
        "pool_max_size": 4,
    }
    values.update(changes)
    return Settings(**values)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """`app` with its lifespan, behind an in-process client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture(scope="module")
async def jwt_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Secret (HS*) and RSA public key (RS*) configured, with issuer and audience."""
    async with serving(create_app(jwt_settings(database_url))) as http:
        yield http


@pytest.fixture(scope="module")
async def public_key_only_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Only a public key configured: HS* must never be accepted (the algorithm-confusion attack)."""
    async with serving(create_app(jwt_settings(database_url, jwt_secret=None))) as http:
        yield http


@dataclass
class Credentials:
    """Project `alias` with keys of every scope set, a revoked key, and a second project."""

    alias: str
    other: str
    full_key: str
    revoked_key: str
    keys_by_scope: dict[str, str] = field(default_factory=dict)
    keys_without_scope: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def creds(db: Database) -> Credentials:
    alias = f"auth-{uuid.uuid4().hex[:10]}"
    other = f"auth-other-{uuid.uuid4().hex[:10]}"
    await create_project(db, project=other)
    full = await create_key(db, project=alias, scopes=list(SCOPES), name="full")
    revoked = await create_key(db, project=alias, scopes=list(SCOPES), name="revoked")
    assert await project_queries.revoke_key(db, key_id=revoked.key_id) is not None
    found = Credentials(alias, other, full.key, revoked.key)
    for scope in SCOPES:
        found.keys_by_scope[scope] = (await create_key(db, project=alias, scopes=[scope])).key
        rest = [other_scope for other_scope in SCOPES if other_scope != scope]
        found.keys_without_scope[scope] = (await create_key(db, project=alias, scopes=rest)).key
    return found


# ---------------------------------------------------------------------------------------------------------
# The cases: each gives headers and query for one route


@dataclass(frozen=True)
class Case:
    name: str
    status: int  # 401, 403, or 0 for "passes the credential checks"
    make: Callable[[Credentials, ApiRoute], tuple[dict[str, str], dict[str, str]]]
    public_key_only: bool = False


def _h(**headers: str) -> Callable[[Credentials, ApiRoute], tuple[dict[str, str], dict[str, str]]]:
    return lambda creds, route: (dict(headers), {})


def _unknown_key() -> str:
    return "rr_" + "0" * 12 + "_" + "A" * 43


CASES = [
    # 401: no, bad, expired or revoked credentials
    Case("none", 401, _h()),
    Case("empty bearer", 401, _h(Authorization="Bearer")),
    Case("unknown scheme", 401, _h(Authorization="Token abc")),
    Case("bearer not a jwt", 401, _h(Authorization="Bearer not-a-jwt")),
    Case("basic not base64", 401, _h(Authorization="Basic %%%")),
    Case("unknown key", 401, _h(**{"Api-Key": _unknown_key()})),
    Case("garbage key", 401, _h(**{"Api-Key": "letmein"})),
    Case("basic unknown key", 401, _h(Authorization=basic(_unknown_key()))),
    Case("basic with password", 401, lambda c, r: ({"Authorization": basic(c.full_key, "secret")}, {})),
    Case(
        "basic without colon",
        401,
        lambda c, r: ({"Authorization": "Basic " + base64.b64encode(c.full_key.encode()).decode()}, {}),
    ),
    Case("basic key as password", 401, lambda c, r: ({"Authorization": basic("", c.full_key)}, {})),
    Case("revoked key", 401, lambda c, r: ({"Api-Key": c.revoked_key}, {})),
    Case("revoked key basic", 401, lambda c, r: ({"Authorization": basic(c.revoked_key)}, {})),
    Case(
        "wrong signature",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for(c.alias), "another-secret-" * 3)}, {}),
    ),
    Case(
        "wrong rsa signature",
        401,
        lambda c, r: ({"Authorization": "Bearer " + rs256(claims_for(c.alias), OTHER_RSA_PRIVATE)}, {}),
    ),
    Case(
        "alg none",
        401,
        lambda c, r: (
            {
                "Authorization": "Bearer "
                + hand_made_token({"alg": "none", "typ": "JWT"}, claims_for(c.alias))
            },
            {},
        ),
    ),
    Case(
        "hs256 signed with the public key",
        401,
        lambda c, r: (
            {"Authorization": "Bearer " + hs256_with_secret(claims_for(c.alias), RSA_PUBLIC.encode())},
            {},
        ),
        public_key_only=True,
    ),
    Case(
        "hs256 when only a public key is configured",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for(c.alias))}, {}),
        public_key_only=True,
    ),
    Case(
        "expired",
        401,
        lambda c, r: (
            {"Authorization": "Bearer " + hs256(claims_for(c.alias, exp=int(time.time()) - 3600))},
            {},
        ),
    ),
    Case(
        "not yet valid",
        401,
        lambda c, r: (
            {"Authorization": "Bearer " + hs256(claims_for(c.alias, nbf=int(time.time()) + 3600))},
            {},
        ),
    ),
    Case(
        "wrong audience",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for(c.alias, aud="someone-else"))}, {}),
    ),
    Case(
        "missing audience",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for(c.alias, aud=None))}, {}),
    ),
    Case(
        "wrong issuer",
        401,
        lambda c, r: (
            {"Authorization": "Bearer " + rs256(claims_for(c.alias, iss="https://evil.test/"))},
            {},
        ),
    ),
    Case(
        "missing exp",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for(c.alias, exp=None))}, {}),
    ),
    Case(
        "unknown project",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for("no-such-project-" + c.alias))}, {}),
    ),
    Case(
        "invalid project claim",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for(c.alias.upper() + "\x00"))}, {}),
    ),
    Case(
        "project claim not a string",
        401,
        lambda c, r: ({"Authorization": "Bearer " + hs256({**claims_for(c.alias), "project": ["x"]})}, {}),
    ),
    # 403: a valid credential, but a missing scope or another project
    Case("key missing scope", 403, lambda c, r: ({"Api-Key": c.keys_without_scope[r.scope]}, {})),
    Case(
        "token missing scope",
        403,
        lambda c, r: (
            {
                "Authorization": "Bearer "
                + hs256(claims_for(c.alias, scope=" ".join(s for s in SCOPES if s != r.scope)))
            },
            {},
        ),
    ),
    Case(
        "other project header", 403, lambda c, r: ({"Api-Key": c.full_key, "Umb-Project-Alias": c.other}, {})
    ),
    Case("other project query", 403, lambda c, r: ({"Api-Key": c.full_key}, {"Umb-Project-Alias": c.other})),
    Case(
        "own header, other project query",
        403,
        lambda c, r: ({"Api-Key": c.full_key, "Umb-Project-Alias": c.alias}, {"Umb-Project-Alias": c.other}),
    ),
    Case(
        "token other project header",
        403,
        lambda c, r: (
            {"Authorization": "Bearer " + rs256(claims_for(c.alias)), "Umb-Project-Alias": c.other},
            {},
        ),
    ),
    Case(
        "project alias differs in case",
        403,
        lambda c, r: ({"Api-Key": c.full_key, "Umb-Project-Alias": c.alias.upper()}, {}),
    ),
    Case(
        "unknown project alias",
        403,
        lambda c, r: ({"Api-Key": c.full_key, "Umb-Project-Alias": "no-such-project"}, {}),
    ),
    # Passing the credential checks (the positive controls that make the failures above meaningful)
    Case("key of all scopes", 0, lambda c, r: ({"Api-Key": c.full_key}, {})),
    Case("key of the route's scope only", 0, lambda c, r: ({"Api-Key": c.keys_by_scope[r.scope]}, {})),
    Case("basic", 0, lambda c, r: ({"Authorization": basic(c.keys_by_scope[r.scope])}, {})),
    Case(
        "own project header and query",
        0,
        lambda c, r: ({"Api-Key": c.full_key, "Umb-Project-Alias": c.alias}, {"Umb-Project-Alias": c.alias}),
    ),
    Case(
        "hs256",
        0,
        lambda c, r: ({"Authorization": "Bearer " + hs256(claims_for(c.alias, scope=r.scope))}, {}),
    ),
    Case(
        "rs256",
        0,
        lambda c, r: ({"Authorization": "Bearer " + rs256(claims_for(c.alias, scope=r.scope))}, {}),
    ),
    Case(
        "token within leeway",
        0,
        lambda c, r: (
            {"Authorization": "Bearer " + hs256(claims_for(c.alias, exp=int(time.time()) - 5))},
            {},
        ),
    ),
]


def assert_denied(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    error = error_of(response)
    if status == 401:
        assert error == {"code": "Unauthorized", "message": messages.UNAUTHORIZED}
    else:
        assert error == {"code": "Forbidden", "message": messages.FORBIDDEN}
    assert response.headers["content-type"] == "application/hal+json"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_credential_matrix(
    route: ApiRoute,
    case: Case,
    creds: Credentials,
    jwt_client: httpx.AsyncClient,
    public_key_only_client: httpx.AsyncClient,
) -> None:
    headers, query = case.make(creds, route)
    client = public_key_only_client if case.public_key_only else jwt_client
    if request_body(route) is not None:
        headers["Content-Type"] = "application/json"
    response = await client.request(
        method_of(route), concrete_path(route), headers=headers, params=query, content=request_body(route)
    )
    if case.status:
        assert_denied(response, case.status)
    else:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text


# ---------------------------------------------------------------------------------------------------------
# Other algorithms and configurations


async def test_es256_when_an_ec_key_is_configured(database_url: str, creds: Credentials) -> None:
    settings = jwt_settings(database_url, jwt_secret=None, jwt_public_key=EC_PUBLIC)
    async with serving(create_app(settings)) as client:
        ok = await client.get(
            "/relation/type", headers={"Authorization": "Bearer " + es256(claims_for(creds.alias))}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["_totalItems"] == 6
        # An RS256 token cannot be checked against an EC key, and HS256 has no secret here.
        for token in (rs256(claims_for(creds.alias)), hs256(claims_for(creds.alias))):
            assert_denied(
                await client.get("/relation/type", headers={"Authorization": "Bearer " + token}), 401
            )


async def test_hmac_algorithms_follow_the_secret_length(database_url: str, creds: Credentials) -> None:
    claims = claims_for(creds.alias)
    # SECRET is 41 bytes: long enough for HS256 only.
    async with serving(create_app(jwt_settings(database_url))) as client:
        for algorithm in ("HS384", "HS512"):
            token = jwt.encode(claims, SECRET + "x" * 30, algorithm=algorithm)
            assert_denied(
                await client.get("/relation/type", headers={"Authorization": f"Bearer {token}"}), 401
            )
    long_secret = "s" * 64
    async with serving(create_app(jwt_settings(database_url, jwt_secret=long_secret))) as client:
        for algorithm in ("HS256", "HS384", "HS512"):
            token = jwt.encode(claims, long_secret, algorithm=algorithm)
            ok = await client.get("/relation/type", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200, (algorithm, ok.text)


def test_short_secret_is_refused_at_start(database_url: str) -> None:
    with pytest.raises(InvalidSetting, match="at least 32 bytes"):
        create_app(jwt_settings(database_url, jwt_secret="too-short"))


def test_public_key_must_be_rsa_or_ec(database_url: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(InvalidSetting, match="RSA or EC"):
        create_app(jwt_settings(database_url, jwt_public_key=public))


async def test_issuer_and_audience_unchecked_when_not_configured(
    database_url: str, creds: Credentials
) -> None:
    settings = jwt_settings(database_url, jwt_issuer=None, jwt_audience=None)
    async with serving(create_app(settings)) as client:
        token = hs256(claims_for(creds.alias, iss="https://anyone.test/", aud="anything"))
        ok = await client.get("/relation/type", headers={"Authorization": "Bearer " + token})
        assert ok.status_code == 200, ok.text
        assert_denied(
            await client.get(
                "/relation/type",
                headers={"Authorization": "Bearer " + hs256(claims_for(creds.alias, exp=None))},
            ),
            401,
        )


async def test_no_jwt_configured_refuses_every_token(client: httpx.AsyncClient, creds: Credentials) -> None:
    # The session app has neither a secret nor a public key.
    for token in (hs256(claims_for(creds.alias)), rs256(claims_for(creds.alias))):
        assert_denied(await client.get("/relation/type", headers={"Authorization": "Bearer " + token}), 401)


async def test_key_in_any_header_form(client: httpx.AsyncClient, creds: Credentials) -> None:
    for headers in (
        {"Api-Key": creds.full_key},
        {"api-key": creds.full_key},
        {"Authorization": basic(creds.full_key)},
        {"Authorization": "basic " + base64.b64encode(f"{creds.full_key}:".encode()).decode()},
    ):
        response = await client.get("/relation/type", headers=headers)
        assert response.status_code == 200, (headers, response.text)


async def test_bearer_takes_precedence_over_api_key(client: httpx.AsyncClient, creds: Credentials) -> None:
    # A bad Authorization header is not rescued by a good Api-Key: the request is refused as sent.
    response = await client.get(
        "/relation/type", headers={"Authorization": "Bearer nonsense", "Api-Key": creds.full_key}
    )
    assert_denied(response, 401)


# ---------------------------------------------------------------------------------------------------------
# Revocation: immediate with the test cache of 0 s; within the production bound otherwise


async def test_revoked_key_fails_at_once_without_cache(
    client: httpx.AsyncClient, db: Database, creds: Credentials
) -> None:
    new = await create_key(db, project=creds.alias, scopes=list(SCOPES))
    assert (await client.get("/relation/type", headers={"Api-Key": new.key})).status_code == 200
    await project_queries.revoke_key(db, key_id=new.key_id)
    assert_denied(await client.get("/relation/type", headers={"Api-Key": new.key}), 401)


async def test_revoked_key_fails_once_the_cache_expires(
    database_url: str, db: Database, creds: Credentials
) -> None:
    settings = Settings(database_url=database_url, key_cache_seconds=1, pool_min_size=1, pool_max_size=2)
    async with serving(create_app(settings)) as client:
        new = await create_key(db, project=creds.alias, scopes=list(SCOPES))
        assert (await client.get("/relation/type", headers={"Api-Key": new.key})).status_code == 200
        await project_queries.revoke_key(db, key_id=new.key_id)
        await asyncio.sleep(1.2)
        assert_denied(await client.get("/relation/type", headers={"Api-Key": new.key}), 401)


def test_key_cache_is_bounded_by_five_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELATIONS_KEY_CACHE_SECONDS", "3600")
    assert Settings.from_env().key_cache_seconds == 5
    monkeypatch.delenv("RELATIONS_KEY_CACHE_SECONDS")
    assert Settings.from_env().key_cache_seconds == 5


async def test_key_use_is_recorded(client: httpx.AsyncClient, db: Database, creds: Credentials) -> None:
    new = await create_key(db, project=creds.alias, scopes=["relations:read"], name="recorded")
    before = {row["key_id"]: row for row in await project_queries.list_keys(db, project=creds.alias)}
    assert before[new.key_id]["last_used_at"] is None
    assert (await client.get("/relation/type", headers={"Api-Key": new.key})).status_code == 200
    after = {row["key_id"]: row for row in await project_queries.list_keys(db, project=creds.alias)}
    assert after[new.key_id]["last_used_at"] is not None
    assert after[new.key_id]["name"] == "recorded"


async def test_keys_are_stored_only_as_digests(db: Database, creds: Credentials) -> None:
    new = await create_key(db, project=creds.alias, scopes=list(SCOPES))
    assert re.fullmatch(r"rr_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", new.key)
    # 43 url-safe base64 characters are 32 random bytes
    assert len(base64.urlsafe_b64decode(new.key[len("rr_0123456789ab_") :] + "=")) == 32
    stored = await db.fetchrow("SELECT * FROM api_key WHERE key_id = $1", new.key_id)
    assert stored is not None
    assert bytes(stored["digest"]) == hashlib.sha256(new.key.encode()).digest()
    assert all(new.key not in str(value) for value in dict(stored).values())


# ---------------------------------------------------------------------------------------------------------
# Order of checks: route (404) and method (405), then version (400), then credentials (401/403),
# then the request itself


UNUSED_METHOD = "TRACE"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_wrong_method_before_version_and_credentials(
    client: httpx.AsyncClient, route: ApiRoute
) -> None:
    assert all(UNUSED_METHOD not in (other.methods or ()) for other in ROUTES)
    response = await client.request(UNUSED_METHOD, concrete_path(route), headers=BAD_VERSION)
    assert response.status_code == 405, response.text
    assert error_of(response)["code"] == "MethodNotAllowed"


async def test_unknown_route_before_version_and_credentials(client: httpx.AsyncClient) -> None:
    for path in ("/nothing-here", "/relations", "/relation/1/2", "/relation/type/a/b/c/d"):
        response = await client.get(path, headers=BAD_VERSION)
        assert response.status_code == 404, (path, response.text)
        assert error_of(response)["code"] == "NotFound"


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_version_before_credentials(client: httpx.AsyncClient, route: ApiRoute) -> None:
    response = await client.request(method_of(route), concrete_path(route), headers=BAD_VERSION)
    assert response.status_code == 400, response.text
    assert error_of(response) == {
        "code": "BadRequest",
        "message": messages.INVALID_VERSION.format(version="3"),
    }


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_credentials_before_the_request(
    client: httpx.AsyncClient, creds: Credentials, route: ApiRoute
) -> None:
    """A broken body and bad query parameters are not looked at before the credential checks."""
    path = concrete_path(route, {"guid": "not-a-guid", "id": "1"})
    query = {"page": "0", "pageSize": "-1", "dependency": "maybe", "force": "maybe"}
    broken = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    no_credential = await client.request(method_of(route), path, params=query, **broken)  # type: ignore[arg-type]
    assert_denied(no_credential, 401)
    headers = {"Content-Type": "application/json", "Api-Key": creds.keys_without_scope[route.scope]}
    wrong_scope = await client.request(
        method_of(route), path, params=query, content=b"{not json", headers=headers
    )
    assert_denied(wrong_scope, 403)


async def test_request_checked_after_credentials(client: httpx.AsyncClient, creds: Credentials) -> None:
    headers = {"Api-Key": creds.full_key, "Content-Type": "application/json"}
    broken = await client.post("/relation", content=b"{not json", headers=headers)
    assert broken.status_code == 400 and error_of(broken)["code"] == "BadRequest"
    invalid = await client.post("/relation", json={"parentId": "x"}, headers=headers)
    assert invalid.status_code == 422 and error_of(invalid)["code"] == "ValidationFailed"
    bad_guid = await client.get("/relation/parent/not-a-guid", headers=headers)
    assert bad_guid.status_code == 400 and error_of(bad_guid)["code"] == "BadRequest"
    missing = await client.get("/relation/987654321", headers=headers)
    assert missing.status_code == 404
    assert error_of(missing)["message"] == messages.RELATION_NOT_FOUND.format(id=987654321)
    bad_page = await client.get(f"/relation/parent/{guid()}?page=0", headers=headers)
    assert bad_page.status_code == 400 and error_of(bad_page)["message"] == messages.INVALID_PAGE


async def test_backendless_type_creation_needs_the_types_scope(
    client: httpx.AsyncClient, db: Database, creds: Credentials
) -> None:
    """`name:ObjectType:n` in a child-list path creates a type: relations:write alone is not enough."""
    parent = guid()
    alias = f"made{uuid.uuid4().hex[:8]}"
    path = f"/relation/parent/{parent}/{alias}:ARTICLE:n"
    write_only = {"Api-Key": creds.keys_without_scope["relation-types:write"]}
    refused = await client.post(path, json=[guid()], headers=write_only)
    assert_denied(refused, 403)
    exists = "SELECT count(*) FROM relation_type WHERE project = $1 AND alias = $2"
    assert await db.fetchval(exists, creds.alias, alias) == 0
    allowed = await client.post(path, json=[guid()], headers={"Api-Key": creds.full_key})
    assert allowed.status_code == 200, allowed.text
    assert await db.fetchval(exists, creds.alias, alias) == 1


# ---------------------------------------------------------------------------------------------------------
# Hardening (issue 11): unknown keys cached apart, JWT times as numbers, a maximum token lifetime


async def test_a_made_up_key_costs_one_lookup_per_cache_period(
    database_url: str, db: Database, creds: Credentials, key_lookups: Lookups
) -> None:
    authenticator = Authenticator(Settings(database_url=database_url, key_cache_seconds=5), db)
    made_up = "rr_000000000000_" + "B" * 43
    for _ in range(50):
        with pytest.raises(Unauthorized):
            await authenticator.authenticate({"api-key": made_up})
    assert key_lookups.count == 1
    # A real key is still looked up (and then cached) beside the unknown ones.
    new = await create_key(db, project=creds.alias, scopes=list(SCOPES))
    for _ in range(3):
        assert (await authenticator.authenticate({"api-key": new.key})).key_id == new.key_id
    assert key_lookups.count == 2


async def test_unknown_keys_cannot_evict_known_ones(
    database_url: str, db: Database, creds: Credentials
) -> None:
    authenticator = Authenticator(Settings(database_url=database_url, key_cache_seconds=5), db)
    new = await create_key(db, project=creds.alias, scopes=list(SCOPES))
    await authenticator.authenticate({"api-key": new.key})
    await project_queries.revoke_key(db, key_id=new.key_id)  # the cached answer stands for 5 s
    for index in range(CACHE_LIMIT + 10):
        made_up = f"rr_{index:012x}_" + "C" * 43
        authenticator._unknown_keys.put(key_digest(made_up), None)
    assert (await authenticator.authenticate({"api-key": new.key})).key_id == new.key_id


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_time_claims_given_as_strings_are_401(
    jwt_client: httpx.AsyncClient, creds: Credentials, claim: str
) -> None:
    now = int(time.time())
    value = {"exp": str(now + 600), "nbf": str(now - 10), "iat": str(now)}[claim]
    token = hs256(claims_for(creds.alias, **{claim: value}))
    assert_denied(await jwt_client.get("/relation/type", headers={"Authorization": f"Bearer {token}"}), 401)


async def test_time_claims_given_as_booleans_are_401(
    jwt_client: httpx.AsyncClient, creds: Credentials
) -> None:
    token = hs256(claims_for(creds.alias, nbf=True))
    assert_denied(await jwt_client.get("/relation/type", headers={"Authorization": f"Bearer {token}"}), 401)


async def test_a_maximum_token_lifetime(database_url: str, creds: Credentials) -> None:
    now = int(time.time())
    settings = jwt_settings(database_url, jwt_max_lifetime_seconds=3600)
    cases = {
        "within": (claims_for(creds.alias, iat=now, exp=now + 3000), 200),
        "float exp within": (claims_for(creds.alias, iat=now, exp=now + 3000.5), 200),
        "too far from now": (claims_for(creds.alias, iat=None, exp=now + 7200), 401),
        "too far from iat": (claims_for(creds.alias, iat=now - 3000, exp=now + 1000), 401),
    }
    async with serving(create_app(settings)) as client:
        for name, (claims, status) in cases.items():
            answer = await client.get("/relation/type", headers={"Authorization": f"Bearer {hs256(claims)}"})
            assert answer.status_code == status, name
