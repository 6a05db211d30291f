package api_test

import (
	"context"
	"encoding/json"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// Spec and status are atomic (x-kubernetes-map-type: atomic): a create's
// managed fields name them whole, not each field in them, which is what
// the API server converts on every decode and encode of the object
// (docs/benchmarks.md, "Atomic spec and status"). A server-side apply of
// one field of the spec by another manager then conflicts with the whole
// spec: its only writer is the recorder.
func TestCreate_TracksSpecAndStatusWhole(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	now := metav1.Now().Rfc3339Copy()
	gp := env.Gitpulse.StableV1()
	tests := []struct {
		kind string
		// unset is a spec field the create leaves out.
		unset  map[string]any
		create func() (metav1.Object, error)
		// resource is the kind's resource, for the apply.
		resource string
	}{
		{"PullRequest", map[string]any{"mergeCommitSHA": "def"}, func() (metav1.Object, error) {
			return gp.PullRequests(ns).Create(ctx, &stablev1.PullRequest{
				ObjectMeta: metav1.ObjectMeta{Name: naming.PullRequestName("acme/api", 7, 1)},
				Spec: stablev1.PullRequestSpec{User: "u", Branch: "b", Status: "open", ID: "1", Repository: "acme/api",
					Number: 1, RepositoryID: 7, Title: "t", BaseBranch: "main", HeadSHA: "abc", OpenedAt: &now, UpdatedAt: &now},
				Status: stablev1.PullRequestStatus{Bookkeeping: stablev1.Bookkeeping{LastDeliveryID: "d-1"}},
			}, metav1.CreateOptions{})
		}, "pullrequests"},
		{"Branch", map[string]any{"lastPushForced": true}, func() (metav1.Object, error) {
			return gp.Branches(ns).Create(ctx, &stablev1.Branch{
				ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName("acme/api", 7, "main")},
				Spec: stablev1.BranchSpec{Name: "main", State: "created", Repository: "acme/api", RepositoryID: 7,
					HeadSHA: "abc", PushCount: 1, LastPushAt: &now, UpdatedAt: &now},
				Status: stablev1.BranchStatus{Bookkeeping: stablev1.Bookkeeping{LastDeliveryID: "d-2"}},
			}, metav1.CreateOptions{})
		}, "branches"},
		{"GitHubDeployment", map[string]any{"task": "deploy"}, func() (metav1.Object, error) {
			return gp.GitHubDeployments(ns).Create(ctx, &stablev1.GitHubDeployment{
				ObjectMeta: metav1.ObjectMeta{Name: naming.DeploymentName("acme/api", 7, 11)},
				Spec: stablev1.GitHubDeploymentSpec{Repository: "acme/api", RepositoryID: 7, DeploymentID: 11,
					Environment: "production", SHA: "abc", CreatedAt: &now},
				Status: stablev1.GitHubDeploymentStatus{Bookkeeping: stablev1.Bookkeeping{LastDeliveryID: "d-3"}},
			}, metav1.CreateOptions{})
		}, "githubdeployments"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			obj, err := tt.create()
			if err != nil {
				t.Fatal(err)
			}
			entries := obj.GetManagedFields()
			if len(entries) != 1 || entries[0].FieldsV1 == nil {
				t.Fatalf("managed fields = %+v, want one entry", entries)
			}
			var fields map[string]any
			if err := json.Unmarshal(entries[0].FieldsV1.Raw, &fields); err != nil {
				t.Fatal(err)
			}
			for _, part := range []string{"f:spec", "f:status"} {
				if m, ok := fields[part].(map[string]any); !ok || len(m) != 0 {
					t.Errorf("%s = %v in %s, want {} (tracked whole)", part, fields[part], entries[0].FieldsV1.Raw)
				}
			}
			// Another manager's apply of a field nobody set conflicts: the
			// recorder's create owns the spec whole.
			patch, _ := json.Marshal(map[string]any{"apiVersion": stablev1.SchemeGroupVersion.String(), "kind": tt.kind,
				"metadata": map[string]any{"name": obj.GetName()}, "spec": tt.unset})
			err = gp.RESTClient().Patch(types.ApplyPatchType).Namespace(ns).Resource(tt.resource).Name(obj.GetName()).
				Param("fieldManager", "someone-else").Body(patch).Do(ctx).Error()
			if !apierrors.IsConflict(err) {
				t.Errorf("another manager's apply of %v: %v, want a conflict (the spec owned whole)", tt.unset, err)
			}
		})
	}
}
