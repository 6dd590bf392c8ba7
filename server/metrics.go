package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookgate/hookgate/app"
	"github.com/hookgate/hookgate/store"
)

// Delivery outcomes as the metrics count them: the recorded statuses, plus rejections that
// were answered 429 and not recorded, and unauthenticated rejections answered as usual but
// not recorded, past the unsigned budget.
const (
	outcomeRateLimited = "rate_limited"
	outcomeUnrecorded  = "unrecorded"
)

// metricEvents bounds the event label: the header is the sender's word, and a label that
// takes any value lets anyone grow the registry without bound. Others count as "other".
var metricEvents = map[string]bool{
	"": true, "push": true, "tag_push": true, "ping": true, "create": true, "delete": true,
	"release": true, "pull_request": true, "merge_request": true, "issues": true,
	"issue_comment": true, "note": true, "pipeline": true, "job": true, "workflow_run": true,
	"workflow_job": true, "check_run": true, "check_suite": true, "status": true,
	"deployment": true, "deployment_status": true, "repository": true, "member": true,
	"wiki_page": true, "gollum": true, "star": true, "watch": true, "fork": true,
}

// metrics is a Server's own registry, so several servers (tests) never share counters.
type metrics struct {
	reg            *prometheus.Registry
	deliveries     *prometheus.CounterVec
	sigFailures    *prometheus.CounterVec
	deployDuration *prometheus.HistogramVec
	deploys        *prometheus.CounterVec
	originChecks   *prometheus.CounterVec
	forgeReports   *prometheus.CounterVec
	healthChecks   *prometheus.CounterVec
	verifyDuration *prometheus.HistogramVec
	rollbacks      *prometheus.CounterVec
	// targets counts each target's outcome of a delivery, by hook: what a hook that
	// several targets share did for each (hookgate_deliveries_total counts the delivery
	// once, its repo label the hook's name, as it always was).
	targets *prometheus.CounterVec
}

func (s *Server) newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_deliveries_total",
			Help: "Deliveries to configured hooks, by outcome: accepted, ignored, rejected, rate_limited (rejected with 429, not recorded) or unrecorded (rejected before authentication past the unsigned budget, answered as usual, not recorded).",
		}, []string{"repo", "event", "outcome"}),
		sigFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_signature_failures_total",
			Help: "Deliveries whose signature or token was missing or invalid.",
		}, []string{"repo", "reason"}),
		deployDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookgate_deploy_duration_seconds",
			Help:    "How long deploys took, update plus commands.",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"repo"}),
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_deploys_total",
			Help: "Finished deploys, by status: succeeded, failed, interrupted or skipped (paths: nothing watched changed).",
		}, []string{"repo", "status"}),
		originChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_origin_checks_total",
			Help: "Look-ups of origin's branch head, by result: in_sync, drift (not live, nothing queued), deployed (a reconcile deploy queued) or error.",
		}, []string{"repo", "result"}),
		forgeReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_forge_reports_total",
			Help: "Attempts at reporting a deploy status to a forge ([forges.NAME]), by result: sent, unchanged (the forge already showed it, or refused in a way that counts as sent), retry (failed; tried again later), failed (given up) or skipped (a newer status of the deploy replaced it, or no commit to report on).",
		}, []string{"forge", "result"}),
		healthChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_health_checks_total",
			Help: "Health checks of deploys ([repos.NAME.health]), by result: passed, failed or superseded.",
		}, []string{"repo", "result"}),
		verifyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookgate_verify_duration_seconds",
			Help:    "How long deploys' health checks took, from the end of the commands to the verdict.",
			Buckets: []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300},
		}, []string{"repo"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_rollbacks_total",
			Help: "Finished automatic rollbacks after a failed health check, by result: succeeded, failed or interrupted.",
		}, []string{"repo", "result"}),
		targets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookgate_delivery_targets_total",
			Help: "Each target's outcome of the deliveries to its hook: queued (a deploy) or ignored.",
		}, []string{"hook", "repo", "outcome"}),
	}
	m.reg.MustRegister(
		m.deliveries, m.sigFailures, m.deployDuration, m.deploys, m.originChecks, m.targets, m.forgeReports,
		m.healthChecks, m.verifyDuration, m.rollbacks,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hookgate_unknown_hook_requests_total",
			Help: "Requests to hook names that are not configured (answered 404, not recorded).",
		}, func() float64 { return float64(s.unknownHooks.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hookgate_unsigned_unrecorded_total",
			Help: "Rejections before authentication not recorded because the unsigned budget (unsigned_records_per_minute, unsigned_records_per_window) was spent; each minute's are logged as one line.",
		}, func() float64 { return float64(s.budget.Refused()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hookgate_body_bytes_in_memory",
			Help: "Request body bytes the hook requests being handled hold now, counted as they arrive; bounded by max_body_memory.",
		}, func() float64 { return float64(s.bodyMem.used.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hookgate_body_memory_limit_bytes",
			Help: "max_body_memory: past it, new hook request bodies are refused with 503.",
		}, func() float64 { return float64(s.bodyMem.limit.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hookgate_connections_open",
			Help: "Connections held now; bounded by max_connections.",
		}, func() float64 { return float64(s.conns.Open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "hookgate_connections_refused_total",
			Help:        "Connections answered 503 and closed at accept, by the bound they were over: max_connections (limit=total) or max_connections_per_client (limit=client).",
			ConstLabels: prometheus.Labels{"limit": "total"},
		}, func() float64 { return float64(s.conns.refusedTotal.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "hookgate_connections_refused_total",
			Help:        "Connections answered 503 and closed at accept, by the bound they were over: max_connections (limit=total) or max_connections_per_client (limit=client).",
			ConstLabels: prometheus.Labels{"limit": "client"},
		}, func() float64 { return float64(s.conns.refusedClient.Load()) }),
		&repoCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, name := range s.hookNames() {
		m.addHook(name)
	}
	for _, name := range s.repoNames() {
		m.addRepo(name)
	}
	return m
}

// addHook starts a hook's signature failure series at zero.
func (m *metrics) addHook(name string) {
	for _, reason := range []string{"missing", "invalid"} {
		m.sigFailures.WithLabelValues(name, reason)
	}
}

// addRepo creates the series alerts watch at 0, so increase() sees the first event.
func (m *metrics) addRepo(name string) {
	for _, status := range []string{"succeeded", "failed", "interrupted", store.DeploySkipped} {
		m.deploys.WithLabelValues(name, status)
	}
	for _, result := range app.CheckResults {
		m.originChecks.WithLabelValues(name, result)
	}
}

// reconcile follows a reload: series of removed repositories go (so label values stay
// bounded by what is configured), new repositories get their zero series.
func (m *metrics) reconcile(before, after, reposBefore, reposAfter []string) {
	for _, name := range before {
		if !slices.Contains(after, name) {
			l := prometheus.Labels{"repo": name}
			m.deliveries.DeletePartialMatch(l)
			m.sigFailures.DeletePartialMatch(l)
			m.targets.DeletePartialMatch(prometheus.Labels{"hook": name})
		}
	}
	for _, name := range reposBefore {
		if !slices.Contains(reposAfter, name) {
			l := prometheus.Labels{"repo": name}
			m.deploys.DeletePartialMatch(l)
			m.deployDuration.DeletePartialMatch(l)
			m.originChecks.DeletePartialMatch(l)
			m.healthChecks.DeletePartialMatch(l)
			m.verifyDuration.DeletePartialMatch(l)
			m.rollbacks.DeletePartialMatch(l)
			m.targets.DeletePartialMatch(l)
		}
	}
	for _, name := range after {
		if !slices.Contains(before, name) {
			m.addHook(name)
		}
	}
	for _, name := range reposAfter {
		if !slices.Contains(reposBefore, name) {
			m.addRepo(name)
		}
	}
}

// target counts one target's outcome of a delivery through hook.
func (m *metrics) target(hook, repo, outcome string) {
	m.targets.WithLabelValues(hook, repo, outcome).Inc()
}

func (m *metrics) delivery(repo, event, outcome string) {
	if !metricEvents[event] {
		event = "other"
	}
	m.deliveries.WithLabelValues(repo, event, outcome).Inc()
}

// ObserveOriginCheck counts one look-up of repo's origin head by its result; the deploy
// workers call it (wired in main).
func (s *Server) ObserveOriginCheck(repo, result string) {
	if !s.isRepo(repo) {
		return
	}
	s.metrics.originChecks.WithLabelValues(repo, result).Inc()
}

// ObserveForgeReport counts one attempt at a forge report by its result; the reports'
// sender calls it (wired in gateway). Forge names come from the configuration, so the
// label stays bounded.
func (s *Server) ObserveForgeReport(forge, result string) {
	s.metrics.forgeReports.WithLabelValues(forge, result).Inc()
}

// ObserveDeploy counts a finished deploy of repo; the deploy workers call it (wired in
// main) so the deploy metrics live on the same registry as the delivery ones.
func (s *Server) ObserveDeploy(repo, status string, d time.Duration) {
	if !s.isRepo(repo) {
		return // a leftover deploy of a repository no longer configured; keep labels bounded
	}
	s.metrics.deploys.WithLabelValues(repo, status).Inc()
	if status == store.DeploySkipped {
		return // a fetch and a diff, no update or command: it would pull the deploy times down
	}
	s.metrics.deployDuration.WithLabelValues(repo).Observe(d.Seconds())
}

// ObserveHealthCheck counts one deploy's health check of repo by its result and how long
// it took; the deploy workers call it (wired in gateway).
func (s *Server) ObserveHealthCheck(repo, result string, d time.Duration) {
	if _, ok := s.hook(repo); !ok {
		return
	}
	s.metrics.healthChecks.WithLabelValues(repo, result).Inc()
	s.metrics.verifyDuration.WithLabelValues(repo).Observe(d.Seconds())
}

// ObserveRollback counts a finished automatic rollback of repo by its status.
func (s *Server) ObserveRollback(repo, status string) {
	if _, ok := s.hook(repo); !ok {
		return
	}
	s.metrics.rollbacks.WithLabelValues(repo, status).Inc()
}

// metricsHandler serves the registry in Prometheus' text format. A collector that fails
// (the database does not answer) is logged and left out; the rest is still served.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{s},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// repoCollector reads each repository's queue and last success from the store at scrape
// time: the database is the truth, and a restart loses nothing.
type repoCollector struct{ s *Server }

var (
	queueDepthDesc = prometheus.NewDesc("hookgate_deploy_queue_depth",
		"Deliveries waiting in the repository's queued deploy (0 when none is queued).", []string{"repo"}, nil)
	lastSuccessDesc = prometheus.NewDesc("hookgate_last_successful_deploy_timestamp_seconds",
		"Unix time the repository's newest successful deploy finished; time() minus this is how long ago.", []string{"repo"}, nil)
)

func (c *repoCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- lastSuccessDesc
}

func (c *repoCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range c.s.repoNames() {
		st, err := c.s.store.RepoState(ctx, name)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Pending), name)
		if st.LastOK != nil && !st.LastOK.FinishedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue,
				float64(st.LastOK.FinishedAt.UnixNano())/1e9, name)
		}
	}
}

// slogPromLogger sends promhttp's errors (a failing collector) to the server's log.
type slogPromLogger struct{ s *Server }

func (l slogPromLogger) Println(v ...any) {
	l.s.log.Warn("metrics: scrape error", "err", fmt.Sprint(v...))
}
