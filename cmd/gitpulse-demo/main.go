// Command gitpulse-demo (`make demo`) plays GitHub against a running
// `make run`: it replays a short, realistic story across two repositories
// through its webhook URL — the real GitHubSource receive adapter, or with
// GITPULSE_EVENTING=off gitpulse's intake — signed as GitHub signs (both
// X-Hub-Signature and X-Hub-Signature-256), then shows
// the objects (kubectl get) and the metrics they produced, and finally a
// delivery GitHub failed to make, recovered by a reconcile pass (missed.go).
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gitpulse-demo:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := controlplane.ModuleRoot()
	if err != nil {
		return err
	}
	// GITPULSE_RUN_DIR: where `make run` (gitpulse-local) keeps its state.
	runDir := filepath.Join(root, ".cache", "run")
	if d := os.Getenv("GITPULSE_RUN_DIR"); d != "" {
		runDir = d
	}
	env, err := readEnv(filepath.Join(runDir, "env"))
	if err != nil {
		return fmt.Errorf("%w (is `make run` running in another terminal?)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sender := &ghwebhook.Sender{URL: env["GITPULSE_WEBHOOK_URL"], Secret: []byte(env["GITPULSE_WEBHOOK_SECRET"])}

	story := Story(time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Second))
	fmt.Printf("replaying %d GitHub deliveries through %s\n\n", len(story), env["GITPULSE_WEBHOOK_URL"])
	for _, step := range story {
		res, err := sender.Send(ctx, step.Delivery)
		if err != nil {
			return err
		}
		fmt.Printf("  %-13s %-44s -> %d\n", step.Delivery.Event, step.Say, res.Code)
	}

	kubectl := filepath.Join(root, "bin", "controlplane", "kubectl")
	for _, args := range [][]string{
		{"get", "pullrequests,branches"},
		{"get", "githubdeployments", "-o", "wide"},
		{"get", "pullrequests", "-o", "custom-columns=NAME:.metadata.name,OPENED:.spec.openedAt,FIRST-REVIEW:.spec.firstReviewAt,FIRST-APPROVAL:.spec.firstApprovalAt,REVIEWS:.spec.reviewCount,MERGE-COMMIT:.spec.mergeCommitSHA"},
	} {
		fmt.Printf("\n$ kubectl -n %s %s\n", env["GITPULSE_NAMESPACE"], strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", env["KUBECONFIG"], "-n", env["GITPULSE_NAMESPACE"]}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return err
		}
	}

	fmt.Printf("\n$ curl -s %s | grep -E '^(gitpulse_|pull_requests_total)'\n", env["GITPULSE_METRICS_URL"])
	want := fmt.Sprintf("gitpulse_pull_request_events_total")
	var lines []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		lines, err = metricLines(ctx, env["GITPULSE_METRICS_URL"])
		if err == nil && countEvents(lines) >= Expected(story) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	if got := countEvents(lines); got < Expected(story) {
		return fmt.Errorf("metrics show %d deliveries in %s and the other delivery counters, want %d", got, want, Expected(story))
	}
	// The families computed from the objects (states, lead time, recovery,
	// review latency) follow the objects within about a second (the metrics
	// function aggregates them at most once a second): read them after that.
	time.Sleep(1500 * time.Millisecond)
	if lines, err = metricLines(ctx, env["GITPULSE_METRICS_URL"]); err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	fmt.Println()
	printFourKeys(lines)
	// Nothing lost: a delivery GitHub failed to make, recovered by reconcile.
	return missedDelivery(ctx, env, kubectl)
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

func metricLines(ctx context.Context, url string) ([]string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if (strings.HasPrefix(l, "gitpulse_") && !strings.HasPrefix(l, "gitpulse_metrics_")) || strings.HasPrefix(l, "pull_requests_total") {
			if strings.Contains(l, "_bucket{") {
				continue // the histogram's buckets are long; sum and count say enough here
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// countEvents sums the per-delivery counters.
func countEvents(lines []string) int {
	total := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "gitpulse_pull_request_events_total{") || strings.HasPrefix(l, "gitpulse_branch_events_total{") ||
			strings.HasPrefix(l, "gitpulse_pull_request_review_events_total{") || strings.HasPrefix(l, "gitpulse_deployments_total{") {
			var v float64
			fmt.Sscanf(l[strings.LastIndex(l, " ")+1:], "%g", &v)
			total += int(v)
		}
	}
	return total
}
