-- +goose NO TRANSACTION
-- +goose Up
-- The deploy statuses of safe releases, all at once so each feature needs no rebuild of
-- its own: 'waiting' (for the commit's checks on the forge), 'verifying' (the health check
-- after the commands), 'skipped' (a paths filter found nothing of the target's changed)
-- and 'superseded' (a newer commit took over a waiting or verifying deploy); and a pin
-- set by a failed automatic rollback, pinned_by 'health'.
--
-- SQLite cannot change a CHECK constraint in place, so the tables are rebuilt the way its
-- documentation gives (https://www.sqlite.org/lang_altertable.html, "other kinds of table
-- schema changes"): foreign keys off, so dropping the old deploys table neither sets
-- deliveries.deploy_id to NULL nor cascades; copy, drop, rename, indexes again, a foreign
-- key check, commit, foreign keys on. The gateway migrates on its one writing connection,
-- so the PRAGMAs and the transaction apply to the same connection.
PRAGMA foreign_keys = OFF;
-- +goose StatementBegin
BEGIN IMMEDIATE;
-- +goose StatementEnd
CREATE TABLE deploys_new (
    id            INTEGER PRIMARY KEY,
    repo          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'waiting', 'running', 'verifying', 'succeeded', 'failed', 'interrupted', 'skipped', 'superseded')),
    triggered_by  TEXT NOT NULL,
    ref           TEXT NOT NULL DEFAULT '',
    from_commit   TEXT NOT NULL DEFAULT '',
    to_commit     TEXT NOT NULL DEFAULT '',
    queued_at     TIMESTAMP NOT NULL,
    started_at    TIMESTAMP,
    finished_at   TIMESTAMP,
    error         TEXT NOT NULL DEFAULT '',
    log           TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    target_commit TEXT NOT NULL DEFAULT '',
    node          TEXT NOT NULL DEFAULT '',
    crashes       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO deploys_new (id, repo, status, triggered_by, ref, from_commit, to_commit, queued_at,
        started_at, finished_at, error, log, reason, target_commit, node, crashes)
    SELECT id, repo, status, triggered_by, ref, from_commit, to_commit, queued_at,
        started_at, finished_at, error, log, reason, target_commit, node, crashes FROM deploys;
DROP TABLE deploys;
ALTER TABLE deploys_new RENAME TO deploys;
CREATE UNIQUE INDEX deploys_one_queued ON deploys (node, repo) WHERE status = 'queued';
CREATE INDEX deploys_repo_id ON deploys (repo, id);
CREATE INDEX deploys_status_id ON deploys (status, id);
CREATE INDEX deploys_node_repo_id ON deploys (node, repo, id);
CREATE INDEX deploys_running ON deploys (node, repo) WHERE status = 'running';

CREATE TABLE pins_new (
    repo        TEXT PRIMARY KEY,
    commit_hash TEXT NOT NULL,
    pinned_by   TEXT NOT NULL CHECK (pinned_by IN ('rollback', 'pin', 'health')),
    pinned_at   TIMESTAMP NOT NULL
);
INSERT INTO pins_new (repo, commit_hash, pinned_by, pinned_at)
    SELECT repo, commit_hash, pinned_by, pinned_at FROM pins;
DROP TABLE pins;
ALTER TABLE pins_new RENAME TO pins;
-- +goose StatementBegin
COMMIT;
-- +goose StatementEnd
PRAGMA foreign_keys = ON;
