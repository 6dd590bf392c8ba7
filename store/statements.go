// Statements: the store's fixed SQL, each in SQLite's spelling beside PostgreSQL's where
// that is not mechanical (see stmt and sql in dialect.go), grouped by domain.

package store

import "strings"

// Deliveries (record.go, redelivery.go, insert.go, delivery.go).

// The write path's statements, prepared once when the store opens (see writeStatements).
const (
	// A GUID names a redelivery only of a delivery to the same repository whose signature
	// was valid: forges do not promise GUIDs unique across hooks, and anyone can send an
	// unsigned request with a GUID they have seen. The conditions "guid != ''" and
	// "signature = 'valid'" repeat the partial index's (migration 00006) so SQLite uses it;
	// without them every insert scans the table.
	//
	// guidsSeenSQL takes the batch's GUIDs as a JSON array and answers each earlier
	// delivery with one of them, with the deploy its deploy_id names (0: none). Only when
	// there are some (a redelivery: rare) does succeededDeploys look up which of their
	// deploys succeeded, on which nodes: one query that joins deploys and delivery_deploys
	// here let PostgreSQL's planner scan the whole deliveries table for every batch.
	guidsSeenSQL = `
		SELECT d.repo, d.guid, d.id FROM deliveries d
		WHERE d.guid IN (SELECT value FROM json_each(?)) AND d.guid != '' AND d.signature = 'valid'`
	queuedDeploySQL = `SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'queued'`
	newDeploySQL    = `
		INSERT INTO deploys (repo, status, triggered_by, ref, queued_at, node)
		VALUES (?, 'queued', ?, ?, ?, ?) RETURNING id`
	maxDeliveryIDSQL = `SELECT coalesce(max(id), 0) FROM deliveries`
)

// succeededDeploysSQL finds the succeeded deploys the deliveries whose ids fill its two
// lists (the same ids twice) joined: through deploy_id, and through delivery_deploys.
// CROSS JOIN keeps SQLite's join order, the deliveries' keys first: left to itself it
// starts from every succeeded deploy.
func succeededDeploysSQL(in string) string {
	return `SELECT d.id, dp.node, dp.repo, dp.id FROM deliveries d CROSS JOIN deploys dp
		WHERE d.id IN (` + in + `) AND dp.id = d.deploy_id AND dp.status = 'succeeded'
		UNION ALL
		SELECT l.delivery_id, dp.node, dp.repo, dp.id FROM delivery_deploys l CROSS JOIN deploys dp
		WHERE l.delivery_id IN (` + in + `) AND dp.id = l.deploy_id AND dp.status = 'succeeded'`
}

// The columns the write path fills, and the multi-row INSERTs of insertChunks rows
// that fill them, by row count.
const (
	deliveryInsertColumns = `id, guid, repo, event, ref, before_commit, after_commit, commit_short,
		signature, signature_alg, status, reason, http_status, redelivery, received_at,
		remote_addr, user_agent, content_type, body_size, headers, full_name, repo_url,
		pusher, message, deploy_id, replay_of, hook`
	payloadInsertColumns = `delivery_id, encoding, payload`
)

var (
	insertDeliveriesSQL, deliveryInsertCols = multiRowInserts("deliveries", deliveryInsertColumns)
	insertPayloadsSQL, _                    = multiRowInserts("delivery_payloads", payloadInsertColumns)
)

// deliveryColumns is what every delivery query selects, in scanDelivery's order.
const deliveryColumns = `d.id, d.guid, d.repo, d.event, d.ref, d.before_commit, d.after_commit,
	d.commit_short, d.signature, d.signature_alg, d.status, d.reason, d.http_status,
	d.redelivery, d.received_at, d.remote_addr, d.user_agent, d.content_type, d.body_size,
	d.full_name, d.repo_url, d.pusher, d.message, COALESCE(d.deploy_id, 0),
	COALESCE(d.replay_of, 0), COALESCE(dp.status, ''), dp.started_at, dp.finished_at, COALESCE(dp.node, ''),
	COALESCE(dp.to_commit, ''), d.hook, COALESCE(dp.repo, '')`

// deliveryByIDSQL is one delivery with its headers and payload (Store.Delivery).
var deliveryByIDSQL = stmt{sqlite: `SELECT ` + deliveryColumns + `, d.headers, d.payload, p.encoding, p.payload
		FROM deliveries d LEFT JOIN deploys dp ON dp.id = d.deploy_id
		LEFT JOIN delivery_payloads p ON p.delivery_id = d.id WHERE d.id = ?`}

// The write path's statements whose PostgreSQL form is not a matter of fragments, keyed by
// their SQLite text. On PostgreSQL writes run concurrently (the delivery writer, the workers' claims and
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
const claimReturning = `RETURNING id, repo, status, triggered_by, ref, queued_at, started_at, reason, target_commit, rollback_of`

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

// Deploys and the queue (deploys.go).

// deployDeliveriesSQL selects (as id) the deliveries that joined the deploy its two
// parameters name (the same id twice): those whose deploy_id names it, and those that
// delivery_deploys links to it.
const deployDeliveriesSQL = `SELECT id FROM deliveries WHERE deploy_id = ?
	UNION ALL SELECT delivery_id FROM delivery_deploys WHERE deploy_id = ?`

var (
	claimedGUIDSQL = stmt{sqlite: `
		SELECT guid FROM deliveries WHERE id = (SELECT max(id) FROM (` + deployDeliveriesSQL + `) l)`}
	pinnedTargetSQL   = stmt{sqlite: `UPDATE deploys SET target_commit = ?, reason = ? WHERE id = ?`}
	deployProgressSQL = stmt{sqlite: `
		UPDATE deploys SET from_commit = ?, to_commit = ?, log = ?
		WHERE id = ? AND status IN ('running', 'verifying')`}
	finishDeploySQL = stmt{sqlite: `
		UPDATE deploys SET status = ?, from_commit = ?, to_commit = ?, error = ?, log = ?, finished_at = ?
		WHERE id = ? AND status IN ('running', 'verifying') RETURNING repo, node`}
	nameNodelessSQL = stmt{sqlite: `
			UPDATE deploys SET node = ? WHERE node = '' AND status IN ('queued', 'running')`}
	interruptRunningSQL = stmt{sqlite: `
		UPDATE deploys SET crashes = crashes + ?,
			status = CASE WHEN crashes + ? >= ? THEN 'failed' ELSE 'interrupted' END,
			error = CASE WHEN crashes + ? >= ? THEN ? ELSE ? END, finished_at = ?
		WHERE node = ? AND status IN ('running', 'verifying') RETURNING id, repo, status, crashes`}
	crashCountSQL        = stmt{sqlite: `UPDATE deploys SET crashes = ? WHERE id = ? AND crashes < ?`}
	queuedReposSQL       = stmt{sqlite: `SELECT repo FROM deploys WHERE node = ? AND status = 'queued' ORDER BY id`}
	deployWithLogSQL     = stmt{sqlite: `SELECT ` + deployColumns + `, log FROM deploys WHERE id = ?`}
	deployDeliveryIDsSQL = stmt{sqlite: `SELECT id FROM (` + deployDeliveriesSQL + `) l ORDER BY id`}
)

// Pins (pin.go).

// pinSQL is prepared with the write path: every accepted delivery's batch reads it.
const pinSQL = `SELECT commit_hash, pinned_by, pinned_at FROM pins WHERE repo = ?`

var pinByRepo = stmt{sqlite: pinSQL}

var (
	setPinSQL = stmt{sqlite: `
		INSERT INTO pins (repo, commit_hash, pinned_by, pinned_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (repo) DO UPDATE SET commit_hash = excluded.commit_hash,
			pinned_by = excluded.pinned_by, pinned_at = excluded.pinned_at`}
	unpinSQL = stmt{sqlite: `DELETE FROM pins WHERE repo = ?`}
)

// Rollbacks (rollback.go).
var (
	rollbackQueuedSQL = stmt{sqlite: `
			UPDATE deploys SET triggered_by = ?, target_commit = ?, reason = ?
			WHERE id = ? AND status = 'queued'`}
	previousCommitSQL = stmt{sqlite: `
		SELECT to_commit FROM deploys
		WHERE repo = ? AND status = 'succeeded' AND to_commit != ''
		  AND to_commit != (SELECT to_commit FROM deploys WHERE repo = ? AND status = 'succeeded'
		                    ORDER BY id DESC LIMIT 1)
		ORDER BY id DESC LIMIT 1`}
)

// Reconcile (reconcile.go).

// busySQL returns the id of a node's queued deploy of a repository, else of its running
// one, else 0. The queued one first: it runs last, so it is the one that decides what is
// live once the queue is drained. A running deploy that moves to another commit than
// origin's head (the last argument), a rollback or a deploy claimed while pinned, does not
// count: once the pin is lifted, origin's head is queued behind it.
const busySQL = `
	SELECT COALESCE(
		(SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'queued'),
		(SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'running'
		   AND target_commit IN ('', ?) LIMIT 1),
		0)`

var busy = stmt{sqlite: busySQL}

var (
	liveCommitSQL = stmt{sqlite: `
		SELECT to_commit FROM deploys WHERE node = ? AND repo = ? AND status = 'succeeded'
		ORDER BY id DESC LIMIT 1`}
	lastTargetSQL = stmt{sqlite: `
		SELECT to_commit, status FROM deploys WHERE node = ? AND repo = ? AND status != 'queued'
		ORDER BY id DESC LIMIT 1`}
	deployedElsewhereSQL = stmt{sqlite: `
			SELECT count(*) FROM deploys WHERE repo = ? AND node != ? AND status = 'succeeded'`}
	reconcileDeploySQL = stmt{sqlite: `
		INSERT INTO deploys (repo, status, triggered_by, ref, queued_at, reason, node)
		VALUES (?, 'queued', ?, ?, ?, ?, ?) RETURNING id`}
)

// Nodes of the fleet (nodes.go).
var (
	registerNodeSQL = stmt{sqlite: `
		INSERT INTO nodes (name, version, started_at, last_seen, repos) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version,
			started_at = excluded.started_at, last_seen = excluded.last_seen, repos = excluded.repos`}
	heartbeatSQL     = stmt{sqlite: `UPDATE nodes SET last_seen = ?, repos = ? WHERE name = ?`}
	nodeLastSeenSQL  = stmt{sqlite: `SELECT last_seen FROM nodes WHERE name = ?`}
	deleteNodeSQL    = stmt{sqlite: `DELETE FROM nodes WHERE name = ?`}
	interruptNodeSQL = stmt{sqlite: `
		UPDATE deploys SET status = 'interrupted', error = ?, finished_at = ?
		WHERE node = ? AND status IN ('queued', 'running', 'verifying') RETURNING id`}
	listNodesSQL = stmt{sqlite: `SELECT name, version, started_at, last_seen, repos FROM nodes ORDER BY name`}
)

// Notifications (notifications.go).
var (
	insertNotificationSQL = stmt{sqlite: `
		INSERT INTO notifications (deploy_id, repo, target, kind, event, status, attempts,
			http_status, error, created_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`}
	previousOutcomeSQL = stmt{sqlite: `
		SELECT status FROM deploys
		WHERE node = (SELECT node FROM deploys WHERE id = ?) AND repo = ? AND id < ?
		  AND status IN ('succeeded', 'failed')
		ORDER BY id DESC LIMIT 1`}
)

// Repository state (repostate.go).

// repoNodeSQL reads one node's newest succeeded, running and queued deploys of a
// repository: the live commit from deploys_node_repo_id read newest first, the running and
// queued ids from the partial indexes deploys_running and deploys_one_queued.
var repoNodeSQL = stmt{sqlite: `
	SELECT COALESCE((SELECT to_commit FROM deploys WHERE node = ? AND repo = ?
			AND status = 'succeeded' ORDER BY id DESC LIMIT 1), ''),
		COALESCE((SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'running'), 0),
		COALESCE((SELECT id FROM deploys WHERE node = ? AND repo = ? AND status = 'queued'), 0)`}

// busyNodesSQL lists the nodes with a deploy of a repository queued or running, from the
// partial indexes of those (small whatever the history's size).
var busyNodesSQL = stmt{sqlite: `
	SELECT node FROM deploys WHERE repo = ? AND status = 'queued' AND node != ''
	UNION SELECT node FROM deploys WHERE repo = ? AND status = 'running' AND node != ''`}

var (
	deployDeliveryCountSQL = stmt{sqlite: `SELECT count(*) FROM (` + deployDeliveriesSQL + `) l`}
)

// Fleet: the nodes a delivery fans out to (fanout.go), waking the other gateways
// (PostgreSQL only; see WatchQueue).

// nodesSQL reads the registered nodes and the repositories each deploys.
const nodesSQL = `SELECT name, repos FROM nodes`

var (
	notifyQueueSQL     = stmt{pg: `SELECT pg_notify($1, $2)`}
	notifyReconcileSQL = stmt{pg: `SELECT pg_notify($1, $2)`}
)

// listenSQL subscribes the LISTEN connection to both channels (see listen).
var listenSQL = stmt{pg: `LISTEN ` + queueChannel + `; LISTEN ` + reconcileChannel}

// Locks (PostgreSQL only; see LockGateway, lockDatabase, lockRepos).
var (
	lockRepoSQL          = stmt{pg: `SELECT pg_advisory_xact_lock($1, hashtext($2))`}
	tryFleetSharedSQL    = stmt{pg: `SELECT pg_try_advisory_lock_shared($1, 0)`}
	tryGatewayLockSQL    = stmt{pg: `SELECT pg_try_advisory_lock($1, hashtext($2))`}
	unlockFleetSharedSQL = stmt{pg: `SELECT pg_advisory_unlock_shared($1, 0)`}
	tryFleetLockSQL      = stmt{pg: `SELECT pg_try_advisory_lock($1, 0)`}
	unlockAllSQL         = stmt{pg: `SELECT pg_advisory_unlock_all()`}
)

// Copy: the SQLite source's tables, and the destination's columns of one table.
var (
	sqliteTablesSQL = stmt{sqlite: `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name != 'goose_db_version'`}
	pgColumnsSQL = stmt{pg: `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`}
)

// Engine: what Inspect, Ping and the lock's keep-alive ask.
var (
	pingSQL          = stmt{sqlite: `SELECT 1`}
	engineVersionSQL = stmt{sqlite: `SELECT sqlite_version()`, pg: `SHOW server_version`}
	nodesTableSQL    = stmt{
		sqlite: `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'nodes'`,
		pg:     `SELECT to_regclass('nodes') IS NOT NULL`,
	}
)

// Forge reports, the outbox (reports.go).

// reportDueColumns are what the sender needs of a due report and its deploy: the
// commit is the one the deploy went to, else the one it was sent to, else the newest
// joined delivery's (a report of a commit left behind keeps its own); newer is set when a
// later report of the same deploy's status waits or went (a report of a commit left
// behind is never replaced, and replaces none).
const reportDueColumns = `r.id, r.deploy_id, r.node, r.repo, r.status, r.attempts, r.created_at, r.superseded_by,
		d.ref, d.triggered_by, d.error, d.reason, d.started_at, d.finished_at,
		CASE WHEN r.superseded_by <> '' THEN r.commit_sha ELSE
		COALESCE(NULLIF(d.to_commit, ''), NULLIF(d.target_commit, ''),
			(SELECT after_commit FROM deliveries WHERE id = (SELECT max(id) FROM (SELECT id FROM deliveries WHERE deploy_id = d.id
				UNION ALL SELECT delivery_id FROM delivery_deploys WHERE deploy_id = d.id) l)), '') END,
		r.superseded_by = '' AND EXISTS (SELECT 1 FROM reports n WHERE n.deploy_id = r.deploy_id AND n.id > r.id AND n.superseded_by = ''),
		d.forge_repo`

var (
	insertReportSQL = stmt{sqlite: `
		INSERT INTO reports (deploy_id, node, repo, status, created_at, next_at)
		SELECT id, node, repo, status, ?, ? FROM deploys WHERE id = ?`}
	dueReportsSQL = stmt{sqlite: `
		SELECT ` + reportDueColumns + `
		FROM reports r JOIN deploys d ON d.id = r.deploy_id
		WHERE r.node = ? AND r.result = 'pending' AND r.next_at <= ?
		ORDER BY r.next_at, r.id LIMIT ?`}
	nextReportSQL = stmt{sqlite: `
		SELECT next_at FROM reports WHERE node = ? AND result = 'pending' ORDER BY next_at LIMIT 1`}
	updateReportSQL = stmt{sqlite: `
		UPDATE reports SET result = ?, forge = ?, endpoint = ?, state = ?, attempts = ?, http_status = ?,
			error = ?, next_at = ?, finished_at = ?, commit_sha = ?
		WHERE id = ? AND result = 'pending'`}
	// leftBehindSQL writes, once per commit, a report that the commit is superseded by
	// another (the last parameter): for each commit other than it that an earlier report
	// of the deploy told the forge was on its way (pending), unless one was written.
	leftBehindSQL = stmt{sqlite: `
		INSERT INTO reports (deploy_id, node, repo, status, created_at, next_at, commit_sha, superseded_by)
		SELECT p.deploy_id, p.node, p.repo, 'superseded', ?, ?, p.commit_sha, ?
		FROM reports p
		WHERE p.deploy_id = ? AND p.result = 'sent' AND p.superseded_by = '' AND p.commit_sha <> ''
			AND p.commit_sha <> ? AND p.status IN ('queued', 'waiting', 'running', 'verifying', 'interrupted')
			AND NOT EXISTS (SELECT 1 FROM reports s WHERE s.deploy_id = p.deploy_id
				AND s.commit_sha = p.commit_sha AND s.superseded_by <> '')
		GROUP BY p.deploy_id, p.node, p.repo, p.commit_sha`}
	deployReportsSQL = stmt{sqlite: `
		SELECT id, deploy_id, node, repo, status, result, forge, endpoint, state, attempts, http_status,
			error, created_at, next_at, finished_at, commit_sha, superseded_by
		FROM reports WHERE deploy_id = ? ORDER BY id`}
)

// Tag and paths targets (issue 20, the worker side): the skip's reason, the live deploy.
var (
	deployReasonSQL = stmt{sqlite: `UPDATE deploys SET reason = ? WHERE id = ?`}
	deployRefSQL    = stmt{sqlite: `UPDATE deploys SET ref = ? WHERE id = ?`}
	liveDeploySQL   = stmt{sqlite: `
		SELECT to_commit, ref FROM deploys WHERE node = ? AND repo = ? AND status = 'succeeded'
		ORDER BY id DESC LIMIT 1`}
	joinedRefsSQL = stmt{sqlite: `
		SELECT ref FROM deliveries WHERE id IN (` + deployDeliveriesSQL + `) ORDER BY id DESC`}
)

// Health checks (health.go).
var (
	startVerifyingSQL = stmt{sqlite: `
		UPDATE deploys SET status = 'verifying', from_commit = ?, to_commit = ?, log = ?
		WHERE id = ? AND status = 'running'`}
	insertProbeSQL = stmt{sqlite: `
		INSERT INTO probes (deploy_id, repo, node, at, latency_ms, kind, code, passed, output, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`}
	deployProbesSQL = stmt{sqlite: `
		SELECT id, deploy_id, repo, node, at, latency_ms, kind, code, passed, output, error
		FROM probes WHERE deploy_id = ? ORDER BY id`}
	deployTriggerSQL = stmt{sqlite: `SELECT triggered_by, target_commit FROM deploys WHERE id = ?`}
	deployRepoSQL    = stmt{sqlite: `SELECT repo FROM deploys WHERE id = ?`}
	markBadSQL       = stmt{sqlite: `
		INSERT INTO bad_commits (repo, commit_hash, deploy_id, at, reason) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (repo, commit_hash) DO UPDATE SET deploy_id = excluded.deploy_id,
			at = excluded.at, reason = excluded.reason`}
	// lastGoodCommitSQL is a node's newest succeeded commit of a repository other than
	// the one given and not bad: a succeeded deploy passed its check, or had none.
	lastGoodCommitSQL = stmt{sqlite: `
		SELECT to_commit FROM deploys
		WHERE node = ? AND repo = ? AND status = 'succeeded' AND to_commit != '' AND to_commit != ?
		  AND to_commit NOT IN (SELECT commit_hash FROM bad_commits WHERE repo = ?)
		ORDER BY id DESC LIMIT 1`}
	autoRollbackSQL = stmt{sqlite: `
		UPDATE deploys SET triggered_by = ?, target_commit = ?, reason = ?, rollback_of = ?
		WHERE id = ? AND status = 'queued'`}
	badCommitsSQL = stmt{sqlite: `
		SELECT repo, commit_hash, COALESCE(deploy_id, 0), at, reason FROM bad_commits
		WHERE repo = ? ORDER BY at DESC, commit_hash`}
	badCommitSQL = stmt{sqlite: `
		SELECT repo, commit_hash, COALESCE(deploy_id, 0), at, reason FROM bad_commits
		WHERE repo = ? AND commit_hash = ?`}
	clearBadSQL = stmt{sqlite: `DELETE FROM bad_commits WHERE repo = ? AND commit_hash = ?`}
)

// Environments (issue 20): a tag target's live tag (the ref of its last succeeded deploy),
// and a queued tag deploy that a push of a newer tag joins, moved to that tag.
var (
	liveRefSQL       = stmt{sqlite: `SELECT ref FROM deploys WHERE repo = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1`}
	queuedRefSQL     = stmt{sqlite: `SELECT ref FROM deploys WHERE id = ?`}
	moveQueuedRefSQL = stmt{sqlite: `UPDATE deploys SET ref = ? WHERE id = ? AND status = 'queued'`}
)

// Waiting for the forge's checks (checks.go).
var (
	waitingOfSQL = stmt{sqlite: `
		SELECT id, to_commit FROM deploys WHERE node = ? AND repo = ? AND status = 'waiting'`}
	newWaitingSQL = stmt{sqlite: `
		INSERT INTO deploys (repo, status, triggered_by, ref, queued_at, node, to_commit, next_check_at, reason, waiting_for)
		VALUES (?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`}
	supersedeSQL = stmt{sqlite: `
		UPDATE deploys SET status = 'superseded', error = ?, finished_at = ?, next_check_at = NULL
		WHERE id = ? AND status IN ('waiting', 'queued')`}
	dueWaitingSQL = stmt{sqlite: `
		SELECT id, repo, to_commit, queued_at, check_polls, forge_repo FROM deploys
		WHERE node = ? AND status = 'waiting' AND next_check_at <= ? ORDER BY next_check_at, id LIMIT ?`}
	nextCheckSQL = stmt{sqlite: `
		SELECT next_check_at FROM deploys WHERE node = ? AND status = 'waiting' ORDER BY next_check_at LIMIT 1`}
	postponeWaitingSQL = stmt{sqlite: `
		UPDATE deploys SET next_check_at = ?, check_polls = check_polls + 1, waiting_for = ?
		WHERE id = ? AND status = 'waiting'`}
	waitingDeploySQL = stmt{sqlite: `
		SELECT repo, node, to_commit FROM deploys WHERE id = ? AND status = 'waiting'`}
	passWaitingSQL = stmt{sqlite: `
		UPDATE deploys SET status = 'queued', target_commit = to_commit, next_check_at = NULL, waiting_for = ''
		WHERE id = ? AND status = 'waiting'`}
	failWaitingSQL = stmt{sqlite: `
		UPDATE deploys SET status = 'failed', error = ?, finished_at = ?, next_check_at = NULL
		WHERE id = ? AND status = 'waiting' RETURNING repo`}
	waitingForSQL = stmt{sqlite: `SELECT waiting_for FROM deploys WHERE id = ?`}
	forgeRepoSQL  = stmt{sqlite: `UPDATE deploys SET forge_repo = ? WHERE id = ? AND forge_repo != ?`}
)

// Health fixes: an interrupted automatic rollback's recovery (deploys.go), a manual deploy
// joining a queued one (EnqueueManual).
var (
	// deployRollbackSQL: what an interrupted automatic rollback's recovery keeps (carryAutoRollback).
	deployRollbackSQL = stmt{sqlite: `SELECT triggered_by, target_commit, reason, rollback_of FROM deploys WHERE id = ?`}
	// manualJoinSQL makes a queued deploy of origin's head a manual deploy joins manual.
	manualJoinSQL = stmt{sqlite: `UPDATE deploys SET triggered_by = ? WHERE id = ? AND status = 'queued' AND target_commit = ''`}
	// recentBadCommitsSQL and countBadSQL: the newest of a target's bad commits, and how
	// many it has (RecentBadCommits).
	recentBadCommitsSQL = stmt{sqlite: `
		SELECT repo, commit_hash, COALESCE(deploy_id, 0), at, reason FROM bad_commits
		WHERE repo = ? ORDER BY at DESC, commit_hash LIMIT ?`}
	countBadSQL = stmt{sqlite: `SELECT count(*) FROM bad_commits WHERE repo = ?`}
	// failedAutoRollbackSQL is the newest automatic rollback to a commit that failed: why a
	// target is pinned by health there (FailedRollback).
	failedAutoRollbackSQL = stmt{sqlite: `
		SELECT id, rollback_of, error FROM deploys
		WHERE repo = ? AND triggered_by = 'auto_rollback' AND status = 'failed' AND target_commit = ?
		ORDER BY id DESC LIMIT 1`}
)
