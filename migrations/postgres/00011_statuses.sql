-- +goose Up
-- PostgreSQL's copy of ../00011_statuses.sql: the new deploy statuses and pinned_by
-- 'health'. PostgreSQL changes a CHECK constraint in place.
ALTER TABLE deploys DROP CONSTRAINT deploys_status_check;
ALTER TABLE deploys ADD CONSTRAINT deploys_status_check CHECK (status IN ('queued', 'waiting', 'running', 'verifying', 'succeeded', 'failed', 'interrupted', 'skipped', 'superseded'));
ALTER TABLE pins DROP CONSTRAINT pins_pinned_by_check;
ALTER TABLE pins ADD CONSTRAINT pins_pinned_by_check CHECK (pinned_by IN ('rollback', 'pin', 'health'));
