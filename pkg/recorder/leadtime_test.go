package recorder

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

func TestAttribute_ShipsMergedPullRequestsBySHAAndWindow(t *testing.T) {
	mt := func(s string) *metav1.Time { x := metav1.NewTime(at(s)); return &x }
	pr := func(n int64, base, sha, opened, merged string) stablev1.PullRequest {
		p := stablev1.PullRequest{Spec: stablev1.PullRequestSpec{Repository: "o/r", Number: n, BaseBranch: base, MergeCommitSHA: sha,
			OpenedAt: mt(opened)}}
		if merged != "" {
			p.Spec.Merged, p.Spec.MergedAt = true, mt(merged)
		}
		return p
	}
	dep := func(id int64, env, created, success string) stablev1.GitHubDeployment {
		d := stablev1.GitHubDeployment{Spec: stablev1.GitHubDeploymentSpec{Repository: "o/r", DeploymentID: id, Environment: env, CreatedAt: mt(created)}}
		if success != "" {
			d.Spec.FirstSuccessAt = mt(success)
		}
		return d
	}
	in := &shipped{
		pullRequests: []stablev1.PullRequest{
			pr(1, "main", "s1", "08:00:00", "09:00:00"),        // before the previous deployment: shipped by it
			pr(2, "main", "s2", "08:00:00", "10:30:00"),        // in the window
			pr(3, "main", "s3", "08:00:00", "12:30:00"),        // merged after this deployment was created
			pr(4, "other", "s4", "08:00:00", "11:00:00"),       // another branch
			pr(5, "main", "", "08:00:00", ""),                  // not merged
			pr(6, "other", "deployed", "08:00:00", "07:00:00"), // its merge commit is the deployed SHA
		},
		deployments: []stablev1.GitHubDeployment{
			dep(1, "production", "10:00:00", "10:05:00"), // previous successful
			dep(2, "production", "11:00:00", ""),         // failed: not a bound
			dep(3, "staging", "10:45:00", "10:50:00"),    // another environment
		},
	}
	this := &stablev1.GitHubDeployment{Spec: stablev1.GitHubDeploymentSpec{Repository: "o/r", DeploymentID: 9, Environment: "production",
		Ref: "refs/heads/main", SHA: "deployed", CreatedAt: mt("12:00:00"), FirstSuccessAt: mt("12:10:00")}}
	if !addChanges(&this.Spec, attribution(&this.Spec, in)) {
		t.Fatal("nothing attributed")
	}
	got := map[int64]string{}
	for _, c := range this.Spec.Changes {
		got[c.Number] = c.By
	}
	want := map[int64]string{2: "window", 6: "sha"}
	if len(got) != len(want) || got[2] != want[2] || got[6] != want[6] || this.Spec.ChangeCount != 2 {
		t.Fatalf("attributed %v, want %v", got, want)
	}
	if addChanges(&this.Spec, attribution(&this.Spec, in)) {
		t.Fatal("attributing again changed the object")
	}
	// The first success of an environment: only by SHA.
	first := this.DeepCopy()
	first.Spec.Changes, first.Spec.Environment = nil, "canary"
	if got := attribution(&first.Spec, in); len(got) != 1 || got[0].Number != 6 {
		t.Fatalf("first deployment of an environment: %+v", got)
	}
}
