-- +goose Up
-- PostgreSQL's copy of ../00014_environments.sql.
-- Environments: one hook ([hooks.NAME]) deploys several targets ([repos.NAME]). A delivery
-- is recorded once, under its hook; a delivery recorded before names its repository, which
-- was its hook.
ALTER TABLE deliveries ADD COLUMN hook TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET hook = repo;
CREATE INDEX deliveries_hook_id ON deliveries (hook, id);

-- What a [hooks.NAME] delivery did for each of its targets: queued (its deploys, one per
-- node, are in deploy_id and delivery_deploys, each deploy naming its target in
-- deploys.repo) or ignored, and why. A hook that is its own one target writes nothing
-- here: the delivery's own status and reason are its target's.
CREATE TABLE delivery_targets (
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    repo        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('queued', 'ignored')),
    reason      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, repo)
);
CREATE INDEX delivery_targets_repo ON delivery_targets (repo, delivery_id);

-- +goose Down
DROP TABLE delivery_targets;
DROP INDEX deliveries_hook_id;
ALTER TABLE deliveries DROP COLUMN hook;
