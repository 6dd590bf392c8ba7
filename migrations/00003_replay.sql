-- +goose Up
-- A delivery re-run from the history (its stored payload) names the delivery it replays.
ALTER TABLE deliveries ADD COLUMN replay_of INTEGER REFERENCES deliveries (id) ON DELETE SET NULL;
-- Deleting a delivery looks up the rows that replay it: without this index every pruned
-- delivery would scan the table.
CREATE INDEX deliveries_replay_of ON deliveries (replay_of);

-- +goose Down
DROP INDEX deliveries_replay_of;
ALTER TABLE deliveries DROP COLUMN replay_of;
