package api_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var (
	prGVR     = stablev1.SchemeGroupVersion.WithResource("pullrequests")
	branchGVR = stablev1.SchemeGroupVersion.WithResource("branches")
)

func TestCRDs_AreStructuralWithCategoryShortNamesAndStatus(t *testing.T) {
	env := testenv.Get(t)
	crds, err := controlplane.ReadCRDs(filepath.Join(env.Root, "crds"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"pullrequests.stable.liatr.io": {"pr", "prs"}, "branches.stable.liatr.io": {"br"},
		"githubdeployments.stable.liatr.io": {"ghd", "ghdeploy"}}
	if len(crds) != len(want) {
		t.Errorf("%d CRDs, want %d", len(crds), len(want))
	}
	for _, crd := range crds {
		// `kubectl get deployment` / `deploy` must keep meaning apps/v1:
		// kubectl resolves a name that several groups serve by its own
		// priority, and a CRD's names would shadow it for users.
		names := append([]string{crd.Spec.Names.Plural, crd.Spec.Names.Singular, strings.ToLower(crd.Spec.Names.Kind)}, crd.Spec.Names.ShortNames...)
		for _, n := range names {
			switch n {
			case "deployment", "deployments", "deploy", "event", "events", "ev":
				t.Errorf("%s takes the name %q of a built-in kind", crd.Name, n)
			}
		}
		short, ok := want[crd.Name]
		if !ok {
			t.Errorf("unexpected CRD %s", crd.Name)
			continue
		}
		if strings.Join(crd.Spec.Names.ShortNames, ",") != strings.Join(short, ",") {
			t.Errorf("%s short names = %v, want %v", crd.Name, crd.Spec.Names.ShortNames, short)
		}
		if strings.Join(crd.Spec.Names.Categories, ",") != "gitpulse" {
			t.Errorf("%s categories = %v", crd.Name, crd.Spec.Names.Categories)
		}
		v := crd.Spec.Versions[0]
		// No status subresource: the recorder is the only writer and writes
		// the status in the same request as the spec (one request per
		// delivery instead of two).
		if v.Subresources != nil && v.Subresources.Status != nil {
			t.Errorf("%s has a status subresource; the status is written with the spec", crd.Name)
		}
		if len(v.AdditionalPrinterColumns) < 4 {
			t.Errorf("%s has %d printer columns", crd.Name, len(v.AdditionalPrinterColumns))
		}
	}
	// The server's own verdict: installed, Established and not NonStructural.
	got, err := apiextensions(env).Get(context.Background(), "pullrequests.stable.liatr.io", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Status.Conditions {
		if c.Type == "NonStructuralSchema" && c.Status == "True" {
			t.Fatalf("schema not structural: %s", c.Message)
		}
	}
}

func TestSeedSamples_Validate(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	dyn := dynamic.NewForConfigOrDie(env.Config())
	for file, gvr := range map[string]schema.GroupVersionResource{
		"seed-pullrequest.yaml": prGVR, "seed-branch.yaml": branchGVR,
	} {
		obj := readObject(t, filepath.Join("testdata", file))
		if _, err := dyn.Resource(gvr).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
			t.Errorf("%s rejected: %v", file, err)
		}
	}
}

func TestInvalidObjects_AreRejectedWithClearMessage(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	dyn := dynamic.NewForConfigOrDie(env.Config())
	pr := func(spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "stable.liatr.io/v1", "kind": "PullRequest",
			"metadata": map[string]any{"name": "invalid"}, "spec": spec,
		}}
	}
	valid := func() map[string]any {
		return map[string]any{"user": "u", "branch": "b", "status": "open", "id": "1"}
	}
	tests := []struct {
		name    string
		gvr     schema.GroupVersionResource
		obj     *unstructured.Unstructured
		message string
	}{
		{"missing required user", prGVR, func() *unstructured.Unstructured {
			s := valid()
			delete(s, "user")
			return pr(s)
		}(), `spec.user: Required value`},
		{"status outside enum", prGVR, func() *unstructured.Unstructured {
			s := valid()
			s["status"] = "reviewing"
			return pr(s)
		}(), `spec.status: Unsupported value: "reviewing"`},
		{"id of wrong type", prGVR, func() *unstructured.Unstructured {
			s := valid()
			s["id"] = 4
			return pr(s)
		}(), `spec.id: Invalid value: "integer"`},
		{"name too long", prGVR, func() *unstructured.Unstructured {
			o := pr(valid())
			o.SetName(strings.Repeat("a", 254))
			return o
		}(), `must be no more than 253 characters`},
		{"branch state outside enum", branchGVR, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "stable.liatr.io/v1", "kind": "Branch",
			"metadata": map[string]any{"name": "b"},
			"spec":     map[string]any{"name": "main", "state": "merged"},
		}}, `spec.state: Unsupported value: "merged"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dyn.Resource(tt.gvr).Namespace(ns).Create(context.Background(), tt.obj, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("message %q does not contain %q", err, tt.message)
			}
		})
	}
}

func TestTypedClient_RoundTripsPullRequestAndBranchWithStatus(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	now := metav1.Now().Rfc3339Copy()

	prs := env.Gitpulse.StableV1().PullRequests(ns)
	in := &stablev1.PullRequest{
		ObjectMeta: metav1.ObjectMeta{Name: naming.PullRequestName("liatrio/gitpulse", 0, 42)},
		Spec: stablev1.PullRequestSpec{
			User: "octocat", Branch: "feature/x", Status: string(stablev1.PullRequestOpen), ID: "42",
			Repository: "liatrio/gitpulse", Number: 42, Title: "Add x", BaseBranch: "main",
			HeadSHA: "abc123", URL: "https://github.com/liatrio/gitpulse/pull/42", OpenedAt: &now, UpdatedAt: &now,
		},
	}
	// The status is stored with the spec, in one create.
	in.Status = stablev1.PullRequestStatus{Bookkeeping: stablev1.Bookkeeping{LastDeliveryID: "d-1"}}
	if _, err := prs.Create(ctx, in, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := prs.Get(ctx, in.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Title != "Add x" || got.Spec.Number != 42 || !got.Spec.OpenedAt.Equal(&now) {
		t.Errorf("spec did not round-trip: %+v", got.Spec)
	}
	if got.Status.LastDeliveryID != "d-1" {
		t.Errorf("status did not round-trip: %+v", got.Status)
	}

	branches := env.Gitpulse.StableV1().Branches(ns)
	b := &stablev1.Branch{
		ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName("liatrio/gitpulse", 0, "feature/x")},
		Spec: stablev1.BranchSpec{Name: "feature/x", State: string(stablev1.BranchCreated), Repository: "liatrio/gitpulse",
			HeadSHA: "abc123", PushCount: 3, LastPushAt: &now, CreatedAt: &now},
	}
	if _, err := branches.Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gb, err := branches.Get(ctx, b.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Spec and status change in one update, and the generation moves
	// once.
	gb.Status.LastDeliveryID = "d-2"
	gb.Spec.PushCount = 4
	if _, err := branches.Update(ctx, gb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	after, _ := branches.Get(ctx, b.Name, metav1.GetOptions{})
	if after.Spec.PushCount != 4 || after.Status.LastDeliveryID != "d-2" || after.Generation != gb.Generation+1 {
		t.Errorf("one update of spec and status: generation %d -> %d, %+v / %+v", gb.Generation, after.Generation, after.Spec, after.Status)
	}
	// A change to the status alone moves it too (no subresource).
	after.Status.LastDeliveryID = "d-3"
	if _, err := branches.Update(ctx, after, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	again, _ := branches.Get(ctx, b.Name, metav1.GetOptions{})
	if again.Generation != after.Generation+1 {
		t.Errorf("a status-only update moved the generation %d -> %d, want +1", after.Generation, again.Generation)
	}
}

func TestEvent_AboutPullRequest_ListedByFieldSelector(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	pr, err := env.Gitpulse.StableV1().PullRequests(ns).Create(ctx, &stablev1.PullRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "pr-1"},
		Spec:       stablev1.PullRequestSpec{User: "u", Branch: "b", Status: "open", ID: "1"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: naming.EventName("delivery-guid"), Namespace: ns},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: stablev1.SchemeGroupVersion.String(), Kind: "PullRequest",
			Name: pr.Name, Namespace: ns, UID: pr.UID,
		},
		Reason: stablev1.ReasonPullRequestOpened, Message: "u opened PR #1", Type: corev1.EventTypeNormal,
		Source: corev1.EventSource{Component: stablev1.SourceComponent}, ReportingController: stablev1.ReportingController,
		ReportingInstance: "test", Action: "opened", FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if _, err := env.Kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sel := fields.Set{
		"involvedObject.kind": "PullRequest", "involvedObject.name": pr.Name,
		"reportingComponent": stablev1.ReportingController,
	}.AsSelector().String()
	list, err := env.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].InvolvedObject.UID != pr.UID {
		t.Fatalf("field selector %s listed %d events", sel, len(list.Items))
	}
	// The deterministic name makes a second Event for the same delivery impossible.
	if _, err := env.Kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second Event for one delivery: want AlreadyExists, got %v", err)
	}
}

func TestKubectl_GetShowsPrinterColumns(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	_, err := env.Gitpulse.StableV1().PullRequests(ns).Create(ctx, &stablev1.PullRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "pr-7"},
		Spec: stablev1.PullRequestSpec{User: "octocat", Branch: "feature/x", Status: "merged", ID: "7",
			Repository: "liatrio/gitpulse", Number: 7},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Gitpulse.StableV1().Branches(ns).Create(ctx, &stablev1.Branch{
		ObjectMeta: metav1.ObjectMeta{Name: "br-1"},
		Spec:       stablev1.BranchSpec{Name: "feature/x", State: "created", Repository: "liatrio/gitpulse", PushCount: 2},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.ControlPlane.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	bin, _ := controlplane.BinDir()
	for _, args := range [][]string{{"get", "pullrequests,branches"}, {"get", "gitpulse"}, {"get", "pr,br"}} {
		out, err := exec.Command(filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
		for _, want := range []string{"REPOSITORY", "NUMBER", "STATUS", "octocat", "merged", "STATE", "PUSHES", "feature/x"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("kubectl %v output lacks %q", args, want)
			}
		}
	}
}

func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &obj.Object); err != nil {
		t.Fatal(err)
	}
	return obj
}
