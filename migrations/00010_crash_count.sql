-- +goose Up
-- How many times in a row a crash of the gateway cut off the work a deploy stands for: the
-- deploy re-queued at start-up after a crash carries its predecessor's count plus one, and
-- at store.MaxCrashes (2) the deploy cut off is failed instead of queued again, so one
-- deploy that kills the gateway does not do so on every restart.
ALTER TABLE deploys ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
