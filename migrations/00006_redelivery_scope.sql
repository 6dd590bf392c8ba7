-- +goose Up
-- The redelivery lookup matches a GUID only among the deliveries to the same repository
-- whose signature was valid (an unsigned request must not make the forge's delivery a
-- redelivery). This index holds exactly those rows, so the rejected requests an attacker
-- can send with a chosen GUID cost the lookup nothing; it replaces the index of every GUID,
-- which nothing else reads.
DROP INDEX deliveries_guid;
CREATE INDEX deliveries_guid_valid ON deliveries (guid, repo) WHERE guid != '' AND signature = 'valid';

-- +goose Down
DROP INDEX deliveries_guid_valid;
CREATE INDEX deliveries_guid ON deliveries (guid) WHERE guid != '';
