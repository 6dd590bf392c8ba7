-- +goose Up
-- A deploy brings one repository's checkout up to its branch and runs its commands.
-- The table is also the queue: a row in status 'queued' is work to claim.
CREATE TABLE deploys (
    id           INTEGER PRIMARY KEY,
    repo         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'interrupted')),
    triggered_by TEXT NOT NULL,
    ref          TEXT NOT NULL DEFAULT '',
    from_commit  TEXT NOT NULL DEFAULT '',
    to_commit    TEXT NOT NULL DEFAULT '',
    queued_at    TIMESTAMP NOT NULL,
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    error        TEXT NOT NULL DEFAULT '',
    log          TEXT NOT NULL DEFAULT ''
);
-- At most one queued deploy per repository: deliveries arriving meanwhile join it.
CREATE UNIQUE INDEX deploys_one_queued ON deploys (repo) WHERE status = 'queued';
CREATE INDEX deploys_repo_id ON deploys (repo, id);
CREATE INDEX deploys_status_id ON deploys (status, id);

-- Every request that reached a configured hook, whatever became of it.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY,
    guid          TEXT NOT NULL DEFAULT '',
    repo          TEXT NOT NULL,
    event         TEXT NOT NULL DEFAULT '',
    ref           TEXT NOT NULL DEFAULT '',
    before_commit TEXT NOT NULL DEFAULT '',
    after_commit  TEXT NOT NULL DEFAULT '',
    commit_short  TEXT NOT NULL DEFAULT '',
    signature     TEXT NOT NULL CHECK (signature IN ('valid', 'invalid', 'missing', 'unchecked')),
    signature_alg TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('accepted', 'ignored', 'rejected')),
    reason        TEXT NOT NULL DEFAULT '',
    http_status   INTEGER NOT NULL,
    redelivery    INTEGER NOT NULL DEFAULT 0,
    received_at   TIMESTAMP NOT NULL,
    remote_addr   TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT '',
    content_type  TEXT NOT NULL DEFAULT '',
    body_size     INTEGER NOT NULL DEFAULT 0,
    headers       TEXT NOT NULL DEFAULT '{}',
    full_name     TEXT NOT NULL DEFAULT '',
    repo_url      TEXT NOT NULL DEFAULT '',
    pusher        TEXT NOT NULL DEFAULT '',
    message       TEXT NOT NULL DEFAULT '',
    payload       BLOB,
    deploy_id     INTEGER REFERENCES deploys (id) ON DELETE SET NULL
);
CREATE INDEX deliveries_repo_id ON deliveries (repo, id);
CREATE INDEX deliveries_status_id ON deliveries (status, id);
CREATE INDEX deliveries_event_id ON deliveries (event, id);
CREATE INDEX deliveries_signature_id ON deliveries (signature, id);
CREATE INDEX deliveries_guid ON deliveries (guid) WHERE guid != '';
CREATE INDEX deliveries_deploy_id ON deliveries (deploy_id);
CREATE INDEX deliveries_after_commit ON deliveries (after_commit);
CREATE INDEX deliveries_received_at ON deliveries (received_at);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE deploys;
