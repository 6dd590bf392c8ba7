-- +goose Up
-- New deliveries keep their payload here, compressed, rather than in deliveries.payload: a
-- 7 KB push made each deliveries row span three pages (the row and two overflow pages),
-- all written twice (the WAL, then the checkpoint) in the one writer every delivery waits
-- for. Compressed, a push payload is about 2 KB; the table has no index but its key.
-- Rows recorded before this migration keep theirs in deliveries.payload, where the store
-- still reads them.
CREATE TABLE delivery_payloads (
    delivery_id INTEGER PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
    encoding    TEXT NOT NULL CHECK (encoding IN ('identity', 's2')),
    payload     BLOB NOT NULL
);

-- +goose Down
DROP TABLE delivery_payloads;
