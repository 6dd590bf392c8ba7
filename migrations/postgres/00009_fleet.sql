-- +goose Up
-- PostgreSQL's copy of ../00009_fleet.sql: one queue per node, and the deploys a delivery
-- joined beyond deliveries.deploy_id.
DROP INDEX deploys_one_queued;
CREATE UNIQUE INDEX deploys_one_queued ON deploys (node, repo) WHERE status = 'queued';
CREATE INDEX deploys_node_repo_id ON deploys (node, repo, id);
-- A claim first checks that nothing of the node's repository is running: this index holds
-- only the running rows, where deploys_node_repo_id would walk the repository's history.
CREATE INDEX deploys_running ON deploys (node, repo) WHERE status = 'running';

CREATE TABLE delivery_deploys (
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    deploy_id   BIGINT NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    PRIMARY KEY (delivery_id, deploy_id)
);
CREATE INDEX delivery_deploys_deploy_id ON delivery_deploys (deploy_id, delivery_id);

-- +goose Down
DROP TABLE delivery_deploys;
DROP INDEX deploys_running;
DROP INDEX deploys_node_repo_id;
DROP INDEX deploys_one_queued;
CREATE UNIQUE INDEX deploys_one_queued ON deploys (repo) WHERE status = 'queued';
