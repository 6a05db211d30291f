package function

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/liatrio/gitpulse/functions/metrics/internal/metrics"
)

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
		{"log level unknown", map[string]string{metrics.EnvNamespace: "ns", metrics.EnvLogLevel: "chatty"}, metrics.EnvLogLevel},
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
