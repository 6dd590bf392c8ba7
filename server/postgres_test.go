package server_test

import (
	"testing"

	"github.com/hookgate/hookgate/internal/pgtest"
)

// TestOnPostgres runs the tests of the hooks, the API and the pages again, through the real
// router and workers, with the store on PostgreSQL: every filter, page and field a user
// reads must be the same on both engines.
func TestOnPostgres(t *testing.T) {
	if !pgtest.Enabled(t) {
		t.Skipf("%s is not set; run the tests under scripts/pgtest to include PostgreSQL", pgtest.Env)
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"PushDeploys", TestPushDeploys},
		{"BadInputs", TestBadInputs},
		{"Redelivery", TestRedelivery},
		{"APIDeliveriesAndDeploys", TestAPIDeliveriesAndDeploys},
		{"APIRepos", TestAPIRepos},
		{"APIBadParametersAndUnknownIDs", TestAPIBadParametersAndUnknownIDs},
		{"APIPagingWhileDeliveriesArrive", TestAPIPagingWhileDeliveriesArrive},
		{"Replay", TestReplay},
		{"HistoryPage", TestHistoryPage},
		{"HistoryFilters", TestHistoryFilters},
		{"HistoryPaging", TestHistoryPaging},
		{"DeliveryPage", TestDeliveryPage},
		{"ReposPage", TestReposPage},
		{"DeployNow", TestDeployNow},
		{"LiveMarkers", TestLiveMarkers},
		{"GiteaPushDeploys", TestGiteaPushDeploys},
		{"GitLabPushDeploys", TestGitLabPushDeploys},
		{"ConcurrentPayloadsStoredIntact", TestConcurrentPayloadsStoredIntact},
		{"APINodes", TestAPINodes},
		{"APIRollbackPinAndUnpin", TestAPIRollbackPinAndUnpin},
		{"APIRollbackWithNothingToRollBackTo", TestAPIRollbackWithNothingToRollBackTo},
		{"RedeliveryIsPerRepositoryAndSigned", TestRedeliveryIsPerRepositoryAndSigned},
		{"ReposPageShowsDriftAndLookUpErrors", TestReposPageShowsDriftAndLookUpErrors},
		{"PayloadRoute", TestPayloadRoute},
		{"DeploysNameTheirNode", TestDeploysNameTheirNode},
		{"HookDeploysSeveralTargets", TestHookDeploysSeveralTargets},
		{"HookTargetsOnThePagesAndInTheAPI", TestHookTargetsOnThePagesAndInTheAPI},
		{"RepoHookSharedWithATarget", TestRepoHookSharedWithATarget},
		{"APIRepoNodes", TestAPIRepoNodes},
		{"ReposPageShowsEachNode", TestReposPageShowsEachNode},
		{"NodesPage", TestNodesPage},
		{"HistoryShowsEachNode", TestHistoryShowsEachNode},
		{"UnsignedBudget", TestUnsignedBudget},
		{"HealthCheckInTheAPIAndOnThePage", TestHealthCheckInTheAPIAndOnThePage},
		{"BadCommitIsNotDeployedAgainUnlessForced", TestBadCommitIsNotDeployedAgainUnlessForced},
		{"FailedRollbackSaysWhyItIsPinned", TestFailedRollbackSaysWhyItIsPinned},
		// A fleet exists on PostgreSQL only: these run here alone.
		{"HistoryShowsEachNodesDeploy", testHistoryShowsEachNodesDeploy},
		{"BrowserFleetHistory", testBrowserFleetHistory},
	} {
		t.Run(tc.name, tc.fn)
	}
}
