package recorder

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
)

// NewClients builds the recorder's API clients from cfg: the core client in
// protobuf (smaller, and far cheaper to decode than JSON, for Events and
// ConfigMaps), the gitpulse client in JSON (custom resources have no
// protobuf).
//
// Both speak HTTP/1.1 to the API server (TLS's ALPN offers only it), where
// client-go would take HTTP/2. The recorder makes short requests and holds
// no watch, and HTTP/2 costs each of them more on both sides: x/net/http2
// starts a goroutine per request on the client, frames and flow-controls
// it, and multiplexes every request over one connection, whose reads and
// writes one goroutine on each side serialises. Measured with the
// recorder group of test/bench (docs/benchmarks.md, eleventh round), one
// delivery at a time: the recorder's CPU 0.73-0.78 ms a delivery against
// 0.85-0.89 over HTTP/2, and the API server's 3.16-3.42 against 3.40-3.63.
// Concurrent requests take a connection each; client-go keeps 25 idle
// (k8s.io/client-go/transport, idleConnsPerHost), more than func.yaml's
// containerConcurrency lets a replica need.
func NewClients(cfg *rest.Config) (kubernetes.Interface, versioned.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.NextProtos = []string{"http/1.1"}
	core := rest.CopyConfig(cfg)
	core.ContentType = "application/vnd.kubernetes.protobuf"
	core.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kube, err := kubernetes.NewForConfig(core)
	if err != nil {
		return nil, nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	gitpulse, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("building the gitpulse client: %w", err)
	}
	return kube, gitpulse, nil
}
