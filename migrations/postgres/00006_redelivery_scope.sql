-- +goose Up
-- PostgreSQL's copy of ../00006_redelivery_scope.sql: the redelivery lookup's index holds
-- only the GUIDs of validly signed deliveries.
DROP INDEX deliveries_guid;
CREATE INDEX deliveries_guid_valid ON deliveries (guid, repo) WHERE guid != '' AND signature = 'valid';

-- +goose Down
DROP INDEX deliveries_guid_valid;
CREATE INDEX deliveries_guid ON deliveries (guid) WHERE guid != '';
