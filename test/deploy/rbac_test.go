package deploy_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
)

// checkpointConfigMap is the one ConfigMap the metrics function may write.
const checkpointConfigMap = "gitpulse-metrics-checkpoint"

// clients talk to the API server as one identity.
type clients struct {
	kube     kubernetes.Interface
	gitpulse versioned.Interface
	dynamic  dynamic.Interface
}

// githubSources is eventing-github's GitHubSource resource (the recorder's
// reconcile passes read it).
var githubSources = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1alpha1", Resource: "githubsources"}

func sampleGitHubSource() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sources.knative.dev/v1alpha1", "kind": "GitHubSource",
		"metadata": map[string]any{"name": "gitpulse", "namespace": namespace},
	}}
}

// impersonate returns clients acting as the ServiceAccount, the way the
// function's pod would authenticate.
func impersonate(t testing.TB, env *testenv.Env, serviceAccount string) clients {
	t.Helper()
	cfg := rest.CopyConfig(env.Config())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + serviceAccount}
	return clients{kube: kubernetes.NewForConfigOrDie(cfg), gitpulse: versioned.NewForConfigOrDie(cfg), dynamic: dynamic.NewForConfigOrDie(cfg)}
}

// applyRBAC creates config/'s ServiceAccounts, Roles and RoleBindings for real.
func applyRBAC(t testing.TB, env *testenv.Env) {
	t.Helper()
	ensureNamespace(t, env)
	d := newDryRunner(t, env)
	for _, file := range []string{"recorder.yaml", "metrics.yaml"} {
		for _, obj := range readObjects(t, filepath.Join(env.Root, "config", "rbac", file)) {
			gvk := obj.GroupVersionKind()
			mapping, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()).
				Create(context.Background(), obj, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("creating %s: %v", describe(obj), err)
			}
		}
	}
}

func samplePullRequest(name string) *stablev1.PullRequest {
	return &stablev1.PullRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       stablev1.PullRequestSpec{User: "octocat", Branch: "feature", Status: "open", ID: "1", Repository: "octo/repo", Number: 1},
	}
}

func sampleBranch(name string) *stablev1.Branch {
	return &stablev1.Branch{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       stablev1.BranchSpec{Name: "feature", State: "created", Repository: "octo/repo"},
	}
}

func TestRBAC_EachFunctionGetsExactlyWhatItNeeds(t *testing.T) {
	env := testenv.Get(t)
	installThirdPartyCRDs(t, env) // GitHubSource
	applyRBAC(t, env)
	ctx := context.Background()
	other := env.Namespace(t) // "another namespace" for the cross-namespace rows

	// Objects the rows read and modify, created as admin so rows are
	// independent of each other.
	admin := clients{kube: env.Kube, gitpulse: env.Gitpulse}
	mustCreate := func(err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	_, err := admin.gitpulse.StableV1().PullRequests(namespace).Create(ctx, samplePullRequest("seeded"), metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.gitpulse.StableV1().Branches(namespace).Create(ctx, sampleBranch("seeded"), metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.kube.CoreV1().Events(namespace).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "seeded"},
		InvolvedObject: corev1.ObjectReference{Kind: "PullRequest", Namespace: namespace, Name: "seeded"},
		Reason:         stablev1.ReasonPullRequestOpened, Type: corev1.EventTypeNormal,
	}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.kube.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "someone-elses"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.kube.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gitpulse-github"}}, metav1.CreateOptions{})
	mustCreate(err)

	// What the rows create goes afterwards, so the test runs again against
	// the same control plane (go test -count).
	t.Cleanup(func() {
		bg := context.Background()
		_ = admin.gitpulse.StableV1().PullRequests(namespace).Delete(bg, "by-recorder", metav1.DeleteOptions{})
		_ = admin.gitpulse.StableV1().Branches(namespace).Delete(bg, "by-recorder", metav1.DeleteOptions{})
		for _, name := range []string{"delivery-by-recorder", "by-metrics"} {
			_ = admin.kube.CoreV1().Events(namespace).Delete(bg, name, metav1.DeleteOptions{})
		}
		for _, name := range []string{"gitpulse-reconcile-test", checkpointConfigMap} {
			_ = admin.kube.CoreV1().ConfigMaps(namespace).Delete(bg, name, metav1.DeleteOptions{})
		}
	})

	// A fresh copy of the seeded objects, so updates carry a current
	// resourceVersion.
	seededPR := func() *stablev1.PullRequest {
		pr, err := admin.gitpulse.StableV1().PullRequests(namespace).Get(ctx, "seeded", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	seededBranch := func() *stablev1.Branch {
		b, err := admin.gitpulse.StableV1().Branches(namespace).Get(ctx, "seeded", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mergePatch := []byte(`{"metadata":{"annotations":{"stable.liatr.io/rbac-test":"patched"}}}`)
	statusPatch := []byte(`{"status":{"lastDeliveryID":"rbac-test"}}`)
	watchOnce := func(w interface{ Stop() }, err error) error {
		if err == nil {
			w.Stop()
		}
		return err
	}

	const recorder, metrics = "gitpulse-recorder", "gitpulse-metrics"
	tests := []struct {
		name    string
		as      string
		allowed bool
		do      func(c clients) error
	}{
		// The recorder: get, list (an object looked up by its spec, e.g.
		// after its repository was renamed), create and update
		// PullRequests and Branches, create Events.
		{"recorder creates a pull request", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Create(ctx, samplePullRequest("by-recorder"), metav1.CreateOptions{})
			return err
		}},
		{"recorder gets a pull request", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Get(ctx, "seeded", metav1.GetOptions{})
			return err
		}},
		{"recorder updates a pull request", recorder, true, func(c clients) error {
			pr := seededPR()
			pr.Spec.Title = "updated"
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Update(ctx, pr, metav1.UpdateOptions{})
			return err
		}},
		{"recorder lists pull requests by field selector (the lookup by spec)", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).List(ctx, metav1.ListOptions{FieldSelector: "spec.repositoryID=1,spec.number=1"})
			return err
		}},
		{"recorder may not watch pull requests", recorder, false, func(c clients) error {
			return watchOnce(c.gitpulse.StableV1().PullRequests(namespace).Watch(ctx, metav1.ListOptions{}))
		}},
		{"recorder creates a branch", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().Branches(namespace).Create(ctx, sampleBranch("by-recorder"), metav1.CreateOptions{})
			return err
		}},
		{"recorder gets a branch", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().Branches(namespace).Get(ctx, "seeded", metav1.GetOptions{})
			return err
		}},
		{"recorder updates a branch", recorder, true, func(c clients) error {
			b := seededBranch()
			b.Spec.PushCount++
			_, err := c.gitpulse.StableV1().Branches(namespace).Update(ctx, b, metav1.UpdateOptions{})
			return err
		}},
		{"recorder lists branches", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().Branches(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"recorder may not watch branches", recorder, false, func(c clients) error {
			return watchOnce(c.gitpulse.StableV1().Branches(namespace).Watch(ctx, metav1.ListOptions{}))
		}},
		{"recorder creates an event", recorder, true, func(c clients) error {
			_, err := c.kube.CoreV1().Events(namespace).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "delivery-by-recorder"},
				InvolvedObject: corev1.ObjectReference{Kind: "PullRequest", Namespace: namespace, Name: "seeded"},
				Reason:         stablev1.ReasonPullRequestOpened, Type: corev1.EventTypeNormal,
			}, metav1.CreateOptions{})
			return err
		}},
		// Reconcile passes redeliver only deliveries whose Event does not
		// exist (the delivery path itself never reads an Event), and never
		// list them.
		{"recorder may not list events", recorder, false, func(c clients) error {
			_, err := c.kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		// It never patches, and the status is part of the object (the CRDs
		// have no status subresource): nothing on status is granted.
		{"recorder may not update pull request status", recorder, false, func(c clients) error {
			pr := seededPR()
			pr.Status.LastDeliveryID = "d-1"
			_, err := c.gitpulse.StableV1().PullRequests(namespace).UpdateStatus(ctx, pr, metav1.UpdateOptions{})
			return err
		}},
		{"recorder may not update branch status", recorder, false, func(c clients) error {
			b := seededBranch()
			b.Status.LastDeliveryID = "d-2"
			_, err := c.gitpulse.StableV1().Branches(namespace).UpdateStatus(ctx, b, metav1.UpdateOptions{})
			return err
		}},
		{"recorder may not patch a pull request", recorder, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Patch(ctx, "seeded", types.MergePatchType, mergePatch, metav1.PatchOptions{})
			return err
		}},
		{"recorder may not patch pull request status", recorder, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Patch(ctx, "seeded", types.MergePatchType, statusPatch, metav1.PatchOptions{}, "status")
			return err
		}},
		{"recorder may not patch a branch", recorder, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().Branches(namespace).Patch(ctx, "seeded", types.MergePatchType, mergePatch, metav1.PatchOptions{})
			return err
		}},
		{"recorder may not patch branch status", recorder, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().Branches(namespace).Patch(ctx, "seeded", types.MergePatchType, statusPatch, metav1.PatchOptions{}, "status")
			return err
		}},
		{"recorder may not get pull request status", recorder, false, func(c clients) error {
			return c.gitpulse.StableV1().RESTClient().Get().Namespace(namespace).Resource("pullrequests").Name("seeded").SubResource("status").Do(ctx).Error()
		}},
		{"recorder may not get branch status", recorder, false, func(c clients) error {
			return c.gitpulse.StableV1().RESTClient().Get().Namespace(namespace).Resource("branches").Name("seeded").SubResource("status").Do(ctx).Error()
		}},
		{"recorder may not delete a pull request", recorder, false, func(c clients) error {
			return c.gitpulse.StableV1().PullRequests(namespace).Delete(ctx, "seeded", metav1.DeleteOptions{})
		}},
		{"recorder may not delete a branch", recorder, false, func(c clients) error {
			return c.gitpulse.StableV1().Branches(namespace).Delete(ctx, "seeded", metav1.DeleteOptions{})
		}},
		// Lead time attribution lists the repository's pull requests and
		// deployments (pkg/recorder/leadtime.go); it never watches them.
		{"recorder lists pull requests", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"recorder lists deployments", recorder, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().GitHubDeployments(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"recorder may not watch pull requests", recorder, false, func(c clients) error {
			return watchOnce(c.gitpulse.StableV1().PullRequests(namespace).Watch(ctx, metav1.ListOptions{}))
		}},
		{"recorder may not delete a deployment", recorder, false, func(c clients) error {
			return c.gitpulse.StableV1().GitHubDeployments(namespace).Delete(ctx, "seeded", metav1.DeleteOptions{})
		}},
		{"metrics watches deployments", metrics, true, func(c clients) error {
			return watchOnce(c.gitpulse.StableV1().GitHubDeployments(namespace).Watch(ctx, metav1.ListOptions{}))
		}},
		{"recorder may not list events", recorder, false, func(c clients) error {
			_, err := c.kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"recorder may not delete events", recorder, false, func(c clients) error {
			return c.kube.CoreV1().Events(namespace).Delete(ctx, "seeded", metav1.DeleteOptions{})
		}},
		// Reconcile passes, which recover deliveries GitHub failed to make:
		// the GitHubSources, the one Secret config/'s GitHubSource names, and
		// the cursor ConfigMaps.
		{"recorder lists githubsources", recorder, true, func(c clients) error {
			_, err := c.dynamic.Resource(githubSources).Namespace(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"recorder gets the GitHubSource's secret", recorder, true, func(c clients) error {
			_, err := c.kube.CoreV1().Secrets(namespace).Get(ctx, "gitpulse-github", metav1.GetOptions{})
			return err
		}},
		{"recorder may not get other secrets", recorder, false, func(c clients) error {
			_, err := c.kube.CoreV1().Secrets(namespace).Get(ctx, "other", metav1.GetOptions{})
			return err
		}},
		{"recorder creates a cursor configmap", recorder, true, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gitpulse-reconcile-test"}}, metav1.CreateOptions{})
			return err
		}},
		{"recorder may not update githubsources", recorder, false, func(c clients) error {
			_, err := c.dynamic.Resource(githubSources).Namespace(namespace).Update(ctx, sampleGitHubSource(), metav1.UpdateOptions{})
			return err
		}},
		{"recorder may not list secrets", recorder, false, func(c clients) error {
			_, err := c.kube.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"recorder may not delete configmaps", recorder, false, func(c clients) error {
			return c.kube.CoreV1().ConfigMaps(namespace).Delete(ctx, checkpointConfigMap, metav1.DeleteOptions{})
		}},
		{"recorder may not write in another namespace", recorder, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(other).Create(ctx, samplePullRequest("elsewhere"), metav1.CreateOptions{})
			return err
		}},
		{"recorder may not create events in another namespace", recorder, false, func(c clients) error {
			_, err := c.kube.CoreV1().Events(other).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "elsewhere"},
				InvolvedObject: corev1.ObjectReference{Kind: "PullRequest", Namespace: other, Name: "x"},
			}, metav1.CreateOptions{})
			return err
		}},

		// The metrics function: read and watch Events and both kinds, keep
		// its checkpoint ConfigMap.
		{"metrics lists events", metrics, true, func(c clients) error {
			_, err := c.kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"metrics watches events", metrics, true, func(c clients) error {
			return watchOnce(c.kube.CoreV1().Events(namespace).Watch(ctx, metav1.ListOptions{}))
		}},
		{"metrics gets an event", metrics, true, func(c clients) error {
			_, err := c.kube.CoreV1().Events(namespace).Get(ctx, "seeded", metav1.GetOptions{})
			return err
		}},
		{"metrics lists pull requests", metrics, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"metrics watches pull requests", metrics, true, func(c clients) error {
			return watchOnce(c.gitpulse.StableV1().PullRequests(namespace).Watch(ctx, metav1.ListOptions{}))
		}},
		{"metrics gets a pull request", metrics, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Get(ctx, "seeded", metav1.GetOptions{})
			return err
		}},
		{"metrics lists branches", metrics, true, func(c clients) error {
			_, err := c.gitpulse.StableV1().Branches(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"metrics watches branches", metrics, true, func(c clients) error {
			return watchOnce(c.gitpulse.StableV1().Branches(namespace).Watch(ctx, metav1.ListOptions{}))
		}},
		{"metrics creates its checkpoint configmap", metrics, true, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: checkpointConfigMap}, Data: map[string]string{"deliveries": ""},
			}, metav1.CreateOptions{})
			return err
		}},
		{"metrics gets its checkpoint configmap", metrics, true, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(namespace).Get(ctx, checkpointConfigMap, metav1.GetOptions{})
			return err
		}},
		{"metrics updates its checkpoint configmap", metrics, true, func(c clients) error {
			cm, err := c.kube.CoreV1().ConfigMaps(namespace).Get(ctx, checkpointConfigMap, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cm.Data = map[string]string{"deliveries": "d-1"}
			_, err = c.kube.CoreV1().ConfigMaps(namespace).Update(ctx, cm, metav1.UpdateOptions{})
			return err
		}},
		{"metrics patches its checkpoint configmap", metrics, true, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(namespace).Patch(ctx, checkpointConfigMap, types.MergePatchType,
				[]byte(`{"data":{"deliveries":"d-1,d-2"}}`), metav1.PatchOptions{})
			return err
		}},
		{"metrics may not read other configmaps", metrics, false, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(namespace).Get(ctx, "someone-elses", metav1.GetOptions{})
			return err
		}},
		{"metrics may not update other configmaps", metrics, false, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(namespace).Patch(ctx, "someone-elses", types.MergePatchType,
				[]byte(`{"data":{"x":"y"}}`), metav1.PatchOptions{})
			return err
		}},
		{"metrics lists configmaps (the reconcile cursors)", metrics, true, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"metrics may not delete its checkpoint", metrics, false, func(c clients) error {
			return c.kube.CoreV1().ConfigMaps(namespace).Delete(ctx, checkpointConfigMap, metav1.DeleteOptions{})
		}},
		{"metrics may not get secrets", metrics, false, func(c clients) error {
			_, err := c.kube.CoreV1().Secrets(namespace).Get(ctx, "gitpulse-github", metav1.GetOptions{})
			return err
		}},
		{"metrics may not list secrets", metrics, false, func(c clients) error {
			_, err := c.kube.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"metrics may not update a pull request", metrics, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Patch(ctx, "seeded", types.MergePatchType, mergePatch, metav1.PatchOptions{})
			return err
		}},
		{"metrics may not update pull request status", metrics, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(namespace).Patch(ctx, "seeded", types.MergePatchType, statusPatch, metav1.PatchOptions{}, "status")
			return err
		}},
		{"metrics may not delete a branch", metrics, false, func(c clients) error {
			return c.gitpulse.StableV1().Branches(namespace).Delete(ctx, "seeded", metav1.DeleteOptions{})
		}},
		{"metrics may not create events", metrics, false, func(c clients) error {
			_, err := c.kube.CoreV1().Events(namespace).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "by-metrics"},
				InvolvedObject: corev1.ObjectReference{Kind: "PullRequest", Namespace: namespace, Name: "seeded"},
			}, metav1.CreateOptions{})
			return err
		}},
		{"metrics may not list events in another namespace", metrics, false, func(c clients) error {
			_, err := c.kube.CoreV1().Events(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"metrics may not create configmaps in another namespace", metrics, false, func(c clients) error {
			_, err := c.kube.CoreV1().ConfigMaps(other).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: checkpointConfigMap}}, metav1.CreateOptions{})
			return err
		}},
		{"metrics may not list pull requests cluster-wide", metrics, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().PullRequests(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"metrics may not watch events cluster-wide", metrics, false, func(c clients) error {
			return watchOnce(c.kube.CoreV1().Events(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{}))
		}},
		{"recorder may not list branches cluster-wide", recorder, false, func(c clients) error {
			_, err := c.gitpulse.StableV1().Branches(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"recorder may not list namespaces", recorder, false, func(c clients) error {
			_, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err
		}},
	}
	as := map[string]clients{recorder: impersonate(t, env, recorder), metrics: impersonate(t, env, metrics)}
	// Rows run in order: the checkpoint rows create before they read.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(as[tt.as])
			switch {
			case tt.allowed && err != nil:
				t.Fatalf("%s was refused: %v", tt.as, err)
			case !tt.allowed && err == nil:
				t.Fatalf("%s was allowed; the Role grants more than it should", tt.as)
			case !tt.allowed && !apierrors.IsForbidden(err):
				t.Fatalf("want Forbidden, got %v", err)
			}
		})
	}
}

// The sampled denials above cannot list everything a Role must not grant;
// this pins each Role's rules to exactly the brief's least-privilege set, so
// any added verb, resource or wildcard fails here first.
func TestRBAC_RolesGrantNothingBeyondTheContract(t *testing.T) {
	env := testenv.Get(t)
	want := map[string][]string{
		"gitpulse-recorder": {
			"stable.liatr.io pullrequests,branches,githubdeployments [] get,list,create,update",
			" events [] create,get",
			"sources.knative.dev githubsources [] get,list",
			" secrets [gitpulse-github] get",
			" configmaps [] create,get,update",
		},
		"gitpulse-metrics": {
			" events [] get,list,watch",
			"stable.liatr.io pullrequests,branches,githubdeployments [] get,list,watch",
			" configmaps [gitpulse-metrics-checkpoint] get,update,patch",
			" configmaps [] create",
			" configmaps [] list,watch",
		},
	}
	roles := map[string][]string{}
	bindings := map[string]string{}
	for _, obj := range renderConfig(t, env.Root) {
		switch obj.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			t.Errorf("config/ grants cluster-wide access: %s", describe(obj))
		case "Role":
			rules, _, _ := unstructured.NestedSlice(obj.Object, "rules")
			for _, r := range rules {
				rule := r.(map[string]any)
				roles[obj.GetName()] = append(roles[obj.GetName()], join(rule["apiGroups"])+" "+join(rule["resources"])+
					" ["+join(rule["resourceNames"])+"] "+join(rule["verbs"]))
			}
		case "RoleBinding":
			subjects, _, _ := unstructured.NestedSlice(obj.Object, "subjects")
			roleRef := obj.Object["roleRef"].(map[string]any)
			for _, s := range subjects {
				sub := s.(map[string]any)
				bindings[roleRef["name"].(string)] += sub["kind"].(string) + ":" + sub["namespace"].(string) + "/" + sub["name"].(string)
			}
		}
	}
	for role, rules := range want {
		if got := strings.Join(roles[role], "\n"); got != strings.Join(rules, "\n") {
			t.Errorf("Role %s rules:\n%s\nwant:\n%s", role, got, strings.Join(rules, "\n"))
		}
		if got, want := bindings[role], "ServiceAccount:"+namespace+"/"+role; got != want {
			t.Errorf("Role %s is bound to %q, want only %q", role, got, want)
		}
	}
	if len(roles) != len(want) {
		t.Errorf("config/ has Roles %v, want exactly %d", roles, len(want))
	}
}

func join(v any) string {
	items, _ := v.([]any)
	s := make([]string, len(items))
	for i, item := range items {
		s[i] = item.(string)
	}
	return strings.Join(s, ",")
}
