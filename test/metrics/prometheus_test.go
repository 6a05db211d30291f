package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/functest"
	"github.com/liatrio/gitpulse/internal/testenv"
	"github.com/liatrio/gitpulse/pkg/metrics"
)

// httpFunction is the metrics Service in func-go's instanced-HTTP shape, so
// that func-go serves it as the cluster does.
type httpFunction struct{ svc *metrics.Service }

func (f httpFunction) Handle(w http.ResponseWriter, r *http.Request) {
	handlerOf(f.svc).ServeHTTP(w, r)
}
func (f httpFunction) Ready(ctx context.Context) (bool, error) { return f.svc.Ready(ctx) }

// TestPrometheus_ScrapesExactCounters runs Debian's prometheus against the
// function served by the real func-go on 127.0.0.1 and asks PromQL for the
// counters.
func TestPrometheus_ScrapesExactCounters(t *testing.T) {
	env := testenv.Get(t)
	bin := prometheusBin(t, env.Root)
	ns := env.Namespace(t)
	mustCreateEvents(t, env.Kube, ns, prEvents("prom", 9)...)
	mustCreateEvents(t, env.Kube, ns,
		eventSpec{delivery: "prom-b1", kind: "Branch", repository: "acme/web", action: "created"},
		eventSpec{delivery: "prom-b2", kind: "Branch", repository: "acme/web", action: "pushed"},
		eventSpec{delivery: "prom-b3", kind: "Branch", repository: "acme/web", action: "pushed"},
	)
	svc := startService(t, env.Config(), metrics.Config{Namespace: ns})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	server := functest.HTTP(t, httpFunction{svc}, map[string]string{})
	target := strings.TrimPrefix(server.URL, "http://")

	promURL := startPrometheus(t, bin, target)

	cases := []struct {
		name, query string
		want        map[string]float64 // by the label in `by`, "" for a single value
	}{
		{"pull request events by action",
			fmt.Sprintf(`sum by (action) (gitpulse_pull_request_events_total{job="gitpulse-metrics",namespace=%q})`, ns),
			map[string]float64{"opened": 3, "synchronize": 3, "closed": 3}},
		{"branch events by action",
			fmt.Sprintf(`sum by (action) (gitpulse_branch_events_total{namespace=%q,repository="acme/web"})`, ns),
			map[string]float64{"created": 1, "pushed": 2}},
		{"the original unlabelled counter",
			`pull_requests_total{job="gitpulse-metrics"}`,
			map[string]float64{"": 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eventually(t, 60*time.Second, "PromQL result", func() (bool, string) {
				got, err := promQuery(ctx, promURL, tc.query, "action")
				if err != nil {
					return false, err.Error()
				}
				if len(got) != len(tc.want) {
					return false, fmt.Sprintf("got %v, want %v", got, tc.want)
				}
				for k, v := range tc.want {
					if got[k] != v {
						return false, fmt.Sprintf("got %v, want %v", got, tc.want)
					}
				}
				return true, ""
			})
		})
	}
}

// startPrometheus runs prometheus scraping target every second, on a free
// loopback port with its data in a temporary directory, and returns its URL.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: gitpulse-metrics
    metrics_path: /metrics
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "prometheus"),
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	promURL := "http://" + addr
	eventually(t, 30*time.Second, "prometheus ready", func() (bool, string) {
		resp, err := http.Get(promURL + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return promURL
}

// promQuery runs an instant query and returns the values by label.
func promQuery(ctx context.Context, base, query, label string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("decoding query answer: %w", err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("value %v: %w", s.Value[1], err)
		}
		out[s.Metric[label]] = v
	}
	return out, nil
}
