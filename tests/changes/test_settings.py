"""RELATIONS_CHANGES_RETENTION's duration syntax."""

from __future__ import annotations

import pytest

from service.settings import Settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 604800),
        ("36h", 129600),
        ("1d12h", 129600),
        ("90m", 5400),
        ("30s", 30),
        ("45", 45),
        (" 2D ", 172800),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0d", "7 days", "d", "-1h", "1w", "1.5h", "7d junk"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_the_default_is_a_week_and_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELATIONS_CHANGES_RETENTION", raising=False)
    assert Settings.from_env().changes_retention_seconds == 7 * 86400
    monkeypatch.setenv("RELATIONS_CHANGES_RETENTION", "soon")
    with pytest.raises(ValueError, match="RELATIONS_CHANGES_RETENTION"):
        Settings.from_env()
