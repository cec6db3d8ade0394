"""SPEC §13 over HTTP: 429 with Retry-After, the RateLimit-Policy and RateLimit fields on every answer,
a key's own budget, token subjects, the order of checks, and failed authentications limited per client
address before they reach the database. Also `rate_lease`, the bucket in PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service import messages
from service.app import create_app
from service.db import Database
from service.projects.service import SCOPES, create_key
from service.rate_limits import queries
from service.rate_limits.policy import RatePolicy
from service.settings import Settings
from tests.conftest import Lookups, MakeProject, error_of
from tests.test_auth import SECRET, claims_for, hs256, serving

FIELD = re.compile(r'"(?P<name>[a-z-]+)";r=(?P<r>\d+);t=(?P<t>\d+)')


def limited(database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "key_cache_seconds": 0,
        "pool_min_size": 1,
        "pool_max_size": 4,
        "jwt_secret": SECRET,
        "jwt_issuer": None,
        "jwt_audience": None,
    }
    values.update(changes)
    return Settings(**values)


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Every credential may send 3 requests at once, then 1 a second; 3 failures per address."""
    settings = limited(database_url, rate_limit=RatePolicy(1, 3), auth_failure_limit=RatePolicy(1, 3))
    async with serving(create_app(settings)) as http:
        yield http


def remaining(response: httpx.Response) -> int:
    found = FIELD.fullmatch(response.headers["RateLimit"])
    assert found is not None, response.headers["RateLimit"]
    return int(found["r"])


async def test_over_budget_is_429_with_retry_after_and_both_fields(
    client: httpx.AsyncClient, make_project: MakeProject
) -> None:
    project = await make_project()
    answers = [await client.get("/relation/type", headers=project.headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [remaining(a) for a in answers] == [2, 1, 0, 0]
    for answer in answers:
        assert answer.headers["RateLimit-Policy"] == '"credential";q=1;w=1;burst=3'
    refused = answers[-1]
    error = error_of(refused)
    assert error["code"] == "TooManyRequests"
    assert error["message"] == messages.RATE_LIMITED.format(policy="1/s burst 3", seconds=1)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["content-type"].startswith("application/hal+json")


async def test_errors_of_the_request_itself_carry_the_fields(
    client: httpx.AsyncClient, make_project: MakeProject
) -> None:
    project = await make_project()
    missing = await client.get("/relation/999999999", headers=project.headers)
    assert missing.status_code == 404
    assert missing.headers["RateLimit-Policy"].startswith('"credential"')
    assert remaining(missing) == 2


async def test_each_key_has_its_own_budget(client: httpx.AsyncClient, make_project: MakeProject) -> None:
    project = await make_project()
    other = {"Api-Key": await project.key(*SCOPES)}
    for _ in range(3):
        await client.get("/relation/type", headers=project.headers)
    assert (await client.get("/relation/type", headers=project.headers)).status_code == 429
    assert (await client.get("/relation/type", headers=other)).status_code == 200


async def test_a_keys_own_limit_wins(
    client: httpx.AsyncClient, db: Database, make_project: MakeProject
) -> None:
    project = await make_project()
    new = await create_key(db, project=project.alias, scopes=list(SCOPES), rate_limit=RatePolicy(1, 1))
    headers = {"Api-Key": new.key}
    first = await client.get("/relation/type", headers=headers)
    assert first.headers["RateLimit-Policy"] == '"credential";q=1;w=1;burst=1'
    assert (await client.get("/relation/type", headers=headers)).status_code == 429


async def test_token_subjects_have_budgets_of_their_own_within_their_project(
    client: httpx.AsyncClient, make_project: MakeProject
) -> None:
    project = await make_project()
    alice = {"Authorization": "Bearer " + hs256(claims_for(project.alias, sub="alice"))}
    alice_again = {
        "Authorization": "Bearer " + hs256(claims_for(project.alias, sub="alice", exp=2_000_000_000))
    }
    bob = {"Authorization": "Bearer " + hs256(claims_for(project.alias, sub="bob"))}
    statuses = [(await client.get("/relation/type", headers=alice)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert (await client.get("/relation/type", headers=alice_again)).status_code == 429  # same subject
    assert (await client.get("/relation/type", headers=bob)).status_code == 200


async def test_403_and_400_come_before_429(client: httpx.AsyncClient, make_project: MakeProject) -> None:
    project = await make_project()
    for _ in range(4):
        await client.get("/relation/type", headers=project.headers)
    forbidden = await client.get("/relation/type", headers={**project.headers, "Umb-Project-Alias": "other"})
    assert forbidden.status_code == 403
    bad_version = await client.get("/relation/type", headers={**project.headers, "Api-Version": "3"})
    assert bad_version.status_code == 400


async def test_no_limit_no_fields(database_url: str, make_project: MakeProject) -> None:
    project = await make_project()
    async with serving(create_app(limited(database_url))) as http:
        answer = await http.get("/relation/type", headers=project.headers)
    assert answer.status_code == 200
    assert "RateLimit" not in answer.headers and "RateLimit-Policy" not in answer.headers


async def test_failed_authentications_are_limited_per_address_before_the_database(
    client: httpx.AsyncClient, make_project: MakeProject, key_lookups: Lookups
) -> None:
    address = {"X-Forwarded-For": "203.0.113.7"}  # the in-process client is a trusted proxy
    made_up = "rr_000000000000_" + "A" * 43
    failures = [await client.get("/relation/type", headers={**address, "Api-Key": made_up}) for _ in range(3)]
    assert [f.status_code for f in failures] == [401, 401, 401]
    assert failures[0].headers["RateLimit-Policy"] == '"auth-failures";q=1;w=1;burst=3'
    assert [remaining(f) for f in failures] == [2, 1, 0]
    assert key_lookups.count == 3
    refused = await client.get("/relation/type", headers={**address, "Api-Key": made_up})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert error_of(refused)["message"] == messages.AUTH_FAILURES_LIMITED.format(seconds=1)
    assert key_lookups.count == 3  # refused before the lookup
    # Another address is not affected.
    other = await client.get("/relation/type", headers={"X-Forwarded-For": "203.0.113.8", "Api-Key": made_up})
    assert other.status_code == 401
    project = await make_project()
    assert (await client.get("/relation/type", headers={**address, **project.headers})).status_code == 429


async def test_the_bucket_in_postgresql(db: Database) -> None:
    policy = RatePolicy(10, 20)
    credential = "key:bucket-test"
    assert await queries.lease(db, credential=credential, policy=policy, want=15, give_back=0) == (15, 5.0)
    granted, left = await queries.lease(db, credential=credential, policy=policy, want=15, give_back=0)
    assert granted == 5 and left < 1
    granted, left = await queries.lease(db, credential=credential, policy=policy, want=0, give_back=4)
    assert granted == 0 and 4 <= left < 5
    await asyncio.sleep(0.3)  # refills 3 tokens
    granted, left = await queries.lease(db, credential=credential, policy=policy, want=20, give_back=0)
    assert 7 <= granted <= 9 and left < 1


async def test_concurrent_leases_never_grant_more_than_the_bucket(db: Database) -> None:
    policy = RatePolicy(1, 50)
    results = await asyncio.gather(
        *(queries.lease(db, credential="key:race", policy=policy, want=7, give_back=0) for _ in range(20))
    )
    assert sum(granted for granted, _ in results) == 50


async def test_a_known_credential_still_works_from_a_refused_address(
    database_url: str, make_project: MakeProject, key_lookups: Lookups
) -> None:
    """Behind one address (a NAT), a client with a wrong key must not lock out the others: a credential
    the worker's caches can confirm is accepted without a lookup; anything else waits."""
    project = await make_project()
    settings = limited(database_url, key_cache_seconds=5, auth_failure_limit=RatePolicy(1, 3))
    address = {"X-Forwarded-For": "198.51.100.9"}
    made_up = {**address, "Api-Key": "rr_000000000000_" + "D" * 43}
    token = {**address, "Authorization": "Bearer " + hs256(claims_for(project.alias, sub="cms"))}
    async with serving(create_app(settings)) as http:
        assert (await http.get("/relation/type", headers={**address, **project.headers})).status_code == 200
        assert (await http.get("/relation/type", headers=token)).status_code == 200
        for index in range(3):
            made_up["Api-Key"] = f"rr_{index:012x}_" + "D" * 43
            assert (await http.get("/relation/type", headers=made_up)).status_code == 401
        lookups = key_lookups.count
        made_up["Api-Key"] = "rr_ffffffffffff_" + "D" * 43
        assert (await http.get("/relation/type", headers=made_up)).status_code == 429
        assert (await http.get("/relation/type", headers={**address, **project.headers})).status_code == 200
        assert (await http.get("/relation/type", headers=token)).status_code == 200
        assert key_lookups.count == lookups  # none of these reached the database
        other = await project.key(*SCOPES)  # valid, but not yet known to this worker
        assert (await http.get("/relation/type", headers={**address, "Api-Key": other})).status_code == 429
