"""Credentials → a Principal (project + scopes): API keys in three header forms, and JWTs.

Key lookups are cached per worker for at most `key_cache_seconds` (≤ 5), so a revoked key fails on
every worker within that bound while the hot path costs no query. Unknown keys are remembered as
long, in a cache of their own (a flood of made-up keys cannot evict the real ones), so a repeated
made-up key costs no query either."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from service.db import Database
from service.errors import Unauthorized
from service.projects import queries
from service.projects.service import key_digest, plausible_key, valid_project_alias
from service.rate_limits.policy import RatePolicy
from service.settings import InvalidSetting, Settings

READ = "relations:read"
WRITE = "relations:write"
TYPES_WRITE = "relation-types:write"
WEBHOOKS_WRITE = "webhooks:write"

MAX_CREDENTIAL_LENGTH = 8192
MAX_SUBJECT_LENGTH = 256
CACHE_LIMIT = 10_000
# Registered JWT claims that are times: NumericDate (RFC 7519 §2), a JSON number. PyJWT also takes a
# string of digits; we do not.
TIME_CLAIMS = ("exp", "nbf", "iat")
# RFC 7518 §3.2: an HMAC key at least as long as the hash. A secret too short for HS384/HS512 only
# enables the shorter ones; one too short for HS256 is refused at start-up.
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


class LookupNeeded(Exception):
    """`authenticate(..., offline=True)` could not decide without asking the database."""


@dataclass(frozen=True)
class Principal:
    project: str
    scopes: frozenset[str]
    key_id: str | None = None
    subject: str = ""  # a token's `sub` ("" when it has none)
    rate_limit: RatePolicy | None = None  # the key's own budget, else RELATIONS_RATE_LIMIT applies

    @property
    def credential(self) -> str:
        """What a budget belongs to: the API key, or the token subject within its project."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        return f"jwt:{self.project}:{self.subject}"


class _TtlCache:
    """A small time-bounded map; cleared whole when it grows past its limit."""

    def __init__(self, seconds: float, limit: int = CACHE_LIMIT) -> None:
        self.seconds = seconds
        self.limit = limit
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> tuple[bool, Any]:
        if self.seconds <= 0:
            return False, None
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: Any, value: Any) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.seconds, value)


def _asymmetric_algorithms(pem: str) -> tuple[Any, tuple[str, ...]]:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        raise InvalidSetting("RELATIONS_JWT_PUBLIC_KEY is not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        return key, ("RS256", "RS384", "RS512")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key, ("ES256", "ES384", "ES512")
    raise InvalidSetting("RELATIONS_JWT_PUBLIC_KEY must be an RSA or EC public key")


class Authenticator:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._keys = _TtlCache(settings.key_cache_seconds)
        self._unknown_keys = _TtlCache(settings.key_cache_seconds)
        self._projects = _TtlCache(settings.key_cache_seconds)
        self._verifiers: dict[str, Any] = {}
        if settings.jwt_secret:
            length = len(settings.jwt_secret.encode())
            if length < HMAC_MIN_BYTES["HS256"]:
                raise InvalidSetting("RELATIONS_JWT_SECRET must be at least 32 bytes (RFC 7518 §3.2)")
            for algorithm, minimum in HMAC_MIN_BYTES.items():
                if length >= minimum:
                    self._verifiers[algorithm] = settings.jwt_secret
        if settings.jwt_public_key:
            public_key, algorithms = _asymmetric_algorithms(settings.jwt_public_key)
            for algorithm in algorithms:
                self._verifiers[algorithm] = public_key

    async def authenticate(self, headers: Mapping[str, str], *, offline: bool = False) -> Principal:
        """`headers`: lower-case names (the endpoint picks them from the request in one pass).
        `offline`: decide from the caches alone, or raise LookupNeeded (a client address that has used
        up its failed authentications may still use a credential this worker knows)."""
        authorization = headers.get("authorization")
        api_key = headers.get("api-key")
        if len(authorization or "") > MAX_CREDENTIAL_LENGTH or len(api_key or "") > MAX_CREDENTIAL_LENGTH:
            raise Unauthorized()
        if authorization:
            scheme, _, credential = authorization.strip().partition(" ")
            scheme = scheme.lower()
            credential = credential.strip()
            if scheme == "bearer" and credential:
                return await self._from_token(credential, offline)
            if scheme == "basic" and credential:
                return await self._from_key(_basic_key(credential), offline)
            raise Unauthorized()
        if api_key:
            return await self._from_key(api_key.strip(), offline)
        raise Unauthorized()

    async def _from_key(self, key: str, offline: bool) -> Principal:
        # A string that cannot be a key costs no query (hostile input never reaches the database).
        if not plausible_key(key):
            raise Unauthorized()
        digest = key_digest(key)
        cached, principal = self._keys.get(digest)
        if not cached:
            if self._unknown_keys.get(digest)[0]:
                raise Unauthorized()
            if offline:
                raise LookupNeeded()
            row = await queries.key_by_digest(self.db, digest=digest)
            if row is None:
                # Kept apart from the known keys: a flood of made-up keys must not evict real ones.
                self._unknown_keys.put(digest, None)
                raise Unauthorized()
            principal = None
            if row["revoked_at"] is None:
                limit = None
                if row["rate_per_second"] is not None:
                    limit = RatePolicy(row["rate_per_second"], row["rate_burst"])
                principal = Principal(
                    row["project"], frozenset(row["scopes"]), row["key_id"], rate_limit=limit
                )
                await queries.touch_key(self.db, key_id=row["key_id"])
            self._keys.put(digest, principal)
        if principal is None:
            raise Unauthorized()
        assert isinstance(principal, Principal)
        return principal

    async def _from_token(self, token: str, offline: bool) -> Principal:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthorized() from None
        if not isinstance(algorithm, str) or algorithm not in self._verifiers:
            raise Unauthorized()
        verifier = self._verifiers[algorithm]
        try:
            claims = jwt.decode(
                token,
                verifier,
                algorithms=[algorithm],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["exp"], "verify_aud": self.settings.jwt_audience is not None},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthorized() from None
        self._check_times(claims)
        project, scope = claims.get("project"), claims.get("scope", "")
        if not isinstance(project, str) or not isinstance(scope, str) or not valid_project_alias(project):
            raise Unauthorized()
        subject = claims.get("sub", "")
        if not isinstance(subject, str) or len(subject) > MAX_SUBJECT_LENGTH:
            raise Unauthorized()
        if not await self._project_exists(project, offline):
            raise Unauthorized()
        return Principal(project, frozenset(scope.split()), subject=subject)

    def _check_times(self, claims: dict[str, Any]) -> None:
        """Times are JSON numbers; with RELATIONS_JWT_MAX_LIFETIME_SECONDS, `exp` is at most that far
        from now and from `iat`."""
        for name in TIME_CLAIMS:
            value = claims.get(name)
            if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise Unauthorized()
        longest = self.settings.jwt_max_lifetime_seconds
        if longest is not None:
            expires = claims["exp"]
            if expires - time.time() > longest + self.settings.jwt_leeway_seconds:
                raise Unauthorized()
            if "iat" in claims and expires - claims["iat"] > longest:
                raise Unauthorized()

    async def _project_exists(self, project: str, offline: bool) -> bool:
        cached, exists = self._projects.get(project)
        if not cached:
            if offline:
                raise LookupNeeded()
            exists = await queries.project_exists(self.db, project=project)
            self._projects.put(project, exists)
        return bool(exists)


def _basic_key(credential: str) -> str:
    """Heartcore's form: base64("<key>:"); the password part must be empty."""
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # not base64 (also non-ASCII text), or not UTF-8
        raise Unauthorized() from None
    key, separator, password = decoded.partition(":")
    if not separator or password or not key:
        raise Unauthorized()
    return key
