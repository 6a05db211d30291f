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
func NewClients(cfg *rest.Config) (kubernetes.Interface, versioned.Interface, error) {
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
