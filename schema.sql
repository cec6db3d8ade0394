-- The only DDL of the relation registry. Applied at start-up (and by `relations migrate`) when the
-- database is empty or older than SCHEMA_VERSION below; every statement is idempotent.
--
-- Scaling out (SPEC §7): every table carries `project`, and every primary key, unique constraint and
-- index that serves a project-scoped query starts with it, so the tables can be distributed by project
-- (Citus) and project-scoped reads routed to replicas. `api_key` is looked up before the project is
-- known (the key names its project), so it is keyed by its own id: a small reference table.
--
-- schema-version: 16

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

-- === change log (issue 13) ===
-- Every change of `relation` and `relation_type`, written by statement-level triggers in the writing
-- transaction itself (so every writer logs, and a rolled-back change leaves nothing), read by
-- GET /relation/changes and the webhook dispatcher in commit order. The ordering argument is in
-- service/changes/__init__.py; in short: each writing transaction records, at commit, a key made of
-- its commit-time snapshot (xmax, then the number of transactions still running, fewer sorting later,
-- then its xid), publishing a lower bound of it while it commits, and a reader delivers only keys
-- below both its own snapshot's xmax and every published bound, so nothing can later commit with a
-- smaller key.

-- One row per (project, writing transaction): inserted by the statement triggers (ON CONFLICT DO
-- NOTHING), completed at commit by the deferred constraint trigger below with the ordering key.
-- `commit_key`: int8send(snapshot xmax) || int4send(2147483647 - running xids) || int8send(xid), so
-- that bytea order is the order of the key. NULL until commit (and no reader sees it before).
CREATE TABLE IF NOT EXISTS relation_change_commit (
    project       text        NOT NULL,
    xid           bigint      NOT NULL,
    commit_key    bytea,
    committed_at  timestamptz,
    moved_lists   boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (project, xid)
);
-- A project's feed and the global one (webhook dispatcher, prune) walk these in key order.
CREATE INDEX IF NOT EXISTS relation_change_commit_by_project
    ON relation_change_commit (project, commit_key) WHERE commit_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS relation_change_commit_by_key
    ON relation_change_commit (commit_key) WHERE commit_key IS NOT NULL;

-- The events. `id` orders a transaction's events (statement order, then row order); it is the event's
-- id. Relations are stored as columns (cheaper per row than JSON: an import logs 1,000,000 of them),
-- relation types as their §4 JSON without _links; `list.reordered` keeps the list's size and version
-- as child_list had them at commit (the ETag).
CREATE SEQUENCE IF NOT EXISTS relation_change_id_seq;
CREATE TABLE IF NOT EXISTS relation_change (
    project       text        NOT NULL,
    xid           bigint      NOT NULL,
    id            bigint      NOT NULL DEFAULT nextval('relation_change_id_seq'),
    kind          text        NOT NULL,
    relation_id   bigint,
    type_alias    text,
    parent        uuid,
    child         uuid,
    comment       text,
    created_at    timestamptz,
    list_size     bigint,
    list_version  bigint,
    type_data     jsonb,
    PRIMARY KEY (project, xid, id)
);
ALTER SEQUENCE relation_change_id_seq OWNED BY relation_change.id;

-- Per project, the key of the newest transaction whose events the prune has started deleting: a
-- cursor below it may have missed events (410 Gone).
CREATE TABLE IF NOT EXISTS relation_change_horizon (
    project     text   PRIMARY KEY,
    pruned_key  bytea  NOT NULL
);

-- The statement triggers. Each writes its events and the transaction's marker rows (one per project,
-- ON CONFLICT DO NOTHING: the deferred trigger below then fires once per transaction and project) in
-- one statement. The ordering key needs the commit-time snapshot that only READ COMMITTED gives a
-- deferred trigger, hence the guard.
CREATE OR REPLACE FUNCTION relation_change_guard() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'relations are written in READ COMMITTED transactions only (the change log orders them by their commit-time snapshot)'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    RETURN pg_current_xact_id()::text::bigint;
END $$;

CREATE OR REPLACE FUNCTION relation_change_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_xid bigint := relation_change_guard();
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH marked AS (
            INSERT INTO relation_change_commit (project, xid) SELECT DISTINCT project, v_xid FROM new_rows
            ON CONFLICT (project, xid) DO NOTHING
        )
        INSERT INTO relation_change (project, xid, kind, relation_id, type_alias, parent, child, comment,
                                     created_at)
        SELECT project, v_xid, 'relation.created', id, type_alias, parent, child, comment, created_at
        FROM new_rows ORDER BY id;
    ELSIF TG_OP = 'DELETE' THEN
        WITH marked AS (
            INSERT INTO relation_change_commit (project, xid) SELECT DISTINCT project, v_xid FROM old_rows
            ON CONFLICT (project, xid) DO NOTHING
        )
        INSERT INTO relation_change (project, xid, kind, relation_id, type_alias, parent, child, comment,
                                     created_at)
        SELECT project, v_xid, 'relation.deleted', id, type_alias, parent, child, comment, created_at
        FROM old_rows ORDER BY id;
    ELSE
        -- A comment change is relation.updated; a change of positions is one list.reordered per list
        -- (completed at commit with the list's ETag, and kept once per list and transaction). No route
        -- moves a relation to another parent, child or type, but an UPDATE past the API may: that is
        -- the relation as it was deleted and the relation as it is created, so the feed, webhooks and
        -- the read cache (which drops what both touch) follow it too.
        WITH changed AS (
            SELECT n.*, o.type_alias AS old_type_alias, o.parent AS old_parent, o.child AS old_child,
                   o.comment AS old_comment, o.created_at AS old_created_at,
                   (o.type_alias, o.parent, o.child) IS DISTINCT FROM (n.type_alias, n.parent, n.child)
                       AS rekeyed,
                   o.comment IS DISTINCT FROM n.comment AS commented, o.position <> n.position AS repositioned
            FROM new_rows AS n JOIN old_rows AS o ON o.project = n.project AND o.id = n.id
            WHERE o.comment IS DISTINCT FROM n.comment OR o.position <> n.position
               OR (o.type_alias, o.parent, o.child) IS DISTINCT FROM (n.type_alias, n.parent, n.child)
        ), marked AS (
            INSERT INTO relation_change_commit AS m (project, xid, moved_lists)
            SELECT project, v_xid, bool_or(repositioned AND NOT rekeyed) FROM changed GROUP BY project
            ON CONFLICT (project, xid) DO UPDATE SET moved_lists = true WHERE excluded.moved_lists
        )
        INSERT INTO relation_change (project, xid, kind, relation_id, type_alias, parent, child, comment,
                                     created_at)
        SELECT project, v_xid, kind, relation_id, type_alias, parent, child, comment, created_at FROM (
            SELECT project, 'relation.deleted' AS kind, id AS relation_id, old_type_alias AS type_alias,
                   old_parent AS parent, old_child AS child, old_comment AS comment,
                   old_created_at AS created_at, 0 AS part, id AS rank, 0 AS step
            FROM changed WHERE rekeyed
            UNION ALL
            SELECT project, 'relation.created', id, type_alias, parent, child, comment, created_at, 0, id, 1
            FROM changed WHERE rekeyed
            UNION ALL
            SELECT project, 'relation.updated', id, type_alias, parent, child, comment, created_at, 0, id, 0
            FROM changed WHERE commented AND NOT rekeyed
            UNION ALL
            SELECT DISTINCT project, 'list.reordered', NULL::bigint, type_alias, parent, NULL::uuid,
                   NULL::text, NULL::timestamptz, 1, 0, 0
            FROM changed WHERE repositioned AND NOT rekeyed
        ) AS events ORDER BY part, rank, step, parent, type_alias;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION relation_type_change_data(t relation_type) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        '_id', t.type_id, 'alias', t.alias, 'name', t.name, 'isBidirectional', t.is_bidirectional,
        'isDependency', t.is_dependency, 'parentObjectType', t.parent_object_type,
        'childObjectType', t.child_object_type, 'cardinality', t.cardinality,
        '_createDate', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        '_updateDate', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;

CREATE OR REPLACE FUNCTION relation_type_change_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_xid bigint := relation_change_guard();
BEGIN
    IF TG_OP = 'DELETE' THEN
        WITH marked AS (
            INSERT INTO relation_change_commit (project, xid) SELECT DISTINCT project, v_xid FROM old_rows
            ON CONFLICT (project, xid) DO NOTHING
        )
        INSERT INTO relation_change (project, xid, kind, type_alias, type_data)
        SELECT o.project, v_xid, 'relationType.deleted', o.alias, relation_type_change_data(o)
        FROM old_rows AS o ORDER BY o.alias;
    ELSE
        WITH marked AS (
            INSERT INTO relation_change_commit (project, xid) SELECT DISTINCT project, v_xid FROM new_rows
            ON CONFLICT (project, xid) DO NOTHING
        )
        INSERT INTO relation_change (project, xid, kind, type_alias, type_data)
        SELECT n.project, v_xid, CASE TG_OP WHEN 'INSERT' THEN 'relationType.created'
                                     ELSE 'relationType.updated' END,
               n.alias, relation_type_change_data(n)
        FROM new_rows AS n ORDER BY n.alias;
    END IF;
    RETURN NULL;
END $$;

-- At commit (deferred), once per marker row: the ordering key from a fresh snapshot (READ COMMITTED
-- takes one for deferred triggers and for each statement of a volatile function), the lists' ETags of
-- list.reordered (one event per list kept), and the wake-up of waiting readers.
CREATE OR REPLACE FUNCTION relation_change_commit_key() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_moved boolean;
BEGIN
    -- Readers must know the key of a transaction between its commit snapshot and its commit: a
    -- shared advisory lock, visible in pg_locks at once and released only once the commit is visible,
    -- publishes a lower bound of its xmax (taken before the key's snapshot, so never above it).
    PERFORM pg_advisory_xact_lock_shared(
        1919247211, (pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296)::bit(32)::integer);
    -- NEW is the row as inserted; `moved_lists` may have been set since, so it is read back here.
    -- The block (an exception clause makes it a subtransaction) gives this write an xid of its own,
    -- assigned after the snapshot was taken, so at least its xmax: committing it moves every later
    -- snapshot's xmax past this key's, and the transaction is deliverable at once when no other
    -- writer runs (else a quiet server would hold it back until some other transaction ended).
    BEGIN
        UPDATE relation_change_commit
        SET commit_key = int8send(pg_snapshot_xmax(s.snapshot)::text::bigint)
                         || int4send(2147483647 - (SELECT count(*)::integer FROM pg_snapshot_xip(s.snapshot)))
                         || int8send(NEW.xid),
            committed_at = clock_timestamp()
        FROM (SELECT pg_current_snapshot() AS snapshot) AS s
        WHERE project = NEW.project AND xid = NEW.xid
        RETURNING moved_lists INTO v_moved;
    EXCEPTION WHEN no_data_found THEN
        RAISE;  -- never raised: the clause is there for the subtransaction
    END;
    IF v_moved THEN
        DELETE FROM relation_change AS c USING (
            SELECT id, row_number() OVER (PARTITION BY parent, type_alias ORDER BY id) AS n
            FROM relation_change WHERE project = NEW.project AND xid = NEW.xid AND kind = 'list.reordered'
        ) AS repeated
        WHERE c.project = NEW.project AND c.xid = NEW.xid AND c.id = repeated.id AND repeated.n > 1;
        UPDATE relation_change AS c SET list_size = l.size, list_version = l.version
        FROM child_list AS l
        WHERE c.project = NEW.project AND c.xid = NEW.xid AND c.kind = 'list.reordered'
          AND l.project = c.project AND l.parent = c.parent AND l.type_alias = c.type_alias;
    END IF;
    -- NOTIFY holds a server-wide lock from before the commit until after its WAL flush, so notifying
    -- writers commit one at a time (4 times slower POSTs at 32 clients). The service's own sessions
    -- say `relations.notify = after-commit`: it notifies after the commit, coalesced per worker.
    -- Every other writer (an import from the command line, psql) notifies here, at its commit.
    IF coalesce(current_setting('relations.notify', true), '') <> 'after-commit' THEN
        PERFORM pg_notify('relation_changes', NEW.project);
    END IF;
    RETURN NULL;
END $$;

-- The delivery bound of a reader: the largest commit-key xmax it may deliver now. A transaction that
-- commits after this call has either published its key's lower bound already (the advisory lock of
-- relation_change_commit_key, held until its commit is visible) or takes its commit snapshot after
-- this statement's snapshot, so its xmax is at least this snapshot's xmax. So the bound is one below
-- the smaller of this snapshot's xmax and the smallest published xmax. Unlike a snapshot's xmin, it
-- ignores transactions that write no change (other tables, other databases of the server). The
-- events must then be read under a later snapshot (relation_change_page's second statement), in which
-- every transaction whose lock was gone when pg_locks was read is visible.
-- One statement (its snapshot and pg_locks read together), in PL/pgSQL so its plan is kept: as a SQL
-- function it was planned at every call, 0.42 ms a call against 0.13 ms (pgbench, one client).
CREATE OR REPLACE FUNCTION relation_change_bound() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (
        WITH snapshot AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax),
        published AS (
            SELECT objid::text::bigint AS xmax32 FROM pg_locks
            WHERE locktype = 'advisory' AND classid = 1919247211::oid AND objsubid = 2 AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        )
        -- pg_locks holds the low 32 bits: the full xmax is the one nearest this snapshot's.
        SELECT least(snapshot.xmax,
                     min(snapshot.xmax + (p.xmax32 - snapshot.xmax % 4294967296 + 6442450944) % 4294967296
                         - 2147483648)) - 1
        FROM snapshot LEFT JOIN published AS p ON true GROUP BY snapshot.xmax);
END $$;

-- A page of the change log after (p_key, p_id): one project's (p_project) or every project's (NULL),
-- at most p_limit events in commit order, each row also carrying the bound, the retention horizon
-- (the project's, or the newest of any project) and the first committed key not deliverable yet; one
-- row with NULL event columns when there is no event. Two statements, hence a function: the bound
-- first, then the events under a fresh snapshot (READ COMMITTED; see relation_change_bound).
CREATE OR REPLACE FUNCTION relation_change_page(p_project text, p_key bytea, p_id bigint, p_limit integer)
RETURNS TABLE (bound bigint, pruned_key bytea, held_key bytea, commit_key bytea, committed_at timestamptz,
               project text, id bigint, kind text, relation_id bigint, type_alias text, parent uuid,
               child uuid, comment text, created_at timestamptz, list_size bigint, list_version bigint,
               type_data jsonb)
-- No JIT (a page reads at most p_limit events by index; compiling a plan would cost more than it runs).
LANGUAGE plpgsql VOLATILE SET jit = off AS $$
DECLARE
    v_bound bigint := relation_change_bound();
    v_end bytea := int8send(v_bound + 1);  -- keys below it have xmax <= v_bound
BEGIN
    -- Two queries, not one with "p_project IS NULL OR …": each keeps a plan on its own index.
    IF p_project IS NOT NULL THEN
        RETURN QUERY
        WITH meta AS (
            SELECT (SELECT h.pruned_key FROM relation_change_horizon AS h WHERE h.project = p_project)
                       AS pruned_key,
                   (SELECT m.commit_key FROM relation_change_commit AS m
                    WHERE m.project = p_project AND m.commit_key IS NOT NULL AND m.commit_key >= v_end
                    ORDER BY m.commit_key LIMIT 1) AS held_key
        ), tx AS (
            SELECT m.project, m.xid, m.commit_key, m.committed_at FROM relation_change_commit AS m
            WHERE m.project = p_project AND m.commit_key IS NOT NULL
              AND m.commit_key >= p_key AND m.commit_key < v_end
            ORDER BY m.commit_key LIMIT p_limit
        ), page AS (
            SELECT tx.commit_key, tx.committed_at, c.project, c.id, c.kind, c.relation_id, c.type_alias,
                   c.parent, c.child, c.comment, c.created_at, c.list_size, c.list_version, c.type_data
            FROM tx CROSS JOIN LATERAL (
                SELECT * FROM relation_change AS e
                WHERE e.project = tx.project AND e.xid = tx.xid AND (tx.commit_key > p_key OR e.id > p_id)
                ORDER BY e.id LIMIT p_limit
            ) AS c
            ORDER BY tx.commit_key, c.id LIMIT p_limit
        )
        SELECT v_bound, meta.pruned_key, meta.held_key, page.*
        FROM meta LEFT JOIN page ON true ORDER BY page.commit_key, page.id;
    ELSE
        RETURN QUERY
        WITH meta AS (
            SELECT (SELECT h.pruned_key FROM relation_change_horizon AS h
                    ORDER BY h.pruned_key DESC LIMIT 1) AS pruned_key,
                   (SELECT m.commit_key FROM relation_change_commit AS m
                    WHERE m.commit_key IS NOT NULL AND m.commit_key >= v_end
                    ORDER BY m.commit_key LIMIT 1) AS held_key
        ), tx AS (
            SELECT m.project, m.xid, m.commit_key, m.committed_at FROM relation_change_commit AS m
            WHERE m.commit_key IS NOT NULL AND m.commit_key >= p_key AND m.commit_key < v_end
            ORDER BY m.commit_key LIMIT p_limit
        ), page AS (
            SELECT tx.commit_key, tx.committed_at, c.project, c.id, c.kind, c.relation_id, c.type_alias,
                   c.parent, c.child, c.comment, c.created_at, c.list_size, c.list_version, c.type_data
            FROM tx CROSS JOIN LATERAL (
                SELECT * FROM relation_change AS e
                WHERE e.project = tx.project AND e.xid = tx.xid AND (tx.commit_key > p_key OR e.id > p_id)
                ORDER BY e.id LIMIT p_limit
            ) AS c
            ORDER BY tx.commit_key, c.id LIMIT p_limit
        )
        SELECT v_bound, meta.pruned_key, meta.held_key, page.*
        FROM meta LEFT JOIN page ON true ORDER BY page.commit_key, page.id;
    END IF;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'relation_logged_insert') THEN
        CREATE CONSTRAINT TRIGGER relation_change_committed AFTER INSERT ON relation_change_commit
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION relation_change_commit_key();
        CREATE TRIGGER relation_logged_insert AFTER INSERT ON relation
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_change_log();
        CREATE TRIGGER relation_logged_delete AFTER DELETE ON relation
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_change_log();
        CREATE TRIGGER relation_logged_update AFTER UPDATE ON relation
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION relation_change_log();
        CREATE TRIGGER relation_type_logged_insert AFTER INSERT ON relation_type
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_type_change_log();
        CREATE TRIGGER relation_type_logged_delete AFTER DELETE ON relation_type
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION relation_type_change_log();
        CREATE TRIGGER relation_type_logged_update AFTER UPDATE ON relation_type
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION relation_type_change_log();
    END IF;
END $$;

-- === bulk import (issue 14) ===
-- POST /relation/import rewrites many lists (100,000 of them, say) in one transaction. Taking each
-- list's lock would need one lock-table entry per list, and PostgreSQL's shared lock table holds only
-- about max_locks_per_transaction × max_connections entries for all sessions together ("out of shared
-- memory" past it). So the import takes one lock per project, exclusively, and every list writer takes
-- that same lock shared before its list's lock: list edits of a project run side by side as before and
-- wait only while an import of that project merges (its upload is staged before it takes the lock).
CREATE OR REPLACE FUNCTION relation_project_lock_key(p_project text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('relation-import/' || p_project, 0) $$;

-- The lock that serialises every change of one ordered list (project, type, parent), and nothing else,
-- after the project's import lock (shared): transaction-scoped, so it is safe with pooled connections.
-- Every writer of a list's order calls it (relation_append for each POST). PL/pgSQL, not SQL: a
-- SQL function of two statements is planned again at every call (0.07 ms of each POST's 0.43 ms).
CREATE OR REPLACE FUNCTION relation_list_lock(p_project text, p_alias text, p_parent uuid)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(relation_project_lock_key(p_project)),
            pg_advisory_xact_lock(hashtextextended(p_project || '/' || p_alias || '/' || p_parent::text, 0));
END $$;

-- === Webhooks (issue 13) ===
-- Subscriptions (SPEC §10). `secret` and `previous_secret` are AES-GCM ciphertexts under a key derived
-- from RELATIONS_SECRET_KEY (service/webhooks/secrets.py): a dump of this table alone reveals no secret.
-- The previous secret keeps signing until `previous_secret_until` (24 h after a rotation).
CREATE TABLE IF NOT EXISTS webhook (
    project               text        NOT NULL REFERENCES project (project) ON DELETE CASCADE,
    id                    uuid        NOT NULL,
    url                   text        NOT NULL,
    events                text[]      NOT NULL,
    description           text        NOT NULL DEFAULT '',
    enabled               boolean     NOT NULL DEFAULT true,
    disabled_reason       text,
    secret                bytea       NOT NULL,
    previous_secret       bytea,
    previous_secret_until timestamptz,
    created_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (project, id)
);

-- One row per (webhook, event): the queue and the delivery log at once. `body` is the exact JSON sent
-- on every attempt. A pending delivery is due at `next_attempt_at` (NULL while its webhook is
-- disabled); a sender that claims it sets `claim` and moves `next_attempt_at` to the end of its lease,
-- so a sender that dies mid-attempt loses nothing: the delivery is due again when the lease ends.
CREATE TABLE IF NOT EXISTS webhook_delivery (
    project          text        NOT NULL,
    webhook_id       uuid        NOT NULL,
    id               bigint      GENERATED ALWAYS AS IDENTITY,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    body             text        NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                                 CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz DEFAULT clock_timestamp(),
    claim            uuid,
    last_status      integer,
    last_error       text,
    last_attempt_at  timestamptz,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (project, webhook_id, id),
    FOREIGN KEY (project, webhook_id) REFERENCES webhook (project, id) ON DELETE CASCADE
);
-- A change is queued once per webhook (the dispatcher's ON CONFLICT). The event id leads, so that this
-- index never serves a lookup by webhook: with the statistics of a table that had just grown (no
-- ANALYZE yet), the planner took a unique (project, webhook_id, event_id) for the updates of a claim
-- and of its outcomes by (project, webhook_id, id) and read every delivery of the webhook for each
-- row (14 ms a claim under the benchmark's load, against the primary key's single row).
CREATE UNIQUE INDEX IF NOT EXISTS webhook_delivery_event ON webhook_delivery (event_id, project, webhook_id);
ALTER TABLE webhook_delivery DROP CONSTRAINT IF EXISTS webhook_delivery_project_webhook_id_event_id_key;
-- What a sender looks for: due deliveries of one webhook, oldest first, and its attempts in flight.
CREATE INDEX IF NOT EXISTS webhook_delivery_due ON webhook_delivery (project, webhook_id, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_delivery_next ON webhook_delivery (next_attempt_at)
    WHERE state = 'pending';

-- A sender's claim in one round trip: lock the enabled webhooks with a due delivery (FOR NO KEY UPDATE
-- SKIP LOCKED: delivery inserts, which take KEY SHARE, go on), then, in a second statement whose
-- snapshot sees every claim committed before those locks were granted, claim up to each one's free
-- slots, oldest due first. Locking first is what bounds the attempts in flight per webhook across
-- workers. The claim's lease ends at the new next_attempt_at: a sender that dies mid-attempt leaves
-- the delivery due again then.
CREATE OR REPLACE FUNCTION webhook_claim(p_token uuid, p_per_webhook integer, p_webhooks integer,
                                         p_lease_seconds float8)
RETURNS TABLE (project text, webhook_id uuid, id bigint, event_id text, body text, attempts integer,
               url text, secret bytea, previous_secret bytea, previous_signs boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_projects text[];
    v_ids uuid[];
BEGIN
    SELECT array_agg(w.project), array_agg(w.id) INTO v_projects, v_ids FROM (
        SELECT w.project, w.id FROM webhook AS w
        WHERE w.enabled
          AND EXISTS (SELECT 1 FROM webhook_delivery AS d WHERE d.project = w.project
                      AND d.webhook_id = w.id AND d.state = 'pending'
                      AND d.next_attempt_at <= clock_timestamp())
        LIMIT p_webhooks
        FOR NO KEY UPDATE OF w SKIP LOCKED
    ) AS w;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH claimed AS (
        UPDATE webhook_delivery AS d
        SET claim = p_token, attempts = d.attempts + 1, last_attempt_at = clock_timestamp(),
            next_attempt_at = clock_timestamp() + make_interval(secs => p_lease_seconds)
        FROM (
            SELECT picked.project, picked.webhook_id, picked.id
            FROM unnest(v_projects, v_ids) AS h (project, webhook_id)
            CROSS JOIN LATERAL (
                SELECT x.project, x.webhook_id, x.id FROM webhook_delivery AS x
                WHERE x.project = h.project AND x.webhook_id = h.webhook_id AND x.state = 'pending'
                  AND x.next_attempt_at <= clock_timestamp()
                ORDER BY x.next_attempt_at, x.id
                LIMIT greatest(p_per_webhook - (
                    SELECT count(*) FROM webhook_delivery AS f
                    WHERE f.project = h.project AND f.webhook_id = h.webhook_id AND f.state = 'pending'
                      AND f.claim IS NOT NULL AND f.next_attempt_at > clock_timestamp()), 0)
            ) AS picked
        ) AS chosen
        WHERE d.project = chosen.project AND d.webhook_id = chosen.webhook_id AND d.id = chosen.id
        RETURNING d.project, d.webhook_id, d.id, d.event_id, d.body, d.attempts
    )
    SELECT c.project, c.webhook_id, c.id, c.event_id, c.body, c.attempts, w.url, w.secret,
           w.previous_secret, coalesce(w.previous_secret_until > clock_timestamp(), false)
    FROM claimed AS c JOIN webhook AS w ON w.project = c.project AND w.id = c.webhook_id;
END $$;

-- A sender's turn in one round trip: the outcomes of its attempts that ended (each counts only while
-- its claim holds: a lease that ran out belongs to another sender; `retry_in`, seconds until the next
-- attempt of a pending delivery), then, when it has room (p_per_webhook > 0), its claim, which sees
-- the slots those outcomes freed (the same transaction).
CREATE OR REPLACE FUNCTION webhook_turn(p_token uuid, p_per_webhook integer, p_webhooks integer,
                                        p_lease_seconds float8, p_projects text[], p_webhook_ids uuid[],
                                        p_ids bigint[], p_states text[], p_statuses integer[],
                                        p_errors text[], p_retry_in float8[])
RETURNS TABLE (project text, webhook_id uuid, id bigint, event_id text, body text, attempts integer,
               url text, secret bytea, previous_secret bytea, previous_signs boolean)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF cardinality(p_ids) > 0 THEN
        UPDATE webhook_delivery AS d
        SET claim = NULL, state = o.state, last_status = o.status, last_error = o.error,
            next_attempt_at = CASE WHEN o.state = 'pending'
                                   THEN clock_timestamp() + make_interval(secs => o.retry_in) END,
            delivered_at = CASE WHEN o.state = 'delivered' THEN clock_timestamp() ELSE d.delivered_at END
        FROM unnest(p_projects, p_webhook_ids, p_ids, p_states, p_statuses, p_errors, p_retry_in)
            AS o (project, webhook_id, id, state, status, error, retry_in)
        WHERE d.project = o.project AND d.webhook_id = o.webhook_id AND d.id = o.id AND d.claim = p_token;
    END IF;
    IF p_per_webhook > 0 THEN
        RETURN QUERY SELECT * FROM webhook_claim(p_token, p_per_webhook, p_webhooks, p_lease_seconds);
    END IF;
END $$;

-- The dispatcher's place in the global change log: one row, locked FOR UPDATE SKIP LOCKED by the one
-- worker that dispatches at a time; `position` is the change log's own cursor, kept as its text form.
CREATE TABLE IF NOT EXISTS webhook_dispatch (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    position    text,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO webhook_dispatch (singleton) VALUES (true) ON CONFLICT DO NOTHING;

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
    UPDATE relation_truncations SET count = count + 1;  -- every worker's read cache empties (service/cache)
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

-- === webhook lists by cursor ===
-- GET /webhook in its order (oldest first) from an index range, as every list is read (SPEC §8);
-- GET /webhook/{id}/deliveries (newest first) walks the primary key backwards.
CREATE INDEX IF NOT EXISTS webhook_by_created ON webhook (project, created_at, id);
-- When a webhook was last enabled (made, or enabled again by PUT): only changes committed since are
-- queued for it, whatever the dispatcher's cursor — so while no webhook is enabled the dispatcher may
-- move its cursor to the end now and then instead of at every commit.
ALTER TABLE webhook ADD COLUMN IF NOT EXISTS enabled_at timestamptz;
UPDATE webhook SET enabled_at = created_at WHERE enabled_at IS NULL;
ALTER TABLE webhook ALTER COLUMN enabled_at SET DEFAULT clock_timestamp();
ALTER TABLE webhook ALTER COLUMN enabled_at SET NOT NULL;

-- Each webhook's number of deliveries (the deliveries list's `_totalItems`), moved in the transaction
-- of every insert and delete by the statement-level triggers below, never counted at request time. It
-- goes with its webhook. The dispatcher is the one writer of deliveries, so the row has no queue.
CREATE TABLE IF NOT EXISTS webhook_delivery_count (
    project     text    NOT NULL,
    webhook_id  uuid    NOT NULL,
    size        bigint  NOT NULL,
    PRIMARY KEY (project, webhook_id),
    FOREIGN KEY (project, webhook_id) REFERENCES webhook (project, id) ON DELETE CASCADE
);

CREATE OR REPLACE FUNCTION webhook_delivery_counters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO webhook_delivery_count AS c (project, webhook_id, size)
        SELECT project, webhook_id, count(*) FROM new_rows
        GROUP BY project, webhook_id ORDER BY project, webhook_id
        ON CONFLICT (project, webhook_id) DO UPDATE SET size = c.size + excluded.size;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE webhook_delivery_count AS c SET size = c.size - d.removed
        FROM (SELECT project, webhook_id, count(*) AS removed FROM old_rows
              GROUP BY project, webhook_id ORDER BY project, webhook_id) AS d
        WHERE c.project = d.project AND c.webhook_id = d.webhook_id;
    ELSE
        DELETE FROM webhook_delivery_count;
    END IF;
    RETURN NULL;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'webhook_delivery_counters_insert') THEN
        -- Deliveries made before the counter existed: counted once, with the dispatcher held off.
        LOCK TABLE webhook_delivery IN SHARE MODE;
        DELETE FROM webhook_delivery_count;
        INSERT INTO webhook_delivery_count (project, webhook_id, size)
        SELECT project, webhook_id, count(*) FROM webhook_delivery GROUP BY project, webhook_id;
        CREATE TRIGGER webhook_delivery_counters_insert AFTER INSERT ON webhook_delivery
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_delivery_counters();
        CREATE TRIGGER webhook_delivery_counters_delete AFTER DELETE ON webhook_delivery
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_delivery_counters();
        CREATE TRIGGER webhook_delivery_counters_truncate AFTER TRUNCATE ON webhook_delivery
            FOR EACH STATEMENT EXECUTE FUNCTION webhook_delivery_counters();
    END IF;
END $$;

-- === read cache (issue 16) ===
-- TRUNCATE logs no change (no row trigger fires): it is counted here instead, and a worker's read
-- cache that sees the count move empties itself.
CREATE TABLE IF NOT EXISTS relation_truncations (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    count     bigint  NOT NULL DEFAULT 0
);
INSERT INTO relation_truncations (only_row, count) VALUES (true, 0) ON CONFLICT DO NOTHING;

-- One poll of a worker's read cache (service/cache/follower.py), in one round trip: the primary's WAL
-- position first; then, each under a snapshot taken after it, a page of every project's changes after
-- (p_key, p_id) in commit order (relation_change_page: `held` false), the changes of committed
-- transactions past that page which the page holds back for older writers (`held` true, at most
-- p_limit: the cache drops entries, so their order does not matter; the page delivers them again
-- later), and the TRUNCATE count. So every write acknowledged before the position was read is among
-- the rows, or among the pages before them. A last row carries only `wal_end`, the WAL position read
-- after those snapshots: every change among the rows committed below it (a replica that has replayed
-- it shows them all).
CREATE OR REPLACE FUNCTION relation_cache_poll(p_key bytea, p_id bigint, p_limit integer)
RETURNS TABLE (wal_position bigint, truncations bigint, held boolean, pruned_key bytea, commit_key bytea,
               project text, id bigint, kind text, relation_id bigint, type_alias text, parent uuid,
               child uuid, wal_end bigint)
-- No JIT: its statement's estimated cost passes jit_above_cost, and compiling it took 14 ms a call (a
-- poll 30 times its run). A generic plan: a custom one took 9 ms to make for the values of each call,
-- and the generic plan is as good for any position.
LANGUAGE plpgsql VOLATILE SET jit = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_position bigint := pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint;
BEGIN
    RETURN QUERY
    WITH page AS MATERIALIZED (
        SELECT p.pruned_key, p.commit_key, p.project, p.id, p.kind, p.relation_id, p.type_alias, p.parent,
               p.child
        FROM relation_change_page(NULL, p_key, p_id, p_limit) AS p
    ), last AS (  -- (no max(bytea) before PostgreSQL 17)
        SELECT coalesce((SELECT page.commit_key FROM page WHERE page.id IS NOT NULL
                         ORDER BY page.commit_key DESC LIMIT 1), p_key) AS key,
               (SELECT count(page.id) FROM page) AS events
    ), held AS (  -- each transaction's events by its key, as relation_change_page reads them (a plain join
                  -- of the two tables ran 20 ms a call on a log of two million events, 40 times this)
        SELECT h.commit_key, c.project, c.id, c.kind, c.relation_id, c.type_alias, c.parent, c.child
        FROM last CROSS JOIN LATERAL (
            SELECT m.project, m.xid, m.commit_key FROM relation_change_commit AS m
            WHERE last.events < p_limit AND m.commit_key IS NOT NULL AND m.commit_key > last.key
            ORDER BY m.commit_key LIMIT p_limit
        ) AS h CROSS JOIN LATERAL (
            SELECT e.project, e.id, e.kind, e.relation_id, e.type_alias, e.parent, e.child
            FROM relation_change AS e WHERE e.project = h.project AND e.xid = h.xid
            ORDER BY e.id LIMIT p_limit
        ) AS c
        ORDER BY h.commit_key, c.id LIMIT p_limit
    )
    SELECT v_position, t.count, false, page.*, NULL::bigint FROM page, relation_truncations AS t
    UNION ALL
    SELECT v_position, t.count, true, NULL::bytea, held.*, NULL::bigint FROM held, relation_truncations AS t;
    RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::boolean, NULL::bytea, NULL::bytea, NULL::text,
        NULL::bigint, NULL::text, NULL::bigint, NULL::text, NULL::uuid, NULL::uuid,
        pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint;
END $$;

INSERT INTO schema_version (version) VALUES (16) ON CONFLICT (version) DO NOTHING;
