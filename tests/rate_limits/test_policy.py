"""service/rate_limits/policy.py: the `<n>/s burst <m>` form, the bucket's arithmetic, and the settings
that read it (a bad value fails at start-up naming the variable)."""

from __future__ import annotations

import pytest

from service import cli
from service.rate_limits.policy import InvalidPolicy, RatePolicy, TokenBucket, parse_policy
from service.settings import DEFAULT_AUTH_FAILURE_LIMIT, InvalidSetting, Settings


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("50/s burst 100", RatePolicy(50, 100)),
        ("1/s burst 1", RatePolicy(1, 1)),
        ("  7 / s  BURST  9 ", RatePolicy(7, 9)),
    ],
)
def test_reads_the_form(text: str, policy: RatePolicy) -> None:
    assert parse_policy(text) == policy
    assert parse_policy(str(policy)) == policy


@pytest.mark.parametrize(
    "text",
    [
        "",
        "50",
        "50/s",
        "50/m burst 100",
        "50/s burst",
        "-1/s burst 5",
        "0/s burst 5",
        "1.5/s burst 5",
        "10/s burst 5",  # a burst below the rate
        "50/s burst 100\n",
        "50/s burst 100 extra",
    ],
)
def test_refuses_anything_else(text: str) -> None:
    with pytest.raises(InvalidPolicy):
        parse_policy(text)


def test_bucket_refills_by_elapsed_time_up_to_its_burst() -> None:
    bucket = TokenBucket.full(RatePolicy(10, 20), now=0.0)
    assert bucket.take(25, now=0.0) == 20
    assert bucket.take(1, now=0.0) == 0
    assert bucket.wait_for(1) == pytest.approx(0.1)
    assert bucket.take(5, now=0.35) == 3  # 3.5 tokens refilled, whole tokens only
    assert bucket.take(100, now=100.0) == 20  # capped at the burst however long it rested


def test_settings_read_both_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELATIONS_RATE_LIMIT", "50/s burst 100")
    monkeypatch.delenv("RELATIONS_AUTH_FAILURE_LIMIT", raising=False)
    settings = Settings.from_env()
    assert settings.rate_limit == RatePolicy(50, 100)
    assert settings.auth_failure_limit == DEFAULT_AUTH_FAILURE_LIMIT  # on with the rate limit
    monkeypatch.setenv("RELATIONS_AUTH_FAILURE_LIMIT", "off")
    assert Settings.from_env().auth_failure_limit is None
    monkeypatch.delenv("RELATIONS_RATE_LIMIT")
    monkeypatch.setenv("RELATIONS_AUTH_FAILURE_LIMIT", "2/s burst 4")
    settings = Settings.from_env()
    assert (settings.rate_limit, settings.auth_failure_limit) == (None, RatePolicy(2, 4))


def test_unset_means_no_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELATIONS_RATE_LIMIT", raising=False)
    monkeypatch.delenv("RELATIONS_AUTH_FAILURE_LIMIT", raising=False)
    settings = Settings.from_env()
    assert (settings.rate_limit, settings.auth_failure_limit) == (None, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELATIONS_RATE_LIMIT", "50 per second"),
        ("RELATIONS_AUTH_FAILURE_LIMIT", "5/s burst 1"),
        ("RELATIONS_JWT_MAX_LIFETIME_SECONDS", "an hour"),
        ("RELATIONS_JWT_MAX_LIFETIME_SECONDS", "0"),
        ("RELATIONS_MAX_CONNECTIONS", "many"),
    ],
)
def test_a_bad_setting_fails_at_start_up_naming_the_variable(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSetting, match=name):
        Settings.from_env()
    assert cli.main(["serve", "--port", "1"]) == 2
    assert name in capsys.readouterr().err
