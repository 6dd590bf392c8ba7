-- +goose Up
-- A fleet: several gateways ("nodes") on one database. deploys.node now names the node that
-- runs the deploy, and each node has its own queue: at most one queued deploy per node and
-- repository, which the deliveries arriving meanwhile join.
DROP INDEX deploys_one_queued;
CREATE UNIQUE INDEX deploys_one_queued ON deploys (node, repo) WHERE status = 'queued';
-- A node's claims and its per-repository state (live, running, queued).
CREATE INDEX deploys_node_repo_id ON deploys (node, repo, id);
-- A claim first checks that nothing of the node's repository is running: this index holds
-- only the running rows, where deploys_node_repo_id would walk the repository's history.
CREATE INDEX deploys_running ON deploys (node, repo) WHERE status = 'running';

-- A delivery deployed by several nodes joins one deploy per node. deliveries.deploy_id
-- keeps one of them (the receiving node's own when it deploys the repository), so a
-- single gateway writes nothing here; the others are listed in this table.
CREATE TABLE delivery_deploys (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    deploy_id   INTEGER NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    PRIMARY KEY (delivery_id, deploy_id)
) WITHOUT ROWID;
CREATE INDEX delivery_deploys_deploy_id ON delivery_deploys (deploy_id, delivery_id);

-- +goose Down
DROP TABLE delivery_deploys;
DROP INDEX deploys_running;
DROP INDEX deploys_node_repo_id;
DROP INDEX deploys_one_queued;
CREATE UNIQUE INDEX deploys_one_queued ON deploys (repo) WHERE status = 'queued';
