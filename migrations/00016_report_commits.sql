-- +goose Up
-- Issue 22: the commit each forge report went to, recorded when it is sent (the deploy's
-- commit can move while it is queued: two pushes coalesced into one deploy), and, for the
-- report that tells the forge a commit was left behind ("superseded by def5678"), the
-- commit that replaced it ('' for a report of a deploy status).
ALTER TABLE reports ADD COLUMN commit_sha TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '';
