package function

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestFunction_StartRefusesBadConfiguration(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"no namespace outside a pod", map[string]string{metrics.EnvKubeconfig: "/nonexistent"}, metrics.EnvNamespace},
		{"cap not a number", map[string]string{metrics.EnvNamespace: "ns", metrics.EnvMaxRepositories: "many"}, metrics.EnvMaxRepositories},
		{"cap zero", map[string]string{metrics.EnvNamespace: "ns", metrics.EnvMaxRepositories: "0"}, metrics.EnvMaxRepositories},
		{"interval not a duration", map[string]string{metrics.EnvNamespace: "ns", metrics.EnvCheckpointInterval: "often"}, metrics.EnvCheckpointInterval},
		{"kubeconfig missing", map[string]string{metrics.EnvNamespace: "ns", metrics.EnvKubeconfig: "/nonexistent/kubeconfig"}, "/nonexistent/kubeconfig"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := New().Start(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestFunction_AnswersUnavailableBeforeStart(t *testing.T) {
	f := New()
	rec := httptest.NewRecorder()
	f.Handle(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /metrics before Start = %d, want 503", rec.Code)
	}
	if ok, _ := f.Ready(context.Background()); ok {
		t.Fatal("ready before Start")
	}
}

// TestFunction_ServesMetricsThroughTheScaffoldedMain builds cmd/gitpulse-metrics
// (what kn func's scaffolding generates: import the function, hand New() to
// func-go's Start; pkg/funcrunner stands in for func-go), runs it against the
// control plane, scrapes it, and stops it with SIGTERM: the checkpoint
// written on Stop holds the Event it counted.
func TestFunction_ServesMetricsThroughTheScaffoldedMain(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: naming.EventName("fn-1"), Namespace: ns,
			Annotations: map[string]string{stablev1.AnnotationRepository: "acme/api", stablev1.AnnotationDeliveryID: "fn-1"}},
		InvolvedObject:      corev1.ObjectReference{Kind: "PullRequest", Namespace: ns, Name: naming.PullRequestName("acme/api", 1)},
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
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gitpulse-metrics")
	build.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "GITPULSE_NAMESPACE="+ns, "LISTEN_ADDRESS="+addr,
		"GITPULSE_CHECKPOINT_INTERVAL=1h") // only the final write on SIGTERM
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
		body, code := get(base + "/metrics")
		ready, _ := get(base + "/health/readiness")
		if code == http.StatusOK && strings.Contains(body, sample) && ready != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on /metrics within 30s (code %d):\n%s", sample, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, code := get(base + "/health/liveness"); code != http.StatusOK {
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
	cm, err := env.Kube.CoreV1().ConfigMaps(ns).Get(ctx, metrics.CheckpointName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("checkpoint after SIGTERM: %v", err)
	}
	if data := cm.Data["checkpoint.json"]; !strings.Contains(data, `"action":"opened","value":1`) {
		t.Fatalf("checkpoint does not hold the counted Event: %s", data)
	}
}

func get(url string) (string, int) {
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
