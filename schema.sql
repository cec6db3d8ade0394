-- The only DDL of the relation registry. Applied at start-up (and by `relations migrate`) when the
-- database is empty or older than SCHEMA_VERSION below; every statement is idempotent.
--
-- Scaling out (SPEC §7): every table carries `project`, and every primary key, unique constraint and
-- index that serves a project-scoped query starts with it, so the tables can be distributed by project
-- (Citus) and project-scoped reads routed to replicas. `api_key` is looked up before the project is
-- known (the key names its project), so it is keyed by its own id: a small reference table.
--
-- schema-version: 2

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

INSERT INTO schema_version (version) VALUES (2) ON CONFLICT (version) DO NOTHING;
