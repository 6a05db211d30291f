package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/testenv"
)

// crdSource is one set of third-party CRDs config/ is validated against.
type crdSource struct {
	from  string   // where they come from, for messages
	files []string // YAML files; non-CRD documents are ignored
}

// thirdPartyCRDs locates the CRDs of everything config/ uses beyond gitpulse's
// own: Knative Serving and Eventing (module zips), the GitHubSource
// (eventing-github, from ../shared/crds-thirdparty; eventing-github's module is
// not served here), and the Prometheus Operator's ServiceMonitor and
// PrometheusRule (module zip).
func thirdPartyCRDs(t testing.TB, root string) []crdSource {
	t.Helper()
	glob := func(dir string) []string {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no CRD files in %s (%v)", dir, err)
		}
		return files
	}
	serving := moduleDir(t, servingModule)
	eventing := moduleDir(t, eventingModule)
	prom := filepath.Join(moduleDir(t, prometheusModule), "example", "prometheus-operator-crd")
	githubSource := filepath.Join(root, "..", "shared", "crds-thirdparty", "githubsource.sources.knative.dev.yaml")
	if _, err := os.Stat(githubSource); err != nil {
		// Outside the project's shared workspace: a copy of the same schema.
		githubSource = filepath.Join("testdata", "githubsource.sources.knative.dev.yaml")
	}
	return []crdSource{
		{servingModule, glob(filepath.Join(serving, "config", "core", "300-resources"))},
		{eventingModule, glob(filepath.Join(eventing, "config", "core", "resources"))},
		{"eventing-github " + githubSource, []string{githubSource}},
		{prometheusModule, []string{
			filepath.Join(prom, "monitoring.coreos.com_servicemonitors.yaml"),
			filepath.Join(prom, "monitoring.coreos.com_prometheusrules.yaml"),
		}},
	}
}

var (
	installOnce sync.Once
	installErr  error
)

// installThirdPartyCRDs installs those CRDs once per test binary.
func installThirdPartyCRDs(t testing.TB, env *testenv.Env) {
	t.Helper()
	sources := thirdPartyCRDs(t, env.Root)
	installOnce.Do(func() {
		for _, src := range sources {
			// ReadCRDs reads a folder; give it one with just these files.
			dir := t.TempDir()
			for _, f := range src.files {
				b, err := os.ReadFile(f)
				if err != nil {
					installErr = err
					return
				}
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
					installErr = err
					return
				}
			}
			crds, err := controlplane.ReadCRDs(dir)
			if err == nil {
				err = controlplane.InstallCRDs(context.Background(), env.Config(), crds)
			}
			if err != nil {
				installErr = err
				t.Logf("installing CRDs from %s: %v", src.from, err)
				return
			}
			t.Logf("installed %d CRDs from %s", len(crds), src.from)
		}
	})
	if installErr != nil {
		t.Fatalf("installing third-party CRDs: %v", installErr)
	}
}

// dryRunner applies objects with server-side apply in dry-run mode and strict
// field validation: the API server runs defaulting, schema validation and
// admission exactly as for a real apply, refuses unknown fields instead of
// pruning them, and stores nothing.
type dryRunner struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newDryRunner(t testing.TB, env *testenv.Env) *dryRunner {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config())
	if err != nil {
		t.Fatal(err)
	}
	return &dryRunner{
		dyn:    dynamic.NewForConfigOrDie(env.Config()),
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
	}
}

func (d *dryRunner) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	mapping, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	var res dynamic.ResourceInterface = d.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		res = d.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	force := true
	_, err = res.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		DryRun:          []string{metav1.DryRunAll},
		FieldManager:    "gitpulse-deploy-test",
		Force:           &force,
		FieldValidation: metav1.FieldValidationStrict,
	})
	return err
}

func (d *dryRunner) namespaced(obj *unstructured.Unstructured) (bool, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, err
	}
	return mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

func TestConfig_KustomizeRendersEveryComponent(t *testing.T) {
	env := testenv.Get(t)
	objs := renderConfig(t, env.Root)
	got := map[string]int{}
	for _, obj := range objs {
		got[obj.GetKind()]++
	}
	// What config/ holds to run gitpulse in a cluster; a missing kind means a
	// file fell out of kustomization.yaml.
	want := map[string]int{
		"CustomResourceDefinition": 3, // crds/ via ../crds: PullRequest, Branch, GitHubDeployment
		"Namespace":                1,
		"ServiceAccount":           2,
		"Role":                     2,
		"RoleBinding":              2,
		"Broker":                   1,
		"Service":                  1, // the dead-letter sink (Knative Service)
		"GitHubSource":             1,
		"PingSource":               1, // reconcile passes, to recover missed deliveries
		"ServiceMonitor":           2,
		"PrometheusRule":           1,
		"ConfigMap":                1, // the Grafana dashboard
	}
	for kind, n := range want {
		if got[kind] != n {
			t.Errorf("rendered %d %s, want %d", got[kind], kind, n)
		}
	}
	for kind := range got {
		if _, ok := want[kind]; !ok {
			t.Errorf("rendered an unexpected %s", kind)
		}
	}
	for _, obj := range objs {
		if obj.GetKind() == "Secret" {
			t.Errorf("config/ renders a Secret (%s); tokens must not be committed", obj.GetName())
		}
	}
}

func TestConfig_EveryObjectPassesServerSideDryRun(t *testing.T) {
	env := testenv.Get(t)
	installThirdPartyCRDs(t, env)
	ensureNamespace(t, env)
	d := newDryRunner(t, env)
	ctx := context.Background()

	objs := renderConfig(t, env.Root)
	// The Secret template is not part of the kustomization but must be valid
	// when a user applies a filled-in copy.
	objs = append(objs, readObjects(t, filepath.Join(env.Root, "config", "eventing", "github-secret.example.yaml"))...)
	// Everything in crds/ too (kustomize already renders them through ../crds;
	// this catches a CRD file missing from crds/kustomization.yaml).
	crdFiles, err := filepath.Glob(filepath.Join(env.Root, "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range crdFiles {
		for _, obj := range readObjects(t, f) {
			if obj.GetKind() == "CustomResourceDefinition" {
				objs = append(objs, obj)
			}
		}
	}

	for _, obj := range objs {
		t.Run(obj.GetKind()+"/"+obj.GetName(), func(t *testing.T) {
			namespaced, err := d.namespaced(obj)
			if err != nil {
				t.Fatalf("%s: no such resource on a cluster with Knative, eventing-github and the Prometheus Operator: %v", describe(obj), err)
			}
			if namespaced && obj.GetNamespace() != namespace {
				t.Fatalf("%s: namespaced objects must name namespace %q", describe(obj), namespace)
			}
			if err := d.apply(ctx, obj); err != nil {
				t.Fatalf("%s: server-side dry-run refused it: %v", describe(obj), err)
			}
		})
	}
}

// The dry-run is only proof if the installed schemas actually reject bad
// objects. Each case breaks one rendered object the way a typo would.
func TestConfig_DryRunRejectsBrokenObjects(t *testing.T) {
	env := testenv.Get(t)
	installThirdPartyCRDs(t, env)
	ensureNamespace(t, env)
	d := newDryRunner(t, env)
	objs := renderConfig(t, env.Root)
	find := func(kind, name string) *unstructured.Unstructured {
		for _, obj := range objs {
			if obj.GetKind() == kind && obj.GetName() == name {
				return obj.DeepCopy()
			}
		}
		t.Fatalf("config/ renders no %s %s", kind, name)
		return nil
	}
	set := func(obj *unstructured.Unstructured, value any, path ...string) *unstructured.Unstructured {
		if err := unstructured.SetNestedField(obj.Object, value, path...); err != nil {
			t.Fatal(err)
		}
		return obj
	}
	drop := func(obj *unstructured.Unstructured, path ...string) *unstructured.Unstructured {
		unstructured.RemoveNestedField(obj.Object, path...)
		return obj
	}

	tests := []struct {
		name    string
		obj     *unstructured.Unstructured
		wantErr string
	}{
		// Knative's Broker schema types spec.delivery but has no enums (its
		// admission webhook, absent here, validates the rest), so only types
		// are checked server-side; TestBroker_* covers the semantics.
		{"broker with a non-integer retry count",
			set(find("Broker", "default"), "five", "spec", "delivery", "retry"), "spec.delivery.retry"},
		{"githubsource without a secretToken",
			drop(find("GitHubSource", "gitpulse"), "spec", "secretToken"), "secretToken"},
		{"githubsource with an unknown event type",
			set(find("GitHubSource", "gitpulse"), []any{"pull_requests"}, "spec", "eventTypes"), "Unsupported value"},
		{"servicemonitor with a malformed interval",
			set(find("ServiceMonitor", "gitpulse-metrics"), []any{map[string]any{"port": "http", "interval": "soon"}}, "spec", "endpoints"), "spec.endpoints[0].interval"},
		{"knative service with a misspelt container field",
			set(find("Service", "gitpulse-dead-letter"), "x", "spec", "template", "spec", "imag"), ".spec.template.spec.imag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.apply(context.Background(), tt.obj)
			if err == nil {
				t.Fatalf("dry-run accepted %s", describe(tt.obj))
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
