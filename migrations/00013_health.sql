-- +goose Up
-- Health checks (issue 21). A deploy's probes, each with its time, latency, HTTP status or
-- exit code and the first 2 KiB of body or output; deploy_id is NULL for the probes of
-- POST /api/v1/repos/NAME/verify, which belong to no deploy. The automatic rollback a
-- failed check queued names the failed deploy in rollback_of (0: none). A commit whose
-- check failed is bad for its target on every node until an operator clears it.
ALTER TABLE deploys ADD COLUMN rollback_of INTEGER NOT NULL DEFAULT 0;
CREATE TABLE probes (
    id          INTEGER PRIMARY KEY,
    deploy_id   INTEGER REFERENCES deploys (id) ON DELETE CASCADE,
    repo        TEXT NOT NULL,
    node        TEXT NOT NULL DEFAULT '',
    at          TIMESTAMP NOT NULL,
    latency_ms  INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('url', 'command')),
    code        INTEGER NOT NULL DEFAULT 0, -- the HTTP status or the exit code; 0 with an error
    passed      INTEGER NOT NULL DEFAULT 0,
    output      TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX probes_deploy_id ON probes (deploy_id, id);
CREATE INDEX probes_repo_id ON probes (repo, id);
CREATE TABLE bad_commits (
    repo        TEXT NOT NULL,
    commit_hash TEXT NOT NULL,
    deploy_id   INTEGER REFERENCES deploys (id) ON DELETE SET NULL,
    at          TIMESTAMP NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (repo, commit_hash)
);

-- +goose Down
DROP TABLE bad_commits;
DROP TABLE probes;
ALTER TABLE deploys DROP COLUMN rollback_of;
