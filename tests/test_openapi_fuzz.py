"""schemathesis against the live service (uvicorn on a loopback socket): every operation of
`openapi.yaml`, every check, every phase (examples, coverage, fuzzing, stateful with every link-inference
algorithm, its default), a bounded number of examples per operation. It must find no 5xx and no
answer that breaks the contract."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import Settings
from tests.live_server import LiveServer, live_server

# Per operation and phase; enough to reach every branch the schema describes while the whole run
# stays well under a minute on a 2-core machine. RELATIONS_FUZZ_EXAMPLES raises it for a longer hunt.
MAX_EXAMPLES = int(os.environ.get("RELATIONS_FUZZ_EXAMPLES", "25"))
# Fixed, so CI is reproducible; RELATIONS_FUZZ_SEED explores elsewhere.
SEED = int(os.environ.get("RELATIONS_FUZZ_SEED", "20261123"))

# Statuses a schema-valid request may still get: they depend on stored state, which no schema can
# express — a duplicate relation or type alias, a cardinality-one list that is taken, an unknown
# relationTypeAlias (422); an unknown id or alias (404); an in-use or built-in type (409); an If-Match
# ETag of another version of the list (412).
STATE_DEPENDENT = ["2xx", "401", "403", "404", "409", "412", "422", "429"]


# Loaded by schemathesis: a schema-valid Idempotency-Key is made unique per request. The examples and
# coverage phases send the spec's example key, and generated keys come from a small space, so most writes
# would otherwise reuse a key with another body (422 by design) and never reach the code behind it.
# Invalid keys (the negative cases) are sent as generated.
# A `cursor` (or JSON:API's `page[after]`, `page[before]`) of the right shape is state too: only one
# the service signed for that very list, page size and project is good (any other is 400 by design,
# tested in tests/test_cursors.py), so a schema-valid cursor is left out; malformed ones (the negative
# cases) are sent as generated.
HOOKS = """
import json
import re
import uuid

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    # The schema describes one line of POST /relation/import: the generated value is sent as that line.
    if isinstance(value, bytes):
        return {"data": value}
    return {"data": (json.dumps(value) + "\\n").encode()}

VALID_KEY = re.compile(r"[!-~]{1,255}")
CURSOR_SHAPE = re.compile(r"[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+")


@schemathesis.hook
def before_call(context, case, kwargs):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    for name in ("cursor", "page[after]", "page[before]"):
        cursor = (case.query or {}).get(name)
        if isinstance(cursor, str) and len(cursor) <= 1024 and CURSOR_SHAPE.fullmatch(cursor):
            del case.query[name]
    # The change feed: a valid `wait` holds the request up to 30 s and an event stream never ends;
    # both are tested on their own (tests/changes), here they would only stall the run.
    # A schema-valid `since` is still only a cursor if the service made it (else 400): "now" is one.
    if case.path == "/relation/changes":
        if isinstance(case.query, dict) and "wait" in case.query:
            case.query["wait"] = "0"
        since = case.query.get("since") if isinstance(case.query, dict) else None
        if isinstance(since, str) and len(since) <= 100:
            case.query["since"] = "now"
        if case.headers and "event-stream" in str(case.headers.get("Accept", "")):
            case.headers["Accept"] = "application/json"
"""


def st_config(server: LiveServer, alias: str, key: str, hooks: Path) -> str:
    basic = base64.b64encode(f"{key}:".encode()).decode()
    return f"""
base-url = "{server.base_url}"
hooks = "{hooks}"
seed = {SEED}
workers = 1
color = false

[headers]
# Heartcore's Basic form, so the `ignored_auth` check sends its probes (no credential, a bad one of
# each scheme) against a known-good request; every request acts on this test's own project.
Authorization = "Basic {basic}"
Umb-Project-Alias = "{alias}"

[generation]
max-examples = {MAX_EXAMPLES}

[checks.positive_data_acceptance]
expected-statuses = {STATE_DEPENDENT!r}

# PUT and DELETE take an id only (their `idOrAlias` is an integer); link inference still feeds them a
# type's `alias` (the parameter's name says alias), and the contract's answer to that is 405.
[[operations]]
include-operation-id = ["updateRelation", "deleteRelation"]

[operations.checks.positive_data_acceptance]
expected-statuses = {[*STATE_DEPENDENT, "405"]!r}
"""


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as server:
        yield server


def test_schemathesis_finds_no_failure(live: LiveServer, tmp_path: Path) -> None:
    alias, key = live.new_project("fuzz")
    hooks = tmp_path / "fuzz_hooks.py"
    hooks.write_text(HOOKS)
    config = tmp_path / "schemathesis.toml"
    config.write_text(st_config(live, alias, key, hooks))
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{live.base_url}/openapi.yaml",
        "--checks",
        "all",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    report = result.stdout + result.stderr
    summary = report[report.find("= SUMMARY =") :] if "= SUMMARY =" in report else report[-3000:]
    print(summary)  # shown with -rA / on failure: the phases, failures and test-case counts
    assert result.returncode == 0, report
    assert "No issues found" in report or " passed" in report, report
