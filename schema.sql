-- The only DDL of the relation registry. Applied at start-up (and by `relations migrate`) when the
-- database is empty or older than SCHEMA_VERSION below; every statement is idempotent.
--
-- Scaling out (SPEC §7): every table carries `project`, and every primary key, unique constraint and
-- index that serves a project-scoped query starts with it, so the tables can be distributed by project
-- (Citus) and project-scoped reads routed to replicas. `api_key` is looked up before the project is
-- known (the key names its project), so it is keyed by its own id: a small reference table.
--
-- schema-version: 8

CREATE TABLE IF NOT EXISTS schema_version (
    version     integer     PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS project (
    project     text        PRIMARY KEY CHECK (project ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_key (
    key_id        text        PRIMARY KEY,
    digest        bytea       NOT NULL UNIQUE,
    project       text        NOT NULL REFERENCES project (project) ON DELETE CASCADE,
    scopes        text[]      NOT NULL,
    name          text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS api_key_project ON api_key (project, created_at);

CREATE TABLE IF NOT EXISTS relation_type (
    project            text        NOT NULL REFERENCES project (project) ON DELETE CASCADE,
    alias              text        NOT NULL,
    type_id            uuid        NOT NULL,
    name               text        NOT NULL,
    parent_object_type text        NOT NULL DEFAULT 'Unknown',
    child_object_type  text        NOT NULL DEFAULT 'Unknown',
    is_bidirectional   boolean     NOT NULL DEFAULT false,
    is_dependency      boolean     NOT NULL DEFAULT false,
    cardinality        text        NOT NULL DEFAULT 'many' CHECK (cardinality IN ('many', 'one')),
    is_builtin         boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, alias)
);

-- The one global counter SPEC §7 allows: relation ids are integers unique across projects.
CREATE SEQUENCE IF NOT EXISTS relation_id_seq;

-- `position` orders the children of one (project, parent, type): gapped integers, so an insertion
-- between two neighbours takes their midpoint and only a local run is renumbered when a gap closes.
CREATE TABLE IF NOT EXISTS relation (
    project     text        NOT NULL,
    id          bigint      NOT NULL DEFAULT nextval('relation_id_seq'),
    type_alias  text        NOT NULL,
    parent      uuid        NOT NULL,
    child       uuid        NOT NULL,
    position    bigint      NOT NULL,
    comment     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, id),
    CONSTRAINT relation_unique_edge UNIQUE (project, parent, type_alias, child),
    CONSTRAINT relation_type_fk FOREIGN KEY (project, type_alias)
        REFERENCES relation_type (project, alias)
);
ALTER SEQUENCE relation_id_seq OWNED BY relation.id;

-- GET /relation/parent/{guid} (by type then position) and every child-list read and edit.
CREATE INDEX IF NOT EXISTS relation_by_parent ON relation (project, parent, type_alias, position, id);
-- GET /relation/child/{guid}, ?dependency=true, /relation/referenced, /relation/related (child side).
CREATE INDEX IF NOT EXISTS relation_by_child ON relation (project, child, id);
-- GET /relation/{alias}, oldest first; also the foreign key's check when a type is deleted.
CREATE INDEX IF NOT EXISTS relation_by_type ON relation (project, type_alias, id);

-- Idempotency-Key: the first answer to a write, replayed for a retry with the same key and body.
CREATE TABLE IF NOT EXISTS idempotency_key (
    project       text        NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status        integer     NOT NULL,
    headers       jsonb       NOT NULL,
    body          bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, key)
);
CREATE INDEX IF NOT EXISTS idempotency_key_age ON idempotency_key (project, created_at);

-- Each ordered list's size and a version that moves with every change of its members or order: the
-- list's `_totalItems` and ETag without counting its rows (an edit of a 10,000-item list costs what an
-- edit of a 10-item one does). Kept by statement-level triggers on `relation`, so every writer (single
-- creates, deletes by id, parent, child or type, list edits) keeps it right. A list's row stays when it
-- empties, so a version is never reused.
CREATE TABLE IF NOT EXISTS child_list (
    project     text    NOT NULL,
    parent      uuid    NOT NULL,
    type_alias  text    NOT NULL,
    size        bigint  NOT NULL,
    version     bigint  NOT NULL,
    PRIMARY KEY (project, parent, type_alias)
);

-- Kept, with the other counters, by the triggers of the counters block (issue 12) below.

-- The lock that serialises every change of one ordered list (project, type, parent), and nothing else:
-- transaction-scoped, so it is safe with pooled connections. Every writer of a list's order takes it.
CREATE OR REPLACE FUNCTION relation_list_lock(p_project text, p_alias text, p_parent uuid)
RETURNS void LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(p_project || '/' || p_alias || '/' || p_parent::text, 0))
$$;

-- POST /relation in one round trip: the type (held against a change or delete until commit), the
-- list's lock, the cardinality-one check and the insert at the end of the list. Each statement of a
-- function takes a fresh snapshot, so the end of the list is read after the lock is held.
-- `outcome`: 'created' (with the row), 'unknown-type', 'taken' (cardinality one) or 'duplicate'.
CREATE OR REPLACE FUNCTION relation_append(
    p_project text, p_alias text, p_parent uuid, p_child uuid, p_comment text, p_gap bigint
) RETURNS TABLE (outcome text, id bigint, type_alias text, parent uuid, child uuid, comment text,
                 created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_cardinality text;
    v_present uuid;
BEGIN
    SELECT t.cardinality INTO v_cardinality FROM relation_type AS t
    WHERE t.project = p_project AND t.alias = p_alias FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown-type', NULL::bigint, NULL, NULL::uuid, NULL::uuid, NULL, NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM relation_list_lock(p_project, p_alias, p_parent);
    IF v_cardinality = 'one' THEN
        SELECT r.child INTO v_present FROM relation AS r
        WHERE r.project = p_project AND r.parent = p_parent AND r.type_alias = p_alias
        ORDER BY r.position, r.id LIMIT 1;
        IF v_present IS NOT NULL AND v_present <> p_child THEN
            RETURN QUERY SELECT 'taken', NULL::bigint, NULL, NULL::uuid, NULL::uuid, NULL, NULL::timestamptz;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
        INSERT INTO relation AS r (project, type_alias, parent, child, position, comment)
        -- The end of the list as the index's last entry: `max(position)` may be planned as a read of
        -- the whole list under the generic plan PL/pgSQL settles on (issue 12).
        SELECT p_project, p_alias, p_parent, p_child,
               coalesce((SELECT e.position FROM relation AS e
                         WHERE e.project = p_project AND e.parent = p_parent AND e.type_alias = p_alias
                         ORDER BY e.position DESC LIMIT 1), 0) + p_gap,
               p_comment
        ON CONFLICT ON CONSTRAINT relation_unique_edge DO NOTHING
        RETURNING 'created', r.id, r.type_alias, r.parent, r.child, r.comment, r.created_at;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'duplicate', NULL::bigint, NULL, NULL::uuid, NULL::uuid, NULL, NULL::timestamptz;
    END IF;
END $$;

-- === rate limits (issue 11) ===
-- A key's own budget (`relations keys create --rate-limit "<n>/s burst <m>"`); NULL: RELATIONS_RATE_LIMIT.
ALTER TABLE api_key ADD COLUMN IF NOT EXISTS rate_per_second integer;
ALTER TABLE api_key ADD COLUMN IF NOT EXISTS rate_burst integer;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'api_key_rate_limit') THEN
        ALTER TABLE api_key ADD CONSTRAINT api_key_rate_limit CHECK (
            (rate_per_second IS NULL AND rate_burst IS NULL)
            OR (rate_per_second >= 1 AND rate_burst >= rate_per_second));
    END IF;
END $$;

-- One token bucket per credential ('key:<key id>' or 'jwt:<project>:<subject>'), shared by every
-- worker: workers lease slices of it (rate_lease) and serve from them locally. Unlogged: a bucket
-- is worth nothing after a crash (it would be full again within seconds), so it costs no WAL (and it
-- lives on the primary only). Keyed by credential, looked up before any project-scoped query: like
-- api_key, a small table outside the per-project distribution.
CREATE UNLOGGED TABLE IF NOT EXISTS rate_bucket (
    credential  text             PRIMARY KEY,
    tokens      double precision NOT NULL,
    updated_at  timestamptz      NOT NULL
);

-- Refill the bucket by the time elapsed since its last lease (capped at the burst), add back what
-- the caller did not spend of its previous slice, and take up to p_want whole tokens. The row lock is
-- taken before the clock is read, so concurrent leases never count the same refill twice.
CREATE OR REPLACE FUNCTION rate_lease(
    p_credential text, p_rate double precision, p_burst double precision, p_want integer,
    p_give_back double precision
) RETURNS TABLE (granted integer, tokens double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now timestamptz;
    v_tokens double precision;
    v_granted integer;
BEGIN
    PERFORM 1 FROM rate_bucket AS b WHERE b.credential = p_credential FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rate_bucket AS b (credential, tokens, updated_at)
        VALUES (p_credential, p_burst, clock_timestamp()) ON CONFLICT (credential) DO NOTHING;
        PERFORM 1 FROM rate_bucket AS b WHERE b.credential = p_credential FOR UPDATE;
    END IF;
    v_now := clock_timestamp();
    SELECT least(p_burst, b.tokens + p_give_back
                 + p_rate * greatest(0, extract(epoch FROM v_now - b.updated_at)))
    INTO v_tokens FROM rate_bucket AS b WHERE b.credential = p_credential;
    v_granted := greatest(0, least(p_want, floor(v_tokens)))::integer;
    UPDATE rate_bucket AS b SET tokens = v_tokens - v_granted, updated_at = v_now
    WHERE b.credential = p_credential;
    RETURN QUERY SELECT v_granted, v_tokens - v_granted;
END $$;

-- === bulk import (issue 14) ===
-- POST /relation/import rewrites many lists (100,000 of them, say) in one transaction. Taking each
-- list's lock would need one lock-table entry per list, and PostgreSQL's shared lock table holds only
-- about max_locks_per_transaction × max_connections entries for all sessions together ("out of shared
-- memory" past it). So the import takes one lock per project, exclusively, and every list writer takes
-- that same lock shared before its list's lock: list edits of a project run side by side as before and
-- wait only while an import of that project merges (its upload is staged before it takes the lock).
-- This definition replaces relation_list_lock's above; every writer of a list's order calls it.
CREATE OR REPLACE FUNCTION relation_project_lock_key(p_project text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('relation-import/' || p_project, 0) $$;

CREATE OR REPLACE FUNCTION relation_list_lock(p_project text, p_alias text, p_parent uuid)
RETURNS void LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock_shared(relation_project_lock_key(p_project));
    SELECT pg_advisory_xact_lock(hashtextextended(p_project || '/' || p_alias || '/' || p_parent::text, 0))
$$;

-- === exact counters and cursors (issue 12) ===
-- Every list's `_totalItems` from counters that move in the same transaction as every change, never
-- from counting a list's rows (SPEC §8). All of them are kept by the statement-level triggers below,
-- with transition tables and grouped, so every writer keeps them right: single creates, deletes by id,
-- parent, child or type, list edits and bulk imports of a million rows in one statement.
--   per (parent, type) and per parent: child_list (above), summed over the parent's types;
--   per type:                          type_count, summed over its slots;
--   per (child, type), per child, dependency-only and the child side of related: child_count,
--                                      summed over the child's types joined with the types' current
--                                      flags, so PUT /relation/type changing is_dependency or
--                                      is_bidirectional needs no recount;
--   relation types of a project:       relation_type_count.
--
-- type_count is split into 8 slots, picked by the writing backend's pid: one row per type would be
-- updated by every insert of that type and hold all of them in a queue until each commits. A reader
-- sums at most 8 rows. child_list and child_count are per list and per child: concurrent writers of
-- one list are serialised by the list's lock anyway, and a child is rarely written by many at once.
CREATE TABLE IF NOT EXISTS type_count (
    project     text     NOT NULL,
    type_alias  text     NOT NULL,
    slot        smallint NOT NULL,
    size        bigint   NOT NULL,
    PRIMARY KEY (project, type_alias, slot)
);

-- `loops`: relations whose parent is their own child, so /relation/related counts a bidirectional
-- self-relation once (it is on the parent side already).
CREATE TABLE IF NOT EXISTS child_count (
    project     text    NOT NULL,
    child       uuid    NOT NULL,
    type_alias  text    NOT NULL,
    size        bigint  NOT NULL,
    loops       bigint  NOT NULL,
    PRIMARY KEY (project, child, type_alias)
);

CREATE TABLE IF NOT EXISTS relation_type_count (
    project     text    PRIMARY KEY,
    size        bigint  NOT NULL
);

-- The key that signs list cursors: made once, here, and read by every worker at start-up, so a cursor
-- from one worker (or machine) is good at every other.
CREATE TABLE IF NOT EXISTS cursor_key (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key         bytea   NOT NULL
);
INSERT INTO cursor_key (key) SELECT uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
ON CONFLICT (singleton) DO NOTHING;

-- Each counter's rows are locked in key order (grouped and sorted), so two statements touching
-- several lists, types or children cannot deadlock on them. Rows of the relation's keys
-- (parent, child, type) are never changed by the service; an UPDATE that does change them moves the
-- row out of its old counters and into its new ones.
CREATE OR REPLACE FUNCTION relation_counters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO child_list AS l (project, parent, type_alias, size, version)
        SELECT project, parent, type_alias, count(*), 1 FROM new_rows
        GROUP BY project, parent, type_alias ORDER BY project, parent, type_alias
        ON CONFLICT (project, parent, type_alias)
        DO UPDATE SET size = l.size + excluded.size, version = l.version + 1;
        INSERT INTO type_count AS c (project, type_alias, slot, size)
        SELECT project, type_alias, pg_backend_pid() % 8, count(*) FROM new_rows
        GROUP BY project, type_alias ORDER BY project, type_alias
        ON CONFLICT (project, type_alias, slot) DO UPDATE SET size = c.size + excluded.size;
        INSERT INTO child_count AS c (project, child, type_alias, size, loops)
        SELECT project, child, type_alias, count(*), count(*) FILTER (WHERE parent = child) FROM new_rows
        GROUP BY project, child, type_alias ORDER BY project, child, type_alias
        ON CONFLICT (project, child, type_alias)
        DO UPDATE SET size = c.size + excluded.size, loops = c.loops + excluded.loops;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE child_list AS l SET size = l.size - d.removed, version = l.version + 1
        FROM (SELECT project, parent, type_alias, count(*) AS removed FROM old_rows
              GROUP BY project, parent, type_alias ORDER BY project, parent, type_alias) AS d
        WHERE l.project = d.project AND l.parent = d.parent AND l.type_alias = d.type_alias;
        INSERT INTO type_count AS c (project, type_alias, slot, size)
        SELECT project, type_alias, pg_backend_pid() % 8, -count(*) FROM old_rows
        GROUP BY project, type_alias ORDER BY project, type_alias
        ON CONFLICT (project, type_alias, slot) DO UPDATE SET size = c.size + excluded.size;
        UPDATE child_count AS c SET size = c.size - d.removed, loops = c.loops - d.loops
        FROM (SELECT project, child, type_alias, count(*) AS removed,
                     count(*) FILTER (WHERE parent = child) AS loops FROM old_rows
              GROUP BY project, child, type_alias ORDER BY project, child, type_alias) AS d
        WHERE c.project = d.project AND c.child = d.child AND c.type_alias = d.type_alias;
    ELSE
        UPDATE child_list AS l SET version = l.version + 1
        FROM (SELECT DISTINCT n.project, n.parent, n.type_alias FROM new_rows AS n
              JOIN old_rows AS o ON o.project = n.project AND o.id = n.id
              WHERE o.position <> n.position
                 OR (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child)
              ORDER BY 1, 2, 3) AS c
        WHERE l.project = c.project AND l.parent = c.parent AND l.type_alias = c.type_alias;
        IF EXISTS (SELECT FROM new_rows AS n JOIN old_rows AS o ON o.project = n.project AND o.id = n.id
                   WHERE (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child)) THEN
            -- A change of a relation's keys (no writer of the service makes one): each row leaves
            -- its old counters and joins its new ones.
            WITH delta AS (SELECT o.project, o.parent, o.child, o.type_alias, -1 AS delta FROM old_rows AS o
                  JOIN new_rows AS n ON n.project = o.project AND n.id = o.id
                  WHERE (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child)
                  UNION ALL
                  SELECT n.project, n.parent, n.child, n.type_alias, 1 FROM old_rows AS o
                  JOIN new_rows AS n ON n.project = o.project AND n.id = o.id
                  WHERE (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child))
            INSERT INTO child_list AS l (project, parent, type_alias, size, version)
            SELECT project, parent, type_alias, sum(delta), 1 FROM delta
            GROUP BY project, parent, type_alias ORDER BY project, parent, type_alias
            ON CONFLICT (project, parent, type_alias) DO UPDATE SET size = l.size + excluded.size;
            WITH delta AS (SELECT o.project, o.parent, o.child, o.type_alias, -1 AS delta FROM old_rows AS o
                  JOIN new_rows AS n ON n.project = o.project AND n.id = o.id
                  WHERE (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child)
                  UNION ALL
                  SELECT n.project, n.parent, n.child, n.type_alias, 1 FROM old_rows AS o
                  JOIN new_rows AS n ON n.project = o.project AND n.id = o.id
                  WHERE (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child))
            INSERT INTO type_count AS c (project, type_alias, slot, size)
            SELECT project, type_alias, pg_backend_pid() % 8, sum(delta) FROM delta
            GROUP BY project, type_alias ORDER BY project, type_alias
            ON CONFLICT (project, type_alias, slot) DO UPDATE SET size = c.size + excluded.size;
            WITH delta AS (SELECT o.project, o.parent, o.child, o.type_alias, -1 AS delta FROM old_rows AS o
                  JOIN new_rows AS n ON n.project = o.project AND n.id = o.id
                  WHERE (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child)
                  UNION ALL
                  SELECT n.project, n.parent, n.child, n.type_alias, 1 FROM old_rows AS o
                  JOIN new_rows AS n ON n.project = o.project AND n.id = o.id
                  WHERE (o.parent, o.type_alias, o.child) <> (n.parent, n.type_alias, n.child))
            INSERT INTO child_count AS c (project, child, type_alias, size, loops)
            SELECT project, child, type_alias, sum(delta),
                   coalesce(sum(delta) FILTER (WHERE parent = child), 0)
            FROM delta GROUP BY project, child, type_alias ORDER BY project, child, type_alias
            ON CONFLICT (project, child, type_alias)
            DO UPDATE SET size = c.size + excluded.size, loops = c.loops + excluded.loops;
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- TRUNCATE empties every counter of the table (a list's row stays, with a new version).
CREATE OR REPLACE FUNCTION relation_counters_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE child_list SET size = 0, version = version + 1 WHERE size <> 0;
    DELETE FROM type_count;
    DELETE FROM child_count;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION relation_type_counters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO relation_type_count AS c (project, size)
        SELECT project, count(*) FROM new_rows GROUP BY project ORDER BY project
        ON CONFLICT (project) DO UPDATE SET size = c.size + excluded.size;
    ELSE
        UPDATE relation_type_count AS c SET size = c.size - d.removed
        FROM (SELECT project, count(*) AS removed FROM old_rows GROUP BY project ORDER BY project) AS d
        WHERE c.project = d.project;
    END IF;
    RETURN NULL;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'relation_counters_insert') THEN
        -- Rows written before these counters existed: count them once, with writers held off.
        LOCK TABLE relation, relation_type IN SHARE MODE;
        DROP TRIGGER IF EXISTS relation_counted_insert ON relation;
        DROP TRIGGER IF EXISTS relation_counted_delete ON relation;
        DROP TRIGGER IF EXISTS relation_counted_update ON relation;
        DROP FUNCTION IF EXISTS child_list_count();
        INSERT INTO child_list (project, parent, type_alias, size, version)
        SELECT project, parent, type_alias, count(*), 1 FROM relation GROUP BY project, parent, type_alias
        ON CONFLICT (project, parent, type_alias) DO NOTHING;
        DELETE FROM type_count;
        INSERT INTO type_count (project, type_alias, slot, size)
        SELECT project, type_alias, 0, count(*) FROM relation GROUP BY project, type_alias;
        DELETE FROM child_count;
        INSERT INTO child_count (project, child, type_alias, size, loops)
        SELECT project, child, type_alias, count(*), count(*) FILTER (WHERE parent = child)
        FROM relation GROUP BY project, child, type_alias;
        DELETE FROM relation_type_count;
        INSERT INTO relation_type_count (project, size)
        SELECT project, count(*) FROM relation_type GROUP BY project;
        CREATE TRIGGER relation_counters_insert AFTER INSERT ON relation
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_counters();
        CREATE TRIGGER relation_counters_delete AFTER DELETE ON relation
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_counters();
        CREATE TRIGGER relation_counters_update AFTER UPDATE ON relation
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION relation_counters();
        CREATE TRIGGER relation_counters_truncate AFTER TRUNCATE ON relation
            FOR EACH STATEMENT EXECUTE FUNCTION relation_counters_truncate();
        CREATE TRIGGER relation_type_counters_insert AFTER INSERT ON relation_type
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_type_counters();
        CREATE TRIGGER relation_type_counters_delete AFTER DELETE ON relation_type
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_type_counters();
    END IF;
END $$;

INSERT INTO schema_version (version) VALUES (8) ON CONFLICT (version) DO NOTHING;
