-- +goose Up
-- PostgreSQL's copy of ../00004_write_path.sql: payloads compressed in their own table, and
-- the event and signature indexes holding only the rare values.
CREATE TABLE delivery_payloads (
    delivery_id BIGINT PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
    encoding    TEXT NOT NULL CHECK (encoding IN ('identity', 's2')),
    payload     BYTEA NOT NULL
);

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
