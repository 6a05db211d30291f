package metrics_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/knfunc"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// TestMetricsFunction_ServesThroughItsLocalMain builds the metrics function
// as kn func's host builder does (the binary `make run` uses: kn func's
// scaffolding main handing New() to the real func-go), runs it
// against the control plane at debug level, scrapes it, and stops it with
// SIGTERM: the checkpoint written on Stop holds the Event it counted, and
// GITPULSE_LOG_LEVEL reached the function's own logger.
func TestMetricsFunction_ServesThroughItsLocalMain(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: naming.EventName("fn-1"), Namespace: ns,
			Annotations: map[string]string{stablev1.AnnotationRepository: "acme/api", stablev1.AnnotationDeliveryID: "fn-1"}},
		InvolvedObject:      corev1.ObjectReference{Kind: "PullRequest", Namespace: ns, Name: naming.PullRequestName("acme/api", 0, 1)},
		Reason:              stablev1.ReasonPullRequestOpened,
		Type:                corev1.EventTypeNormal,
		Action:              "opened",
		ReportingController: stablev1.ReportingController,
		ReportingInstance:   "test",
		Source:              corev1.EventSource{Component: stablev1.SourceComponent},
	}
	if _, err := env.Kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.ControlPlane.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gitpulse-metrics")
	ws, err := knfunc.Scaffold(knfunc.Function{Root: filepath.Join(env.Root, "functions", "metrics"), Invoke: knfunc.HTTP},
		filepath.Join(dir, "scaffold"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Build(ctx, knfunc.Host, bin); err != nil {
		t.Fatal(err)
	}
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "GITPULSE_NAMESPACE="+ns, "LISTEN_ADDRESS="+addr,
		"GITPULSE_CHECKPOINT_INTERVAL=1h", // only the final write on SIGTERM
		"GITPULSE_LOG_LEVEL=debug")
	logFile := filepath.Join(dir, "function.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("function log:\n%s", b)
		}
	})

	base := "http://" + addr
	sample := `gitpulse_pull_request_events_total{action="opened",namespace="` + ns + `",repository="acme/api"} 1`
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, code := getBody(base + "/metrics")
		ready, _ := getBody(base + "/health/readiness")
		if code == http.StatusOK && strings.Contains(body, sample) && ready != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on /metrics within 30s (code %d):\n%s", sample, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, code := getBody(base + "/health/liveness"); code != http.StatusOK {
		t.Errorf("liveness = %d", code)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("function exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("function did not stop on SIGTERM")
	}
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), `"level":"DEBUG"`) || !strings.Contains(string(b), `"function":"gitpulse-metrics"`) {
		t.Errorf("GITPULSE_LOG_LEVEL=debug did not reach the function's logger:\n%s", b)
	}
	// func-go's zerolog lines and the function's slog lines are one format.
	b, _ := os.ReadFile(logFile)
	funcGoLines := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		ts, _ := rec["time"].(string)
		_, terr := time.Parse(time.RFC3339Nano, ts)
		level, _ := rec["level"].(string)
		msg, _ := rec["msg"].(string)
		if terr != nil || !slogLevel.MatchString(level) || msg == "" {
			t.Errorf("log line without slog's time (RFC 3339), level and msg: %q", line)
		}
		if _, ok := rec["function"]; !ok {
			funcGoLines++ // func-go's own (zerolog) lines carry no function key
		}
	}
	if funcGoLines == 0 {
		t.Errorf("no line of func-go's in the log:\n%s", b)
	}
	cm, err := env.Kube.CoreV1().ConfigMaps(ns).Get(ctx, metrics.CheckpointName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("checkpoint after SIGTERM: %v", err)
	}
	if data := cm.Data["checkpoint.json"]; !strings.Contains(data, `"action":"opened","value":1`) {
		t.Fatalf("checkpoint does not hold the counted Event: %s", data)
	}
}

// slogLevel is how slog's JSON handler writes a level: klog's verbosity
// levels come out as DEBUG+1, DEBUG+2.
var slogLevel = regexp.MustCompile(`^(DEBUG|INFO|WARN|ERROR)([+-][0-9]+)?$`)

func getBody(url string) (string, int) {
	resp, err := http.Get(url)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	return b.String(), resp.StatusCode
}
