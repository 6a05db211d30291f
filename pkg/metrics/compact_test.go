package metrics

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// The records keep every field the object families and the idle-repository
// sweep read, as they read it (the repository already resolved from the spec
// or the annotation, the environment already a label value), and the
// metadata their store keys them by; nothing else of the object.
func TestCompactObject_KeepsWhatTheFamiliesRead(t *testing.T) {
	at := func(s int64) *metav1.Time { t := metav1.Unix(s, 0); return &t }
	base := func(name, _, ns, repo string) cachedObject { // the second: the object's resourceVersion, not kept
		return cachedObject{Name: hashName(name), Namespace: intern(ns), Repository: intern(repo)}
	}
	recorded := int64(1_790_000_000 + 7*60)
	tests := []struct {
		name string
		in   any
		want any
	}{{
		name: "a pull request as the recorder writes it",
		in:   recordedPullRequest(7),
		want: &cachedPullRequest{cachedObject: base("acme-service-07-pr-7", "100007", "gitpulse", "acme/service-07"),
			State: intern("closed"), Merged: true, Created: unixTime(recorded), OpenedAt: unixTime(recorded),
			MergedAt: unixTime(recorded + 3*3600), FirstReviewAt: unixTime(recorded + 3600), FirstApprovalAt: unixTime(recorded + 2*3600)},
	}, {
		name: "a pull request named by its annotation only, without times",
		in: &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team", UID: "6f1c2a3b-0007-4d5e-8f90-000000000007", ResourceVersion: "3",
				Annotations: map[string]string{stablev1.AnnotationRepository: "zeta/lib", "other": "x"}},
			Spec: stablev1.PullRequestSpec{Status: "open", Title: "not kept"},
		},
		want: &cachedPullRequest{cachedObject: base("p", "3", "team", "zeta/lib"), State: intern("open"),
			Created: unixTime(metav1.Time{}.Unix()), OpenedAt: noTime, MergedAt: noTime, FirstReviewAt: noTime, FirstApprovalAt: noTime},
	}, {
		name: "the spec's repository wins over the annotation, and the Unix epoch is a time",
		in: &stablev1.PullRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team", UID: "6f1c2a3b-0007-4d5e-8f90-000000000007", ResourceVersion: "3",
				CreationTimestamp: metav1.Unix(0, 0), Annotations: map[string]string{stablev1.AnnotationRepository: "zeta/lib"}},
			Spec: stablev1.PullRequestSpec{Repository: "acme/api", Status: "merged", OpenedAt: at(0), MergedAt: at(60)},
		},
		want: &cachedPullRequest{cachedObject: base("p", "3", "team", "acme/api"), State: intern("merged"),
			Created: 0, OpenedAt: 0, MergedAt: 60, FirstReviewAt: noTime, FirstApprovalAt: noTime},
	}, {
		name: "an object whose repository GitHub could never name has none (it is left out)",
		in: &stablev1.Branch{
			ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "team", UID: "6f1c2a3b-0007-4d5e-8f90-000000000007", ResourceVersion: "4"},
			Spec:       stablev1.BranchSpec{Repository: "not a repository", State: "created"},
		},
		want: &cachedBranch{cachedObject: base("b", "4", "team", ""), State: intern("created")},
	}, {
		name: "a branch as the recorder writes it",
		in:   recordedBranch(7),
		want: &cachedBranch{cachedObject: base("acme-service-07-branch-7", "100007", "gitpulse", "acme/service-07"), State: intern("created")},
	}, {
		name: "a deployment as the recorder writes it",
		in:   recordedDeployment(7),
		want: &cachedDeployment{cachedObject: base("acme-service-07-deployment-7", "100007", "gitpulse", "acme/service-07"),
			Environment: intern("production"), FirstSuccessAt: unixTime(recorded + 600), FirstFailureAt: noTime,
			Changes: []cachedChange{{Number: 7, OpenedAt: unixTime(recorded - 3*3600)}, {Number: 8, OpenedAt: unixTime(recorded - 2*3600)}}},
	}, {
		name: "a deployment's environment is its label value; a change without openedAt keeps its number",
		in: &stablev1.GitHubDeployment{
			ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "team", UID: "6f1c2a3b-0007-4d5e-8f90-000000000007", ResourceVersion: "5"},
			Spec: stablev1.GitHubDeploymentSpec{Repository: "acme/api", Environment: "eu west\t1", FirstFailureAt: at(100),
				Changes: []stablev1.DeployedChange{{Number: 3, By: "window"}}},
		},
		want: &cachedDeployment{cachedObject: base("d", "5", "team", "acme/api"), Environment: intern("eu_west_1"),
			FirstSuccessAt: noTime, FirstFailureAt: 100, Changes: []cachedChange{{Number: 3, OpenedAt: noTime}}},
	}, {
		name: "a deployment without changes or outcomes",
		in: &stablev1.GitHubDeployment{
			ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "team", UID: "6f1c2a3b-0007-4d5e-8f90-000000000007", ResourceVersion: "5"},
			Spec:       stablev1.GitHubDeploymentSpec{Repository: "acme/api"},
		},
		want: &cachedDeployment{cachedObject: base("d", "5", "team", "acme/api"), Environment: intern(""),
			FirstSuccessAt: noTime, FirstFailureAt: noTime},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := compactObject(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("compactObject =\n%+v\nwant\n%+v", got, tt.want)
			}
			// Through meta.Accessor it is the object's namespace and its
			// name's hash.
			m, err := meta.Accessor(got)
			if err != nil {
				t.Fatal(err)
			}
			in, _ := meta.Accessor(tt.in)
			if m.GetName() != hashName(in.GetName()).String() || m.GetNamespace() != in.GetNamespace() {
				t.Fatalf("meta.Accessor = %+v, want the object's namespace and its name's hash", m)
			}
			if c := got.(runtime.Object).DeepCopyObject(); !reflect.DeepEqual(c, got) {
				t.Fatalf("DeepCopyObject = %+v, want %+v", c, got)
			}
		})
	}
}

// The transform may see what it already made (a re-list through the
// watch-list's temporary store) and what the informer wraps: both pass
// through unchanged.
func TestCompactObject_IsIdempotent(t *testing.T) {
	pr, _ := compactObject(recordedPullRequest(1))
	br, _ := compactObject(recordedBranch(1))
	dep, _ := compactObject(recordedDeployment(1))
	gone := cache.DeletedFinalStateUnknown{Key: "gitpulse/p", Obj: pr}
	for _, in := range []any{pr, br, dep, gone} {
		got, err := compactObject(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Fatalf("compactObject(%T) = %+v, want it unchanged", in, got)
		}
		if p, ok := in.(*cachedPullRequest); ok && got.(*cachedPullRequest) != p {
			t.Fatal("compactObject(record) made a new record")
		}
	}
}
