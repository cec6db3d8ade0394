"""service/schema.py: schema.sql is applied to an empty database, again is a no-op, and upgrading a
database from before the list counter counts the lists it already has."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from service.schema import connect, migrate, schema_text, schema_version
from tests.conftest import with_database


@pytest.fixture
async def empty_url(database_url: str) -> AsyncIterator[str]:
    name = f"schema_{secrets.token_hex(4)}"
    admin = await connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(database_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_applies_once(empty_url: str) -> None:
    assert await migrate(empty_url) is True
    assert await migrate(empty_url) is False
    connection = await connect(empty_url)
    try:
        assert await connection.fetchval("SELECT max(version) FROM schema_version") == schema_version(
            schema_text()
        )
    finally:
        await connection.close()


async def test_upgrade_counts_existing_lists(empty_url: str) -> None:
    await migrate(empty_url)
    connection = await connect(empty_url)
    try:
        # The database as version 2 left it: relations, no counter, no triggers.
        await connection.execute(
            """
            DROP TRIGGER relation_counters_insert ON relation;
            DROP TRIGGER relation_counters_delete ON relation;
            DROP TRIGGER relation_counters_update ON relation;
            DROP TRIGGER relation_counters_truncate ON relation;
            DROP TRIGGER relation_type_counters_insert ON relation_type;
            DROP TRIGGER relation_type_counters_delete ON relation_type;
            DROP TABLE child_list, type_count, child_count, relation_type_count;
            DELETE FROM schema_version WHERE version > 2;
            INSERT INTO project (project) VALUES ('old');
            INSERT INTO relation_type (project, alias, type_id, name)
            VALUES ('old', 't', gen_random_uuid(), 'T');
            INSERT INTO relation (project, type_alias, parent, child, position)
            SELECT 'old', 't', md5((g % 3)::text)::uuid, md5((g % 4)::text)::uuid, g
            FROM generate_series(1, 10) g;
            """
        )
        assert await migrate(empty_url) is True
        sizes = await connection.fetch("SELECT size FROM child_list WHERE project = 'old' ORDER BY size")
        assert [row["size"] for row in sizes] == [3, 3, 4]
        children = await connection.fetch("SELECT size FROM child_count WHERE project = 'old' ORDER BY size")
        assert [row["size"] for row in children] == [2, 2, 3, 3]
        assert await connection.fetchval("SELECT sum(size) FROM type_count WHERE project = 'old'") == 10
        assert await connection.fetchval("SELECT size FROM relation_type_count WHERE project = 'old'") == 1
        await connection.execute("DELETE FROM relation WHERE project = 'old' AND position <= 3")
        assert await connection.fetchval("SELECT sum(size) FROM child_list WHERE project = 'old'") == 7
        assert await connection.fetchval("SELECT sum(size) FROM child_count WHERE project = 'old'") == 7
        assert await connection.fetchval("SELECT sum(size) FROM type_count WHERE project = 'old'") == 7
    finally:
        await connection.close()
