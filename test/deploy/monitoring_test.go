package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/liatrio/gitpulse/internal/testenv"
)

// promtool finds Debian's promtool: $GITPULSE_PROMETHEUS_BIN, else what
// `make prometheus` unpacks under .cache. Missing is a failure, not a skip:
// these checks are the only proof that the alert expressions are valid.
func promtool(t testing.TB, root string) string {
	t.Helper()
	dir := os.Getenv("GITPULSE_PROMETHEUS_BIN")
	if dir == "" {
		dir = filepath.Join(root, ".cache", "prometheus", "usr", "bin")
	}
	path := filepath.Join(dir, "promtool")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("promtool not found at %s: run `make prometheus` or set GITPULSE_PROMETHEUS_BIN (%v)", path, err)
	}
	return path
}

func runPromtool(t testing.TB, root, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t, root), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func renderedOne(t testing.TB, root, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, obj := range renderConfig(t, root) {
		if obj.GetKind() == kind && obj.GetName() == name {
			return obj
		}
	}
	t.Fatalf("config/ renders no %s %s", kind, name)
	return nil
}

func TestAlerts_AreValidPromQLAndFireOnTheirStory(t *testing.T) {
	env := testenv.Get(t)
	rule := renderedOne(t, env.Root, "PrometheusRule", "gitpulse")
	// A PrometheusRule's spec is a Prometheus rule file verbatim.
	spec, err := yaml.Marshal(rule.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, env.Root, dir, "check", "rules", "rules.yaml")
	runPromtool(t, env.Root, dir, "test", "rules", "alerts_test.yaml")

	// Every alert has a unit test (the file names each alertname it checks).
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			if name, ok := r.(map[string]any)["alert"].(string); ok && !strings.Contains(string(unit), "alertname: "+name+"\n") {
				t.Errorf("alert %s has no case in testdata/alerts_test.yaml", name)
			}
			// And every recording rule a promql_expr_test.
			if name, ok := r.(map[string]any)["record"].(string); ok && !strings.Contains(string(unit), "expr: "+name+"\n") {
				t.Errorf("recording rule %s has no promql_expr_test in testdata/alerts_test.yaml", name)
			}
		}
	}
}

func TestScrapeConfig_IsAValidPrometheusConfig(t *testing.T) {
	env := testenv.Get(t)
	b, err := os.ReadFile(filepath.Join(env.Root, "config", "prometheus", "scrape-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	scrapes, _ := cfg["scrape_configs"].([]any)
	for _, s := range scrapes {
		sc := s.(map[string]any)
		jobs[sc["job_name"].(string)] = true
		if _, ok := sc["kubernetes_sd_configs"]; !ok {
			t.Errorf("job %s does not discover Knative's private Services", sc["job_name"])
		}
		// Debian builds Prometheus without Kubernetes service discovery, so
		// its promtool rejects kubernetes_sd_configs; everything else
		// (relabelling, regexes, intervals) is checked with a static target.
		delete(sc, "kubernetes_sd_configs")
		sc["static_configs"] = []any{map[string]any{"targets": []any{"127.0.0.1:8012"}}}
	}
	for _, want := range []string{"gitpulse-metrics", "gitpulse-requests"} {
		if !jobs[want] {
			t.Errorf("scrape config has no job %s", want)
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, env.Root, dir, "check", "config", "prometheus.yml")
}

func TestDashboard_GraphsEveryGitpulseMetric(t *testing.T) {
	env := testenv.Get(t)
	cm := renderedOne(t, env.Root, "ConfigMap", "gitpulse-grafana-dashboard")
	if cm.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap lacks the grafana_dashboard label Grafana's sidecar looks for")
	}
	raw, _, _ := unstructured.NestedString(cm.Object, "data", "gitpulse.json")
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if p.Type == "row" { // a heading, no query of its own
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, metric := range []string{
		"gitpulse_pull_request_events_total", "gitpulse_branch_events_total",
		"gitpulse_pull_requests", "gitpulse_branches",
		"gitpulse_pull_request_merge_duration_seconds_bucket", "pull_requests_total",
		"gitpulse_metrics_watch_restarts_total", "gitpulse_metrics_last_event_timestamp_seconds",
		"gitpulse_pull_request_oldest_open_timestamp_seconds",
		"kn_serving_invocation_duration_seconds_count",
		// The DORA row: deployments, lead time, recovery and review time.
		"gitpulse_deployments_total", "gitpulse_change_lead_time_seconds_bucket",
		"gitpulse_failed_deployment_recovery_seconds_bucket", "gitpulse_pull_request_time_to_first_review_seconds_bucket",
		"gitpulse_pull_request_time_to_approval_seconds_bucket", "gitpulse_pull_request_review_events_total",
		// Reconcile: passes by result and GitHub's refusals and failures.
		"gitpulse_reconcile_passes_total", "gitpulse_reconcile_errors_total",
	} {
		if !strings.Contains(all, metric) {
			t.Errorf("no dashboard panel graphs %s", metric)
		}
	}
	if dash.UID == "" {
		t.Error("dashboard has no uid (links break on re-import)")
	}
}
