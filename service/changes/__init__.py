"""The change log and the change feed (SPEC §9).

What is written. Statement-level triggers on `relation` and `relation_type` (schema.sql, "change log")
log every change in the writing transaction itself, so every writer (single creates, comment updates,
deletes by id, parent, child or type, list edits, imports) logs without calling anything, set-based (an
import's 1,000,000-row INSERT logs with one INSERT … SELECT), and a rolled-back change leaves nothing.
Events and their `data` (§4's representations without `_links`: a trigger knows no base URL, so hrefs
are not part of stored events; a consumer builds them from `_id` and the alias):
- `relation.created`, `relation.updated` (its comment changed; `data` the relation after),
  `relation.deleted` (`data` the relation as it was): `_id`, `parentId`, `childId`,
  `relationTypeAlias`, `comment`, `_createDate`.
- `list.reordered`: `parentId`, `relationTypeAlias`, `etag` (the list's ETag as it was at commit,
  `child_lists.queries.etag` of `child_list`). Emitted once per list and transaction whenever members
  that stay in the list change position (a move, or a renumbering that makes room: both move the ETag);
  added and removed members have their own created/deleted events in the same transaction.
- `relationType.created`, `relationType.updated`, `relationType.deleted`: `_id`, `alias`, `name`,
  `isBidirectional`, `isDependency`, `parentObjectType`, `childObjectType`, `cardinality`,
  `_createDate`, `_updateDate` (deleted: as it was). A forced type delete logs each relation's
  `relation.deleted` first.
- Every event: `id` (a decimal string, unique and stable: the event's row id), `type`, `occurredAt`
  (when its transaction committed, UTC with milliseconds: every event of one transaction shares it),
  `data`.

Commit order. A sequence number gives the order in which rows were written, not the order in which
their transactions committed, and "order by xid, deliver only below the snapshot's xmin" is wrong too:
transaction A takes xid 100, then waits for a list lock held by B (xid 101); B commits, then A; xid
order puts A first, the reverse of their commit order on that list. So each writing transaction records
at commit time (a DEFERRABLE INITIALLY DEFERRED constraint trigger on its one marker row per project,
`relation_change_commit`, which the statement triggers insert ON CONFLICT DO NOTHING, so it fires once
per transaction and project) its commit-time snapshot (in READ COMMITTED a deferred trigger's statement
takes a fresh one), and transactions are ordered by the key (snapshot xmax, then the number of
in-progress xids in that snapshot descending, then xid), stored as one bytea that sorts the same way.
Claim: if B committed before A's commit snapshot was taken, B sorts before A. A snapshot's xmax is
latestCompletedXid + 1, which never decreases; B's commit raises it to at least B's xid + 1. If A's
xmax is larger, B is first. If they are equal, no xid completed above it meanwhile, so B's xid is below
that xmax, and every xid in progress below it in A's snapshot was already in progress in B's (xids
below it were assigned before either snapshot and can only finish), while B itself (in progress when
B's snapshot was taken, finished in A's) or A (in progress in B's, A's own in its own) leaves the set:
A's count is smaller, unless neither was listed (both at or above that xmax), which for B is impossible
when A's is not, and then the xid decides, B's being below the xmax and A's at or above it. Any two
transactions that could conflict (the same list's lock, the same row) are such a pair: the later one
takes its commit snapshot only after the earlier released its locks, i.e. committed. And an
acknowledged write's successor, started after the acknowledgement, sorts after it.

Delivery. A reader may deliver exactly the keys below a bound under which no key can appear any
more. "xmax at most the xmin of the reader's snapshot" is not such a bound: a transaction takes its key
a moment before it commits (its deferred trigger runs first), and in that moment the xids between its
xmax and its own xid may all end, so its xmax can lie below the reader's xmin while it is still
invisible; a reader that delivered a later key would skip it for good (the concurrency test found
exactly that). So a committing transaction publishes a lower bound of its key first: before its commit
snapshot it takes a shared advisory lock (pg_locks shows it at once) whose key is the xmax of a
snapshot taken just before, and it holds it until its commit is visible. A reader's bound (schema.sql's
relation_change_bound) is one below the smaller of its snapshot's xmax and the smallest published
xmax, read from pg_locks after that snapshot: a transaction that commits later either published
already (its key is above the bound), or takes its commit snapshot after the reader's, so its xmax is
at least the reader's xmax (also above). The events are read under a later snapshot (the second
statement of relation_change_page), in which every transaction whose lock was gone is visible. So a
cursor (the last delivered key and event id) is final: nothing later sorts before it, and a consumer
following it sees each change once, in commit order. The bound ignores every transaction that is not
committing a change (other tables, other databases of the server, a long import still running: it
takes its key when it commits). The latency that remains: a change waits for the writers that were
committing at the same moment (microseconds to milliseconds), and for the xmax of later snapshots
to pass its own, which the commit trigger ensures by writing its key in a subtransaction whose own
xid is assigned after the key's snapshot (its commit moves every later xmax past the key). Writers
must be READ COMMITTED (the trigger refuses others), because a REPEATABLE READ transaction's deferred
trigger would see its first snapshot, not a commit-time one.

Compared: SpiceDB's Postgres datastore stores each transaction's xid and snapshot and its Watch
delivers only what the current snapshot's xmin has passed, ordered by xid, which the lock-wait case
above breaks, and any long transaction on the server delays it. OpenFGA's ReadChanges hides
changes newer than a fixed horizon (a time window) and orders by a ULID taken at write time: a
transaction that commits later than the window after its write is skipped. A key taken from the
commit-time snapshot needs neither a global lock nor a clock.

Reading (this package's interface, also for the webhook dispatcher): `feed.read_project` (one
project's changes after a `Position`) and `feed.read_all` (every project's, for a dispatcher following
the log globally) return `Change(project, position, event)` in that order, `event` in §9's shape and
`position` the cursor after it. Every commit of a change notifies `CHANNEL` (payload: the project)."""
