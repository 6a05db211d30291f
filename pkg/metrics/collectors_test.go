package metrics

import (
	"testing"

	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
)

// TestService_ExportsGoRuntimeAndProcessMetrics: operators see the memory
// limit in effect, the live heap and the process's RSS and CPU next to the
// function's own metrics.
func TestService_ExportsGoRuntimeAndProcessMetrics(t *testing.T) {
	svc, err := New(Options{Config: Config{Namespace: "ns"}, Clients: typedClients(kubefake.NewSimpleClientset(), gpfake.NewSimpleClientset(), "ns")})
	if err != nil {
		t.Fatal(err)
	}
	families, err := svc.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		have[f.GetName()] = true
	}
	for _, family := range []string{"go_gc_gomemlimit_bytes", "go_gc_heap_live_bytes", "go_goroutines", "go_memstats_heap_inuse_bytes",
		"process_resident_memory_bytes", "process_cpu_seconds_total", "gitpulse_metrics_checkpoint_writes_total"} {
		if !have[family] {
			t.Errorf("/metrics has no %s", family)
		}
	}
}

// typedClients are client-go's typed clients (or their fakes) for ns, as a
// Service takes them.
func typedClients(kube kubernetes.Interface, gitpulse versioned.Interface, ns string) Clients {
	return Clients{ConfigMaps: kube.CoreV1().ConfigMaps(ns), Events: kube.CoreV1().Events(ns), Gitpulse: gitpulse.StableV1()}
}
