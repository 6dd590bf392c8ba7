-- +goose Up
-- A delivery re-run from the history (its stored payload) names the delivery it replays.
ALTER TABLE deliveries ADD COLUMN replay_of INTEGER REFERENCES deliveries (id) ON DELETE SET NULL;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN replay_of;
