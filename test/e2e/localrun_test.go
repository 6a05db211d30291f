package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/localrun"
)

// A second `make run` in the same checkout used to delete
// the running stack's etcd data and certificates first. The real
// gitpulse-local, finding the run folder locked, says one is running and
// leaves the folder alone.
func TestRun_ASecondRunSaysOneIsRunningAndChangesNothing(t *testing.T) {
	root, err := controlplane.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gitpulse-local")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gitpulse-local")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building gitpulse-local: %v\n%s", err, out)
	}
	dir := t.TempDir()
	marker := filepath.Join(dir, "controlplane", "etcd-data")
	if err := os.MkdirAll(filepath.Dir(marker), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marker, []byte("the running stack's data"), 0o644); err != nil {
		t.Fatal(err)
	}
	release, err := localrun.Lock(dir) // what the running `make run` holds
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second := exec.CommandContext(ctx, bin)
	second.Dir = root
	second.Env = append(os.Environ(), "GITPULSE_RUN_DIR="+dir, "GITPULSE_APISERVER_PORT=1", "GITPULSE_ETCD_PORT=1")
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, &out
	err = second.Run()
	if err == nil || second.ProcessState.ExitCode() != 1 {
		t.Fatalf("second run: %v, want exit status 1\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "already running") || !strings.Contains(out.String(), "pid") {
		t.Errorf("second run does not say one is running:\n%s", out.String())
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "the running stack's data" {
		t.Errorf("the running stack's data changed: %q, %v", b, err)
	}
}

// syncWriter collects log output from the stack's supervisor goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.buf.String() }

// Item 7: a killed function process used to stay dead. With Restart (what
// `make run` sets) it comes back after a backoff, every time, and each
// restart is logged with how the process ended.
func TestStack_RestartsAKilledFunctionAndLogsIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &syncWriter{}
	s, err := localrun.Start(ctx, localrun.Options{BinDir: stack(t).BinDir(), Env: []string{"GITPULSE_LOG_LEVEL=warn"},
		Restart: true, RestartBackoff: 200 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)

	tests := []struct {
		name string
		kill func()
		fn   string
		url  string
	}{
		{"metrics, first kill", s.KillMetrics, "gitpulse-metrics", strings.TrimSuffix(s.MetricsURL(), "/metrics") + "/health/readiness"},
		{"metrics, second kill", s.KillMetrics, "gitpulse-metrics", strings.TrimSuffix(s.MetricsURL(), "/metrics") + "/health/readiness"},
		{"recorder", s.KillRecorder, "gitpulse-recorder", s.RecorderURL() + "/health/readiness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Restarts(tt.fn)
			start := time.Now()
			tt.kill()
			for s.Restarts(tt.fn) != before+1 {
				if time.Since(start) > time.Minute {
					t.Fatalf("%s not restarted within a minute; log:\n%s", tt.fn, logs)
				}
				time.Sleep(50 * time.Millisecond)
			}
			resp, err := http.Get(tt.url)
			if err != nil {
				t.Fatalf("%s after restart: %v", tt.fn, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s after restart answers %d", tt.fn, resp.StatusCode)
			}
			t.Logf("%s back after %s", tt.fn, time.Since(start).Round(time.Millisecond))
		})
	}
	for _, want := range []string{`"function process ended; restarting"`, `"exit":"signal: killed"`, `"function process restarted"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	// The second metrics restart waited twice as long as the first.
	if !strings.Contains(logs.String(), `"backoff":"400ms"`) {
		t.Errorf("backoff did not grow:\n%s", logs)
	}
}
