package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/liatrio/gitpulse/functions/metrics/internal/metrics"

	"github.com/liatrio/gitpulse/functions/metrics/internal/function"
)

func TestFunction_StartRefusesBadConfiguration(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"no namespace outside a pod", map[string]string{function.EnvKubeconfig: "/nonexistent"}, function.EnvNamespace},
		{"cap not a number", map[string]string{function.EnvNamespace: "ns", EnvMaxRepositories: "many"}, EnvMaxRepositories},
		{"cap zero", map[string]string{function.EnvNamespace: "ns", EnvMaxRepositories: "0"}, EnvMaxRepositories},
		{"interval not a duration", map[string]string{function.EnvNamespace: "ns", EnvCheckpointInterval: "often"}, EnvCheckpointInterval},
		{"idle timeout negative", map[string]string{function.EnvNamespace: "ns", EnvRepositoryIdleTimeout: "-1h"}, EnvRepositoryIdleTimeout},
		{"log level unknown", map[string]string{function.EnvNamespace: "ns", function.EnvLogLevel: "chatty"}, function.EnvLogLevel},
		{"kubeconfig missing", map[string]string{function.EnvNamespace: "ns", function.EnvKubeconfig: "/nonexistent/kubeconfig"}, "/nonexistent/kubeconfig"},
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

func TestEnv_DefaultsMatchTheService(t *testing.T) {
	var env Env
	if err := function.Process(context.Background(), map[string]string{}, &env); err != nil {
		t.Fatal(err)
	}
	if env.MaxRepositories != metrics.DefaultMaxRepositories || env.CheckpointInterval != metrics.DefaultCheckpointInterval ||
		env.RepositoryIdleTimeout != metrics.DefaultRepositoryIdleTimeout {
		t.Errorf("defaults %+v, want the Service's (%d, %s, %s)", env, metrics.DefaultMaxRepositories,
			metrics.DefaultCheckpointInterval, metrics.DefaultRepositoryIdleTimeout)
	}
	var keep Env
	if err := function.Process(context.Background(), map[string]string{EnvRepositoryIdleTimeout: "0"}, &keep); err != nil || keep.RepositoryIdleTimeout != 0 {
		t.Errorf("%s=0: %s, %v; want 0 (keep slots for ever)", EnvRepositoryIdleTimeout, keep.RepositoryIdleTimeout, err)
	}
}

// TestFunction_LinksNoAPIGroupItDoesNotRead: the function reads core/v1
// ConfigMaps and Events and its own kinds. client-go's generated clientset
// (k8s.io/client-go/kubernetes, also reached through a generated
// clientset's discovery client) registers every built-in group's types at
// init, ~11 MiB of resident memory for nothing (docs/benchmarks.md); this
// keeps it out of the binary.
func TestFunction_LinksNoAPIGroupItDoesNotRead(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "k8s.io/client-go/kubernetes/scheme", pkg == "k8s.io/client-go/discovery",
			strings.HasPrefix(pkg, "k8s.io/api/") && pkg != "k8s.io/api/core/v1":
			t.Errorf("the function links %s", pkg)
		}
	}
}
