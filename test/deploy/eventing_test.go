package deploy_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/liatrio/gitpulse/pkg/testenv"
)

// Knative's Trigger CRD preserves unknown fields and its admission webhook
// (not running on the test control plane) does the semantic validation; this
// test checks what that webhook would, for the values gitpulse depends on.
func TestTriggers_RouteEachGitHubTypeToTheRecorderWithRetries(t *testing.T) {
	env := testenv.Get(t)
	// ISO-8601 duration as Knative accepts for backoffDelay (e.g. PT0.5S).
	iso8601 := regexp.MustCompile(`^P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$`)
	var routed []string
	for _, obj := range renderConfig(t, env.Root) {
		if obj.GetKind() != "Trigger" {
			continue
		}
		str := func(path ...string) string {
			s, _, _ := unstructured.NestedString(obj.Object, path...)
			return s
		}
		typ := str("spec", "filter", "attributes", "type")
		routed = append(routed, strings.TrimPrefix(typ, "dev.knative.source.github."))
		if str("spec", "broker") != "default" {
			t.Errorf("%s: broker %q, want default", obj.GetName(), str("spec", "broker"))
		}
		if got := str("spec", "subscriber", "ref", "kind") + "/" + str("spec", "subscriber", "ref", "name"); got != "Service/gitpulse-recorder" {
			t.Errorf("%s: subscriber %s, want the recorder's Knative Service", obj.GetName(), got)
		}
		// Decoded YAML numbers are float64 (JSON semantics).
		if retry, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "delivery", "retry"); retry == nil || retry.(float64) < 1 {
			t.Errorf("%s: no retries", obj.GetName())
		}
		if p := str("spec", "delivery", "backoffPolicy"); p != "exponential" {
			t.Errorf("%s: backoffPolicy %q, want exponential", obj.GetName(), p)
		}
		if d := str("spec", "delivery", "backoffDelay"); !iso8601.MatchString(d) {
			t.Errorf("%s: backoffDelay %q is not an ISO-8601 duration", obj.GetName(), d)
		}
		if str("spec", "delivery", "deadLetterSink", "ref", "name") != "gitpulse-dead-letter" {
			t.Errorf("%s: no dead-letter sink", obj.GetName())
		}
	}
	sort.Strings(routed)
	if got, want := strings.Join(routed, ","), "create,delete,ping,pull_request,push"; got != want {
		t.Errorf("Triggers route %s, want %s", got, want)
	}

	// The GitHubSource asks GitHub for exactly the routed types (ping comes
	// with every new webhook regardless) and sends them to the Broker.
	src := renderedOne(t, env.Root, "GitHubSource", "gitpulse")
	types, _, _ := unstructured.NestedStringSlice(src.Object, "spec", "eventTypes")
	sort.Strings(types)
	if got := strings.Join(types, ","); got != "create,delete,pull_request,push" {
		t.Errorf("GitHubSource eventTypes %s", got)
	}
	if kind, _, _ := unstructured.NestedString(src.Object, "spec", "sink", "ref", "kind"); kind != "Broker" {
		t.Errorf("GitHubSource sink is a %q, want the Broker", kind)
	}
	for _, field := range []string{"accessToken", "secretToken"} {
		if name, _, _ := unstructured.NestedString(src.Object, "spec", field, "secretKeyRef", "name"); name != "gitpulse-github" {
			t.Errorf("GitHubSource %s comes from Secret %q, want gitpulse-github", field, name)
		}
	}
}
