package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	kubefake "k8s.io/client-go/kubernetes/fake"

	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
)

// TestService_ExportsGoRuntimeAndProcessMetrics: operators see the memory
// limit in effect, the live heap and the process's RSS and CPU next to the
// function's own metrics.
func TestService_ExportsGoRuntimeAndProcessMetrics(t *testing.T) {
	svc, err := New(Options{Config: Config{Namespace: "ns"}, Kube: kubefake.NewSimpleClientset(), Gitpulse: gpfake.NewSimpleClientset()})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetricsPath, nil))
	body := rec.Body.String()
	for _, family := range []string{"go_gc_gomemlimit_bytes", "go_gc_heap_live_bytes", "go_goroutines", "go_memstats_heap_inuse_bytes",
		"process_resident_memory_bytes", "process_cpu_seconds_total", "gitpulse_metrics_checkpoint_writes_total"} {
		if !strings.Contains(body, "\n# TYPE "+family+" ") {
			t.Errorf("/metrics has no %s", family)
		}
	}
}
