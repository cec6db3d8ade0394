"""Settings, read once from the environment (each one documented in README)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from service.rate_limits.policy import InvalidPolicy, RatePolicy, parse_policy

# Failed authentications allowed per client address when RELATIONS_RATE_LIMIT is set and
# RELATIONS_AUTH_FAILURE_LIMIT is not.
DEFAULT_AUTH_FAILURE_LIMIT = RatePolicy(5, 20)


class InvalidSetting(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return raw not in ("0", "false", "no", "off") if raw else default


def _policy(name: str) -> RatePolicy | None:
    """A budget such as `50/s burst 100`; unset (or `off`) is no limit."""
    raw = os.environ.get(name, "").strip()
    if not raw or raw.lower() == "off":
        return None
    try:
        return parse_policy(raw)
    except InvalidPolicy as error:
        raise InvalidSetting(f"{name}: {error}") from None


def _optional_int(name: str, *, minimum: int) -> int | None:
    """A whole number of at least `minimum`, or None when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidSetting(f"{name}: {raw!r} is not a whole number") from None
    if value < minimum:
        raise InvalidSetting(f"{name}: must be at least {minimum}, not {value}")
    return value


def _whole(name: str, default: int, *, minimum: int) -> int:
    found = _optional_int(name, minimum=minimum)
    return default if found is None else found


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".data")
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = 30
    public_url: str | None = None
    pool_min_size: int = 2
    pool_max_size: int = 10
    statement_timeout_ms: int = 5000
    max_body_bytes: int = 1024 * 1024
    key_cache_seconds: int = 5
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    access_log: bool = True
    idempotency_hours: int = 24
    startup_wait_seconds: int = 30
    rate_limit: RatePolicy | None = None
    auth_failure_limit: RatePolicy | None = None
    jwt_max_lifetime_seconds: int | None = None
    keep_alive_seconds: int = 5
    max_connections: int = 1000
    max_header_bytes: int = 16 * 1024
    header_timeout_seconds: int = 10

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        rate_limit = _policy("RELATIONS_RATE_LIMIT")
        failures = _policy("RELATIONS_AUTH_FAILURE_LIMIT")
        if (
            failures is None
            and rate_limit is not None
            and not env("RELATIONS_AUTH_FAILURE_LIMIT", "").strip()
        ):
            failures = DEFAULT_AUTH_FAILURE_LIMIT
        return cls(
            database_url=env("DATABASE_URL") or None,
            data_dir=Path(env("RELATIONS_DATA_DIR") or ".data"),
            jwt_secret=env("RELATIONS_JWT_SECRET") or None,
            jwt_public_key=env("RELATIONS_JWT_PUBLIC_KEY") or None,
            jwt_issuer=env("RELATIONS_JWT_ISSUER") or None,
            jwt_audience=env("RELATIONS_JWT_AUDIENCE") or None,
            jwt_leeway_seconds=_int("RELATIONS_JWT_LEEWAY", 30),
            public_url=(env("RELATIONS_PUBLIC_URL") or "").rstrip("/") or None,
            pool_min_size=_int("RELATIONS_POOL_MIN", 2),
            pool_max_size=_int("RELATIONS_POOL_MAX", 10),
            statement_timeout_ms=_int("RELATIONS_STATEMENT_TIMEOUT_MS", 5000),
            max_body_bytes=_int("RELATIONS_MAX_BODY_BYTES", 1024 * 1024),
            key_cache_seconds=min(_int("RELATIONS_KEY_CACHE_SECONDS", 5), 5),
            cors_origins=_list("RELATIONS_CORS_ORIGINS"),
            trusted_proxies=_list("RELATIONS_TRUSTED_PROXIES") or ("127.0.0.1",),
            access_log=_bool("RELATIONS_ACCESS_LOG", True),
            idempotency_hours=max(_int("RELATIONS_IDEMPOTENCY_HOURS", 24), 1),
            startup_wait_seconds=max(_int("RELATIONS_STARTUP_WAIT_SECONDS", 30), 0),
            rate_limit=rate_limit,
            auth_failure_limit=failures,
            jwt_max_lifetime_seconds=_optional_int("RELATIONS_JWT_MAX_LIFETIME_SECONDS", minimum=1),
            keep_alive_seconds=_whole("RELATIONS_KEEP_ALIVE_SECONDS", cls.keep_alive_seconds, minimum=1),
            max_connections=_whole("RELATIONS_MAX_CONNECTIONS", cls.max_connections, minimum=1),
            max_header_bytes=_whole("RELATIONS_MAX_HEADER_BYTES", cls.max_header_bytes, minimum=1024),
            header_timeout_seconds=_whole(
                "RELATIONS_HEADER_TIMEOUT_SECONDS", cls.header_timeout_seconds, minimum=1
            ),
        )
