package recorder

import (
	"context"
	"net/http"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/internal/h2server"
)

// TestNewClients_SpeakHTTP1ToTheAPIServer: over TLS to a server that
// offers HTTP/2, the recorder's clients (both) ask over HTTP/1.1, where a
// client-go clientset from the same configuration takes HTTP/2.
func TestNewClients_SpeakHTTP1ToTheAPIServer(t *testing.T) {
	var mu sync.Mutex
	var protos []string
	cfg := h2server.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.Proto)
		mu.Unlock()
		h2server.NotFound(w)
	}))
	ctx := context.Background()
	asked := func() string {
		mu.Lock()
		defer mu.Unlock()
		p := protos[len(protos)-1]
		protos = nil
		return p
	}

	plain, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plain.CoreV1().Events("ns").Get(ctx, "e", metav1.GetOptions{})
	if p := asked(); p != "HTTP/2.0" {
		t.Fatalf("a plain clientset asked over %s: the server should offer HTTP/2", p)
	}

	kube, gitpulse, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kube.CoreV1().Events("ns").Get(ctx, "e", metav1.GetOptions{})
	if p := asked(); p != "HTTP/1.1" {
		t.Errorf("the core client asked over %s, want HTTP/1.1", p)
	}
	gitpulse.StableV1().PullRequests("ns").Get(ctx, "p", metav1.GetOptions{})
	if p := asked(); p != "HTTP/1.1" {
		t.Errorf("the gitpulse client asked over %s, want HTTP/1.1", p)
	}
	if len(cfg.NextProtos) != 0 {
		t.Errorf("NewClients changed its caller's configuration: NextProtos %v", cfg.NextProtos)
	}
}
