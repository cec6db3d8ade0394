"""Settings, read once from the environment (each one documented in README)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return raw not in ("0", "false", "no", "off") if raw else default


_DURATION = re.compile(r"(\d+)\s*(d|h|m|s)")
_DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in `7d`, `36h`, `1d12h`, `90m`, `30s` (units d, h, m, s; several add up) or a bare
    number of seconds; raises ValueError otherwise, or for zero."""
    compact = text.strip().lower()
    if compact.isdigit():
        seconds = int(compact)
    else:
        parts = _DURATION.findall(compact)
        if not parts or _DURATION.sub("", compact).strip():
            raise ValueError(f"not a duration: {text!r} (e.g. 7d, 36h, 1d12h, 90m, 30s)")
        seconds = sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {text!r}")
    return seconds


def _duration(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


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
    changes_retention_seconds: int = 7 * 86400
    changes_heartbeat_seconds: float = 15.0
    # --- Webhooks (issue 13, SPEC §10) ---
    secret_key: str | None = None
    webhook_allow_private: bool = False
    webhook_delivery: bool = True
    webhook_timeout_seconds: float = 10.0
    webhook_backoff_seconds: float = 5.0
    webhook_max_attempts: int = 11
    webhook_concurrency: int = 16
    webhook_poll_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
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
            changes_retention_seconds=_duration("RELATIONS_CHANGES_RETENTION", 7 * 86400),
            changes_heartbeat_seconds=float(_duration("RELATIONS_CHANGES_HEARTBEAT", 15)),
            secret_key=env("RELATIONS_SECRET_KEY") or None,
            webhook_allow_private=_bool("RELATIONS_WEBHOOK_ALLOW_PRIVATE", False),
            webhook_delivery=_bool("RELATIONS_WEBHOOK_DELIVERY", True),
            webhook_timeout_seconds=_float("RELATIONS_WEBHOOK_TIMEOUT_SECONDS", 10.0),
            webhook_backoff_seconds=_float("RELATIONS_WEBHOOK_BACKOFF_SECONDS", 5.0),
            webhook_max_attempts=max(_int("RELATIONS_WEBHOOK_MAX_ATTEMPTS", 11), 1),
            webhook_concurrency=max(_int("RELATIONS_WEBHOOK_CONCURRENCY", 16), 1),
            webhook_poll_seconds=_float("RELATIONS_WEBHOOK_POLL_SECONDS", 5.0),
        )
