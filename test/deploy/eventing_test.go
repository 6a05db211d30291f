package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/liatrio/gitpulse/internal/testenv"
	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// The recorder's events reach it one way only: `kn func deploy` creates one
// Trigger per deploy.subscriptions entry of the root func.yaml. config/ ships
// no Triggers (both would deliver every event twice), and the Broker's
// delivery spec gives kn func's Triggers, which have none of their own, their
// retries, backoff and dead-letter sink.

// subscriptions reads deploy.subscriptions of the func.yaml under dir.
func subscriptions(t *testing.T, root, dir string) []struct {
	Source  string            `json:"source"`
	Filters map[string]string `json:"filters"`
} {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, dir, "func.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Deploy struct {
			Subscriptions []struct {
				Source  string            `json:"source"`
				Filters map[string]string `json:"filters"`
			} `json:"subscriptions"`
		} `json:"deploy"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", filepath.Join(dir, "func.yaml"), err)
	}
	return f.Deploy.Subscriptions
}

func TestRouting_FuncYAMLSubscriptionsAreTheOnlyRouteToTheRecorder(t *testing.T) {
	env := testenv.Get(t)

	// The recorder subscribes to exactly the GitHub types it understands, and
	// to the triggers that start a reconcile pass (the PingSource's fixed
	// type, and gitpulse's own), each from Broker default, filtered on type
	// alone.
	reconcileTypes := map[string]bool{"dev.knative.sources.ping": true, "dev.liatr.gitpulse.reconcile": true}
	var routed []string
	for i, s := range subscriptions(t, env.Root, ".") {
		if s.Source != "default" {
			t.Errorf("func.yaml subscription %d: source %q, want Broker default", i, s.Source)
		}
		if len(s.Filters) != 1 || s.Filters["type"] == "" {
			t.Errorf("func.yaml subscription %d: filters %v, want exactly one type filter", i, s.Filters)
		}
		if reconcileTypes[s.Filters["type"]] {
			delete(reconcileTypes, s.Filters["type"])
			continue
		}
		if !strings.HasPrefix(s.Filters["type"], "dev.knative.source.github.") {
			t.Errorf("func.yaml subscription %d: type %q is not a GitHubSource type", i, s.Filters["type"])
		}
		routed = append(routed, strings.TrimPrefix(s.Filters["type"], "dev.knative.source.github."))
	}
	// githubevent.RecordedEvents is the one list (and ping, acknowledged).
	sort.Strings(routed)
	want := slices.Sorted(slices.Values(append(slices.Clone(githubevent.RecordedEvents), githubevent.EventPing)))
	if got := strings.Join(routed, ","); got != strings.Join(want, ",") {
		t.Errorf("func.yaml subscribes to %s, want githubevent.RecordedEvents and ping: %s", got, strings.Join(want, ","))
	}
	if len(reconcileTypes) != 0 {
		t.Errorf("func.yaml does not subscribe to the reconcile triggers %v", reconcileTypes)
	}
	// The metrics function watches the API server; it takes no events.
	if subs := subscriptions(t, env.Root, "functions/metrics"); len(subs) != 0 {
		t.Errorf("functions/metrics/func.yaml has %d subscriptions, want none", len(subs))
	}
	// A second route would deliver every event twice.
	for _, obj := range renderConfig(t, env.Root) {
		if obj.GetKind() == "Trigger" || obj.GetKind() == "Subscription" {
			t.Errorf("config/ renders %s: func.yaml's subscriptions are the one way to route events", describe(obj))
		}
	}

	// The GitHubSource asks GitHub for exactly the subscribed types (ping
	// comes with every new webhook regardless) and sends them to the Broker
	// the subscriptions read from.
	src := renderedOne(t, env.Root, "GitHubSource", "gitpulse")
	types, _, _ := unstructured.NestedStringSlice(src.Object, "spec", "eventTypes")
	sort.Strings(types)
	if got, want := strings.Join(types, ","), strings.Join(slices.Sorted(slices.Values(githubevent.RecordedEvents)), ","); got != want {
		t.Errorf("GitHubSource eventTypes %s, want githubevent.RecordedEvents: %s", got, want)
	}
	if ref, _, _ := unstructured.NestedString(src.Object, "spec", "sink", "ref", "kind"); ref != "Broker" {
		t.Errorf("GitHubSource sink is a %q, want the Broker", ref)
	}
	if name, _, _ := unstructured.NestedString(src.Object, "spec", "sink", "ref", "name"); name != "default" {
		t.Errorf("GitHubSource sink is Broker %q, want default (the subscriptions' source)", name)
	}
	for _, field := range []string{"accessToken", "secretToken"} {
		if name, _, _ := unstructured.NestedString(src.Object, "spec", field, "secretKeyRef", "name"); name != "gitpulse-github" {
			t.Errorf("GitHubSource %s comes from Secret %q, want gitpulse-github", field, name)
		}
	}
}

// The docs name every recorded type where they list what is recorded and
// what the GitHubSource asks GitHub for.
func TestDocs_NameEveryRecordedEventType(t *testing.T) {
	env := testenv.Get(t)
	for _, doc := range []string{"README.md", "docs/deploy.md"} {
		b, err := os.ReadFile(filepath.Join(env.Root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range githubevent.RecordedEvents {
			if !strings.Contains(string(b), "`"+typ+"`") {
				t.Errorf("%s does not name the recorded event type `%s`", doc, typ)
			}
		}
	}
}

// Knative's Broker CRD types spec.delivery but its admission webhook (not
// running on the test control plane) does the semantic validation; this test
// checks what that webhook would, for the values the recorder depends on.
func TestBroker_DeliverySpecRetriesWithBackoffThenDeadLetters(t *testing.T) {
	env := testenv.Get(t)
	// ISO-8601 duration as Knative accepts for backoffDelay (e.g. PT0.5S).
	iso8601 := regexp.MustCompile(`^P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$`)
	objs := renderConfig(t, env.Root)
	var broker *unstructured.Unstructured
	for _, obj := range objs {
		if obj.GetKind() == "Broker" && obj.GetName() == "default" {
			broker = obj
		}
	}
	if broker == nil {
		t.Fatal("config/ renders no Broker default")
	}
	str := func(path ...string) string {
		s, _, _ := unstructured.NestedString(broker.Object, path...)
		return s
	}
	// Decoded YAML numbers are float64 (JSON semantics).
	retry, _, _ := unstructured.NestedFieldNoCopy(broker.Object, "spec", "delivery", "retry")
	if n, ok := retry.(float64); !ok || n < 1 || n != float64(int64(n)) {
		t.Errorf("Broker delivery retry %v, want a positive integer", retry)
	}
	if p := str("spec", "delivery", "backoffPolicy"); p != "exponential" {
		t.Errorf("Broker delivery backoffPolicy %q, want exponential", p)
	}
	if d := str("spec", "delivery", "backoffDelay"); d == "P" || d == "PT" || !iso8601.MatchString(d) {
		t.Errorf("Broker delivery backoffDelay %q is not an ISO-8601 duration", d)
	}

	// The dead-letter sink must be a Knative Service config/ itself renders,
	// in the Broker's namespace.
	ref := func(field string) string { return str("spec", "delivery", "deadLetterSink", "ref", field) }
	if ref("apiVersion") != "serving.knative.dev/v1" || ref("kind") != "Service" {
		t.Fatalf("Broker deadLetterSink ref %s %s, want a serving.knative.dev/v1 Service", ref("apiVersion"), ref("kind"))
	}
	if ns := ref("namespace"); ns != "" && ns != broker.GetNamespace() {
		t.Errorf("Broker deadLetterSink in namespace %q, want %q", ns, broker.GetNamespace())
	}
	found := false
	for _, obj := range objs {
		if obj.GetAPIVersion() == ref("apiVersion") && obj.GetKind() == "Service" &&
			obj.GetName() == ref("name") && obj.GetNamespace() == broker.GetNamespace() {
			found = true
		}
	}
	if !found {
		t.Errorf("Broker deadLetterSink names Service %q, which config/ does not render", ref("name"))
	}
}
