"""service/settings.py: one typed object; every variable read there, each default written once, a bad
value refused at start-up naming its variable."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from service.settings import InvalidSetting, Settings

SERVICE = Path(__file__).resolve().parent.parent / "service"


def test_defaults_are_the_fields_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"RELATIONS_POOL_MAX": " ", "RELATIONS_PUBLIC_URL": "/"}) == Settings()


def test_values_are_parsed_by_type() -> None:
    settings = Settings.from_env(
        {
            "RELATIONS_POOL_MAX": "20",
            "RELATIONS_ACCESS_LOG": "off",
            "RELATIONS_CORS_ORIGINS": "https://a.example, https://b.example",
            "RELATIONS_PUBLIC_URL": "https://relations.example/",
            "RELATIONS_DATA_DIR": "/srv/relations",
            "RELATIONS_KEY_CACHE_SECONDS": "60",
            "PORT": "9000",
        }
    )
    assert settings.pool_max_size == 20
    assert settings.access_log is False
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.public_url == "https://relations.example"
    assert settings.data_dir == Path("/srv/relations")
    assert settings.key_cache_seconds == 5  # documented as at most 5
    assert settings.port == 9000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RELATIONS_POOL_MAX", "ten"),
        ("RELATIONS_POOL_MAX", "0"),
        ("RELATIONS_IDEMPOTENCY_HOURS", "-1"),
        ("RELATIONS_ACCESS_LOG", "maybe"),
        ("RELATIONS_LOG_LEVEL", "loud"),
        ("PORT", "http"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(InvalidSetting, match=variable):
        Settings.from_env({variable: value})


def test_every_field_names_its_variable() -> None:
    variables = [Settings.variable(spec.name) for spec in fields(Settings)]
    assert len(variables) == len(set(variables))
    assert all(name.isupper() for name in variables)


def test_the_environment_is_read_only_in_settings() -> None:
    """No other module of the service reads os.environ or os.getenv."""
    readers = []
    for module in SERVICE.rglob("*.py"):
        if module.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.append(str(module.relative_to(SERVICE)))
    # cli.py passes the embedded server's URL and the dev secret key on to uvicorn's workers (writes,
    # not reads).
    assert set(readers) == {"cli.py"}


def test_relations_refuses_to_start_on_a_bad_value(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "RELATIONS_POOL_MAX": "many", "DATABASE_URL": "postgresql://nowhere/x"}
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"],
        env=env,
        cwd=SERVICE.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "RELATIONS_POOL_MAX='many' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr
