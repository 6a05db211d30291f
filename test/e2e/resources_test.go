package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/inflight"
	"github.com/liatrio/gitpulse/internal/localrun"
)

// rssKiB reads a /proc/<pid>/status field (VmRSS, VmHWM) in KiB.
func rssKiB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// burstResult is what n concurrent maximum-size deliveries did to one
// recorder process.
type burstResult struct {
	codes     map[int]int
	errors    int
	noRetry   int // 503s without Retry-After
	peakKiB   int64
	idleKiB   int64
	elapsed   time.Duration
	bodyBytes int
}

func (b burstResult) String() string {
	codes := make([]string, 0, len(b.codes))
	for c, n := range b.codes {
		codes = append(codes, fmt.Sprintf("%d×%d", n, c))
	}
	sort.Strings(codes)
	return fmt.Sprintf("body %.1f MiB, answers %s, transport errors %d, RSS idle %d MiB, peak %d MiB, %s",
		float64(b.bodyBytes)/(1<<20), strings.Join(codes, " "), b.errors, b.idleKiB>>10, b.peakKiB>>10, b.elapsed.Round(time.Millisecond))
}

// burst starts a private recorder process with env, sends it n concurrent
// pull_request deliveries of just under 25 MiB each, and samples its RSS.
func burst(t *testing.T, s *localrun.Stack, n int, env ...string) burstResult {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "recorder.log"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := localrun.StartProcess(filepath.Join(s.BinDir(), "gitpulse-recorder"), append(s.FunctionEnv(port), env...), logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Terminate(10 * time.Second) })
	// In front of it, what queue-proxy is in a cluster: the in-flight bound
	// (GITPULSE_MAX_INFLIGHT_*, env over the defaults).
	limit, err := inflight.FromEnv(func(key string) string {
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v
			}
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	backend, _ := neturl.Parse("http://127.0.0.1:" + strconv.Itoa(port))
	queue := httptest.NewServer(limit.Proxy(backend))
	t.Cleanup(queue.Close)
	url := queue.URL
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("private recorder not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}

	now := time.Now().UTC().Truncate(time.Second)
	var payload map[string]any
	if err := json.Unmarshal(ghwebhook.PullRequest{Repo: "acme/big", Number: 1, Action: "opened", User: "u", Title: "big",
		Head: "h", CreatedAt: now, UpdatedAt: now}.Payload(), &payload); err != nil {
		t.Fatal(err)
	}
	payload["pull_request"].(map[string]any)["body"] = strings.Repeat("x", 25<<20-8<<10)
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	res := burstResult{codes: map[int]int{}, idleKiB: rssKiB(p.Pid(), "VmRSS"), bodyBytes: len(body)}

	stop := make(chan struct{})
	sampled := make(chan int64)
	go func() {
		var peak int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, rssKiB(p.Pid(), "VmRSS"))
			select {
			case <-stop:
				sampled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Ce-Specversion", "1.0")
			req.Header.Set("Ce-Id", fmt.Sprintf("big-%d-%d", start.UnixNano(), i))
			req.Header.Set("Ce-Type", "dev.knative.source.github.pull_request")
			req.Header.Set("Ce-Source", "https://github.com/acme/big")
			resp, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errors++
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			res.codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				res.noRetry++
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	close(stop)
	res.peakKiB = max(<-sampled, rssKiB(p.Pid(), "VmHWM"))
	return res
}

// Bounded resources: 100 concurrent 25 MiB bodies used to take the recorder
// process to gigabytes. With the default in-flight bound (4 maximum-size
// bodies) and the default soft memory limit, the excess is answered 503 +
// Retry-After before its body is read, what is admitted is recorded, and
// the process stays well under a gigabyte. Figures: docs/benchmarks.md.
func TestResources_ConcurrentMaximumSizeBodiesAreBounded(t *testing.T) {
	const n, limitMiB = 100, 768
	res := burst(t, stack(t), n)
	t.Logf("bounded (defaults), %d concurrent: %s", n, res)
	if res.codes[http.StatusOK] == 0 {
		t.Errorf("nothing was recorded: %s", res)
	}
	if res.codes[http.StatusOK]+res.codes[http.StatusServiceUnavailable] != n || res.noRetry > 0 {
		t.Errorf("answers other than 200 and 503 + Retry-After (a transport error is a reset the sender cannot tell from a crash): %s", res)
	}
	if res.peakKiB>>10 > limitMiB {
		t.Errorf("peak RSS %d MiB, over %d MiB: %s", res.peakKiB>>10, limitMiB, res)
	}
	if os.Getenv("GITPULSE_MEASURE_UNBOUNDED") != "" {
		// For docs/benchmarks.md only: the same burst with the bound off.
		un := burst(t, stack(t), n, "GITPULSE_MAX_INFLIGHT_BYTES=0", "GITPULSE_MAX_INFLIGHT_REQUESTS=0")
		t.Logf("unbounded, %d concurrent: %s", n, un)
	}
}
