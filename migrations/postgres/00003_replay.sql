-- +goose Up
-- PostgreSQL's copy of ../00003_replay.sql.
ALTER TABLE deliveries ADD COLUMN replay_of BIGINT REFERENCES deliveries (id) ON DELETE SET NULL;
CREATE INDEX deliveries_replay_of ON deliveries (replay_of);

-- +goose Down
DROP INDEX deliveries_replay_of;
ALTER TABLE deliveries DROP COLUMN replay_of;
