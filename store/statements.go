// Statements: the store's fixed SQL, each in SQLite's spelling beside PostgreSQL's where
// that is not mechanical (see stmt and sql in dialect.go), grouped by domain.

package store

import "strings"

// Deliveries (the write path's statements are still in deliveries.go): the statements
// whose PostgreSQL form is not a matter of fragments, keyed by their SQLite text. On
// PostgreSQL writes run concurrently (the delivery writer, the workers' claims and
// results, each on its own pooled connection), where on SQLite one connection takes turns.
var pgStatements = map[string]string{
	// The queued deploy a delivery joins stays locked until the delivery commits, so a
	// claim (an UPDATE of the row) cannot start a deploy the delivery then joins too late
	// (TestNoDeliveryJoinsAClaimedDeploy).
	queuedDeploySQL: queuedDeploySQL + ` FOR SHARE`,
	// A queued deploy that another transaction inserted meanwhile wins; enqueue then
	// looks it up again.
	newDeploySQL: strings.Replace(newDeploySQL, `RETURNING id`,
		`ON CONFLICT (node, repo) WHERE status = 'queued' DO NOTHING RETURNING id`, 1),
}

var (
	// nextDeliveryIDsSQL numbers n new deliveries from the column's sequence (PostgreSQL
	// only; see nextDeliveryIDs).
	nextDeliveryIDsSQL = stmt{pg: `SELECT nextval(pg_get_serial_sequence('deliveries', 'id')) FROM generate_series(1, $1)`}

	// The writer's savepoint around each delivery of a batch (see writeEach).
	savepointSQL  = stmt{sqlite: `SAVEPOINT delivery`}
	rollbackToSQL = stmt{sqlite: `ROLLBACK TO delivery`}
	releaseSQL    = stmt{sqlite: `RELEASE delivery`}
)

// Deploys and the queue.

// claimReturning is the deploy a claim returns, in both engines' claimDeploySQL.
const claimReturning = `RETURNING id, repo, status, triggered_by, ref, queued_at, started_at, reason, target_commit`

// claimDeploySQL is the claim in SQLite's spelling (TestQueueChecksUseTheirIndexes reads
// its plan).
const claimDeploySQL = `
	UPDATE deploys SET status = 'running', started_at = ?
	WHERE node = ? AND repo = ? AND status = 'queued'
	  AND NOT EXISTS (SELECT 1 FROM deploys WHERE node = ? AND repo = ? AND status = 'running')
	` + claimReturning

// claimDeploy is the claim. On PostgreSQL it skips a row that is locked (a delivery
// joining it, or another claim) instead of waiting; the delivery's commit wakes the worker
// again.
var claimDeploy = stmt{
	sqlite: claimDeploySQL,
	pg: `
	UPDATE deploys SET status = 'running', started_at = ?
	WHERE id = (SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'queued' FOR UPDATE SKIP LOCKED)
	  AND NOT EXISTS (SELECT 1 FROM deploys WHERE node = ? AND repo = ? AND status = 'running')
	` + claimReturning,
}

// Fleet: waking the other gateways (PostgreSQL only; see WatchQueue).
var (
	notifyQueueSQL     = stmt{pg: `SELECT pg_notify($1, $2)`}
	notifyReconcileSQL = stmt{pg: `SELECT pg_notify($1, $2)`}
)

// Locks (PostgreSQL only; see LockGateway, lockDatabase, lockRepos).
var (
	lockRepoSQL          = stmt{pg: `SELECT pg_advisory_xact_lock($1, hashtext($2))`}
	tryFleetSharedSQL    = stmt{pg: `SELECT pg_try_advisory_lock_shared($1, 0)`}
	tryGatewayLockSQL    = stmt{pg: `SELECT pg_try_advisory_lock($1, hashtext($2))`}
	unlockFleetSharedSQL = stmt{pg: `SELECT pg_advisory_unlock_shared($1, 0)`}
	tryFleetLockSQL      = stmt{pg: `SELECT pg_try_advisory_lock($1, 0)`}
	unlockAllSQL         = stmt{pg: `SELECT pg_advisory_unlock_all()`}
)

// Copy: the SQLite source's tables.
var sqliteTablesSQL = stmt{sqlite: `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name != 'goose_db_version'`}

// Engine: what Inspect, Ping and the lock's keep-alive ask.
var (
	pingSQL          = stmt{sqlite: `SELECT 1`}
	engineVersionSQL = stmt{sqlite: `SELECT sqlite_version()`, pg: `SHOW server_version`}
	nodesTableSQL    = stmt{
		sqlite: `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'nodes'`,
		pg:     `SELECT to_regclass('nodes') IS NOT NULL`,
	}
)
