-- +goose Up
-- PostgreSQL's copy of ../00010_crash_count.sql: the crashes in a row behind a deploy.
ALTER TABLE deploys ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
