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

-- Every delivery wrote an entry in each of nine indexes, and every batch dirtied (and so
-- wrote twice) the hot page of each. The event and signature filters look for the rare
-- values (a ping, an invalid signature); the common ones ('push', 'valid') are found
-- quickly by scanning the newest deliveries. So these two index only the rare values,
-- and the store's queries repeat the condition so SQLite can use them.
DROP INDEX deliveries_event_id;
CREATE INDEX deliveries_event_id ON deliveries (event, id) WHERE event != 'push';
DROP INDEX deliveries_signature_id;
CREATE INDEX deliveries_signature_id ON deliveries (signature, id) WHERE signature != 'valid';

-- +goose Down
DROP INDEX deliveries_signature_id;
CREATE INDEX deliveries_signature_id ON deliveries (signature, id);
DROP INDEX deliveries_event_id;
CREATE INDEX deliveries_event_id ON deliveries (event, id);
DROP TABLE delivery_payloads;
