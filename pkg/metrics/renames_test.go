package metrics

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// Every object of one repository id is counted under the name of the one
// named last: the first object to follow a rename moves the repository's
// series, and the former name's end (no double counting). Objects without
// an id keep their own name; namespaces are apart.
func TestAggregate_ObjectsOfOneRepositoryIDFollowTheNewestName(t *testing.T) {
	named := func(at int64) stablev1.Bookkeeping {
		if at == 0 {
			return stablev1.Bookkeeping{}
		}
		t := metav1.NewTime(time.Unix(at, 0).UTC())
		return stablev1.Bookkeeping{RepositoryNamedAt: &t}
	}
	pr := func(name, ns, repo string, id, at int64) *stablev1.PullRequest {
		return &stablev1.PullRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:   stablev1.PullRequestSpec{Repository: repo, RepositoryID: id, Status: "open"},
			Status: stablev1.PullRequestStatus{Bookkeeping: named(at)}}
	}
	br := func(name, ns, repo string, id, at int64) *stablev1.Branch {
		return &stablev1.Branch{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:   stablev1.BranchSpec{Repository: repo, RepositoryID: id, Name: name, State: "created"},
			Status: stablev1.BranchStatus{Bookkeeping: named(at)}}
	}
	type key = nsRepo
	tests := []struct {
		name     string
		prs      []*stablev1.PullRequest
		brs      []*stablev1.Branch
		wantPRs  map[key]int
		wantBrs  map[key]int
		wantKeys []key
	}{{
		name:    "one object followed the rename: all of the repository's move",
		prs:     []*stablev1.PullRequest{pr("a", "gp", "acme/api", 42, 100), pr("b", "gp", "acme/gateway", 42, 200)},
		brs:     []*stablev1.Branch{br("main", "gp", "acme/api", 42, 50)},
		wantPRs: map[key]int{{"gp", "acme/gateway"}: 2},
		wantBrs: map[key]int{{"gp", "acme/gateway"}: 1},
	}, {
		name:    "an object named later under the former name (a late redelivery creating it) does not move them back",
		prs:     []*stablev1.PullRequest{pr("a", "gp", "acme/gateway", 42, 300), pr("b", "gp", "acme/api", 42, 100)},
		wantPRs: map[key]int{{"gp", "acme/gateway"}: 2},
	}, {
		name:    "objects without an id keep their own name",
		prs:     []*stablev1.PullRequest{pr("a", "gp", "acme/gateway", 42, 200), pr("h", "gp", "acme/api", 0, 0)},
		wantPRs: map[key]int{{"gp", "acme/gateway"}: 1, {"gp", "acme/api"}: 1},
	}, {
		name:    "another namespace's objects of the id are its own",
		prs:     []*stablev1.PullRequest{pr("a", "gp", "acme/gateway", 42, 200), pr("b", "other", "acme/api", 42, 100)},
		wantPRs: map[key]int{{"gp", "acme/gateway"}: 1, {"other", "acme/api"}: 1},
	}, {
		name:    "two repositories of one name (one renamed away, one created) stay apart",
		prs:     []*stablev1.PullRequest{pr("a", "gp", "acme/gateway", 42, 200), pr("b", "gp", "acme/api", 43, 300), pr("c", "gp", "acme/api", 42, 100)},
		wantPRs: map[key]int{{"gp", "acme/gateway"}: 2, {"gp", "acme/api"}: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prs, brs, deps := compactObjects(tt.prs, tt.brs, nil)
			agg := aggregateObjects(prs, brs, deps)
			check := func(what string, table stateTable, want map[key]int, state string) {
				got := map[key]int{}
				for k, byState := range table.counts {
					got[k] = byState[state]
				}
				if len(got) != len(want) {
					t.Errorf("%s: %v, want %v", what, got, want)
				}
				for k, n := range want {
					if got[k] != n {
						t.Errorf("%s: %v, want %v", what, got, want)
					}
				}
			}
			check("pull requests", agg.pullRequestStates, tt.wantPRs, "open")
			if tt.wantBrs != nil {
				check("branches", agg.branchStates, tt.wantBrs, "created")
			}
			// The caches' records are shared: never changed.
			for i, p := range prs {
				if p.Repository.Value() != tt.prs[i].Spec.Repository {
					t.Errorf("record %s was changed to %s", p.Name, p.Repository.Value())
				}
			}
		})
	}
}
