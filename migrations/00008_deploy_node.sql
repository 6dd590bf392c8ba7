-- +goose Up
-- The gateway ("node", [server] node) that created each deploy. Deploys recorded before
-- this migration keep '': they predate nodes and name none. The partial unique index
-- deploys_one_queued (one queued deploy per repository) is unchanged.
ALTER TABLE deploys ADD COLUMN node TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE deploys DROP COLUMN node;
