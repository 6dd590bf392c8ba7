package reporter

// State is one row of the state table: a hookgate deploy status in each forge's words.
type State struct {
	Status string // hookgate's deploy status
	// The commit status on GitHub, Gitea and GitLab.
	GitHub, Gitea, GitLab string
	// The deployment status on GitHub and GitLab; "" posts none (GitLab creates its
	// deployment at running).
	GitHubDeploy, GitLabDeploy string
}

// States is the state table of issue 22, one row per deploy status. A new status joins
// with one row here and one call of the store's report in the transaction that sets it.
var States = []State{
	{Status: "queued", GitHub: "pending", Gitea: "pending", GitLab: "pending", GitHubDeploy: "queued"},
	{Status: "waiting", GitHub: "pending", Gitea: "pending", GitLab: "pending", GitHubDeploy: "queued"},
	{Status: "running", GitHub: "pending", Gitea: "pending", GitLab: "running", GitHubDeploy: "in_progress", GitLabDeploy: "running"},
	{Status: "verifying", GitHub: "pending", Gitea: "pending", GitLab: "running", GitHubDeploy: "in_progress", GitLabDeploy: "running"},
	{Status: "succeeded", GitHub: "success", Gitea: "success", GitLab: "success", GitHubDeploy: "success", GitLabDeploy: "success"},
	{Status: "failed", GitHub: "failure", Gitea: "failure", GitLab: "failed", GitHubDeploy: "failure", GitLabDeploy: "failed"},
	{Status: "superseded", GitHub: "error", Gitea: "error", GitLab: "canceled", GitHubDeploy: "inactive", GitLabDeploy: "canceled"},
	{Status: "skipped", GitHub: "error", Gitea: "error", GitLab: "canceled", GitHubDeploy: "inactive", GitLabDeploy: "canceled"},
	// An interrupted deploy's work is queued again at once (a recovery deploy), so the
	// commit is still on its way: pending, as queued.
	{Status: "interrupted", GitHub: "pending", Gitea: "pending", GitLab: "pending", GitHubDeploy: "queued"},
}

// NothingChanged is the row of a deploy skipped because nothing its target watches
// (paths) changed since the live commit: the commit needs no deploy, which is a success
// for it, not the error of a deploy skipped by a newer commit or refused as bad; the
// deployment created when it was queued is closed.
var NothingChanged = State{Status: "skipped", GitHub: "success", Gitea: "success", GitLab: "success",
	GitHubDeploy: "inactive", GitLabDeploy: "canceled"}

// StateOf returns status's row, false when the table has none.
func StateOf(status string) (State, bool) {
	for _, s := range States {
		if s.Status == status {
			return s, true
		}
	}
	return State{}, false
}

// commit is the commit status in forge typ's words.
func (s State) commit(typ string) string {
	switch typ {
	case GitLab:
		return s.GitLab
	case Gitea:
		return s.Gitea
	}
	return s.GitHub
}

// deployment is the deployment status in forge typ's words ("" none).
func (s State) deployment(typ string) string {
	switch typ {
	case GitHub:
		return s.GitHubDeploy
	case GitLab:
		return s.GitLabDeploy
	}
	return ""
}

// MaxDescription is the longest description the forges take (GitHub's limit).
const MaxDescription = 140

// clip shortens s to MaxDescription characters, on a rune boundary, marking the cut.
func clip(s string) string {
	r := []rune(s)
	if len(r) <= MaxDescription {
		return s
	}
	return string(r[:MaxDescription-1]) + "…"
}
