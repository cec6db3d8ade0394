"""Settings: one typed object, read from the environment here and nowhere else (each one documented in
README's settings table). Every field names its variable and its default once; `Settings.from_env`
reads them all, and a value that does not parse fails at start-up with an `InvalidSetting` naming the
variable. Tests build `Settings(database_url=..., key_cache_seconds=0)` directly."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from service.rate_limits.policy import InvalidPolicy, RatePolicy, parse_policy

# Failed authentications allowed per client address when RELATIONS_RATE_LIMIT is set and
# RELATIONS_AUTH_FAILURE_LIMIT is not.
DEFAULT_AUTH_FAILURE_LIMIT = RatePolicy(5, 20)


class InvalidSetting(ValueError):
    """A variable of the environment the service cannot use; the message names it."""


def _int(low: int | None = None, high: int | None = None) -> Callable[[str, str], int]:
    """An integer; `low` refuses smaller values, `high` caps larger ones (documented as "at most")."""

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise InvalidSetting(f"{name}={raw!r} is not an integer") from None
        if low is not None and value < low:
            raise InvalidSetting(f"{name}={raw!r}: must be at least {low}")
        return min(value, high) if high is not None else value

    return parse


def _bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidSetting(f"{name}={raw!r} is not a boolean (true/false, 1/0, yes/no, on/off)")


def _text(name: str, raw: str) -> str:
    return raw


def _url(name: str, raw: str) -> str:
    return raw.rstrip("/")


def _path(name: str, raw: str) -> Path:
    return Path(raw)


def _list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _log_level(name: str, raw: str) -> str:
    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if raw.lower() not in levels:
        raise InvalidSetting(f"{name}={raw!r} is not one of {', '.join(levels)}")
    return raw.lower()


def _policy(name: str, raw: str) -> RatePolicy | None:
    """A budget such as `50/s burst 100`; `off` is no limit."""
    if raw.lower() == "off":
        return None
    try:
        return parse_policy(raw)
    except InvalidPolicy as error:
        raise InvalidSetting(f"{name}: {error}") from None


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


def _duration(name: str, raw: str) -> int:
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise InvalidSetting(f"{name}: {error}") from None


def _seconds(name: str, raw: str) -> float:
    return float(_duration(name, raw))


def _fraction_seconds(name: str, raw: str) -> float:
    """A positive number of seconds, fractions allowed (tests shorten the webhook timings)."""
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSetting(f"{name}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise InvalidSetting(f"{name}={raw!r}: must be more than 0 seconds")
    return value


def _pgbouncer(name: str, raw: str) -> str:
    if raw.lower() != "transaction":
        raise InvalidSetting(f"{name} must be 'transaction' (pgbouncer in transaction pooling mode) or unset")
    return "transaction"


def setting(variable: str, default: Any, parse: Callable[[str, str], Any] = _text) -> Any:
    """A field read from `variable` (unset or blank: `default`)."""
    metadata = {"variable": variable, "parse": parse}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple")
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = setting("DATABASE_URL", None)
    data_dir: Path = setting("RELATIONS_DATA_DIR", Path(".data"), _path)  # noqa: RUF009 (immutable)
    jwt_secret: str | None = setting("RELATIONS_JWT_SECRET", None)
    jwt_public_key: str | None = setting("RELATIONS_JWT_PUBLIC_KEY", None)
    jwt_issuer: str | None = setting("RELATIONS_JWT_ISSUER", None)
    jwt_audience: str | None = setting("RELATIONS_JWT_AUDIENCE", None)
    jwt_leeway_seconds: int = setting("RELATIONS_JWT_LEEWAY", 30, _int(low=0))
    public_url: str | None = setting("RELATIONS_PUBLIC_URL", None, _url)
    pool_min_size: int = setting("RELATIONS_POOL_MIN", 2, _int(low=0))
    pool_max_size: int = setting("RELATIONS_POOL_MAX", 10, _int(low=1))
    statement_timeout_ms: int = setting("RELATIONS_STATEMENT_TIMEOUT_MS", 5000, _int(low=1))
    max_body_bytes: int = setting("RELATIONS_MAX_BODY_BYTES", 1024 * 1024, _int(low=1))
    key_cache_seconds: int = setting("RELATIONS_KEY_CACHE_SECONDS", 5, _int(low=0, high=5))
    cors_origins: tuple[str, ...] = setting("RELATIONS_CORS_ORIGINS", (), _list)
    trusted_proxies: tuple[str, ...] = setting("RELATIONS_TRUSTED_PROXIES", ("127.0.0.1",), _list)
    access_log: bool = setting("RELATIONS_ACCESS_LOG", True, _bool)
    idempotency_hours: int = setting("RELATIONS_IDEMPOTENCY_HOURS", 24, _int(low=1))
    startup_wait_seconds: int = setting("RELATIONS_STARTUP_WAIT_SECONDS", 30, _int(low=0))
    # Where and how `relations serve` runs (read by the command; the app itself never needs them).
    host: str = setting("HOST", "127.0.0.1")
    port: int = setting("PORT", 8000, _int(low=0))
    workers: int = setting("WORKERS", 1, _int(low=1))
    tls_cert: str | None = setting("RELATIONS_TLS_CERT", None)
    tls_key: str | None = setting("RELATIONS_TLS_KEY", None)
    log_level: str = setting("RELATIONS_LOG_LEVEL", "warning", _log_level)
    # prometheus-client's own variable (it reads it too): one shared folder for every worker's metrics.
    metrics_dir: str | None = setting("PROMETHEUS_MULTIPROC_DIR", None)
    # Rate limits (SPEC §13); with RELATIONS_RATE_LIMIT set and RELATIONS_AUTH_FAILURE_LIMIT unset,
    # failed authentications get DEFAULT_AUTH_FAILURE_LIMIT.
    rate_limit: RatePolicy | None = setting("RELATIONS_RATE_LIMIT", None, _policy)  # noqa: RUF009
    auth_failure_limit: RatePolicy | None = setting("RELATIONS_AUTH_FAILURE_LIMIT", None, _policy)  # noqa: RUF009
    jwt_max_lifetime_seconds: int | None = setting("RELATIONS_JWT_MAX_LIFETIME_SECONDS", None, _int(low=1))
    # Slow or greedy clients (README, Security).
    keep_alive_seconds: int = setting("RELATIONS_KEEP_ALIVE_SECONDS", 5, _int(low=1))
    max_connections: int = setting("RELATIONS_MAX_CONNECTIONS", 1000, _int(low=1))
    max_header_bytes: int = setting("RELATIONS_MAX_HEADER_BYTES", 16 * 1024, _int(low=1024))
    header_timeout_seconds: int = setting("RELATIONS_HEADER_TIMEOUT_SECONDS", 10, _int(low=1))
    # POST /relation/import's own body limit (it streams its body; every other route has max_body_bytes).
    import_max_bytes: int = setting("RELATIONS_IMPORT_MAX_BYTES", 1 << 30, _int(low=1))
    # The change feed (SPEC §9): how long changes are kept, and the event stream's heartbeat.
    changes_retention_seconds: int = setting("RELATIONS_CHANGES_RETENTION", 7 * 86400, _duration)
    changes_heartbeat_seconds: float = setting("RELATIONS_CHANGES_HEARTBEAT", 15.0, _seconds)
    # Webhooks (SPEC §10): the key that seals stored secrets, and the delivery's timings and bounds.
    secret_key: str | None = setting("RELATIONS_SECRET_KEY", None)
    webhook_allow_private: bool = setting("RELATIONS_WEBHOOK_ALLOW_PRIVATE", False, _bool)
    webhook_delivery: bool = setting("RELATIONS_WEBHOOK_DELIVERY", True, _bool)
    webhook_timeout_seconds: float = setting("RELATIONS_WEBHOOK_TIMEOUT_SECONDS", 10.0, _fraction_seconds)
    webhook_backoff_seconds: float = setting("RELATIONS_WEBHOOK_BACKOFF_SECONDS", 5.0, _fraction_seconds)
    webhook_max_attempts: int = setting("RELATIONS_WEBHOOK_MAX_ATTEMPTS", 11, _int(low=1))
    webhook_concurrency: int = setting("RELATIONS_WEBHOOK_CONCURRENCY", 16, _int(low=1))
    webhook_poll_seconds: float = setting("RELATIONS_WEBHOOK_POLL_SECONDS", 5.0, _fraction_seconds)
    # Replicas and pgbouncer (SPEC §12).
    database_read_urls: tuple[str, ...] = setting("DATABASE_READ_URLS", (), _list)
    database_listen_url: str | None = setting("DATABASE_LISTEN_URL", None)
    replica_max_lag_ms: int = setting("RELATIONS_REPLICA_MAX_LAG_MS", 100, _int(low=0))
    replica_retry_seconds: int = setting("RELATIONS_REPLICA_RETRY_SECONDS", 5, _int(low=1))
    pgbouncer: str | None = setting("RELATIONS_PGBOUNCER", None, _pgbouncer)
    # The read cache (each worker's own, kept exact by the change log): its size; 0 turns it off.
    cache_bytes: int = setting("RELATIONS_CACHE_BYTES", 32 * 1024 * 1024, _int(low=0))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Every setting from `environ` (the process's environment), defaults for the unset or blank."""
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            variable: str = spec.metadata["variable"]
            raw = source.get(variable, "").strip()
            if raw:
                parsed = spec.metadata["parse"](variable, raw)
                if parsed not in ("", ()):  # `RELATIONS_PUBLIC_URL=/`, `RELATIONS_CORS_ORIGINS=,`
                    values[spec.name] = parsed
        if values.get("rate_limit") and "auth_failure_limit" not in values:
            values["auth_failure_limit"] = DEFAULT_AUTH_FAILURE_LIMIT
        return cls(**values)

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of the field `name`."""
        return str(next(spec for spec in fields(cls) if spec.name == name).metadata["variable"])
