-- +goose Up
-- PostgreSQL's copy of ../00016_report_commits.sql: the commit a report went to, and the
-- commit that replaced it for a report of a commit left behind.
ALTER TABLE reports ADD COLUMN commit_sha TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '';
