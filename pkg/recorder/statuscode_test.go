package recorder

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/liatrio/gitpulse/pkg/githubevent"
)

// brokerRetries is what Knative's MT broker retries (eventing v0.43.0,
// pkg/kncloudevents/retries.go, SelectiveRetry): 5xx, 404, 408, 409, 429.
func brokerRetries(code int) bool {
	return code >= 500 || code == 404 || code == 408 || code == 409 || code == 429
}

// TestStatusCode_TheAnswerCodeContract is the table of docs/deploy.md
// ("Answer codes and retries"): what can never succeed is answered with a
// code the Broker does not retry, what is transient with one it does.
func TestStatusCode_TheAnswerCodeContract(t *testing.T) {
	gr := schema.GroupResource{Group: "stable.liatr.io", Resource: "branches"}
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name      string
		err       error
		want      int
		retryable bool
	}{
		{"recorded", nil, http.StatusOK, false},
		{"malformed payload", fmt.Errorf("%w: broken", githubevent.ErrMalformed), http.StatusBadRequest, false},
		{"payload of another type", fmt.Errorf("%w: x", githubevent.ErrMismatch), http.StatusBadRequest, false},
		{"no repository", githubevent.ErrNoRepository, http.StatusBadRequest, false},
		{"not a GitHub type", fmt.Errorf("%w: x", githubevent.ErrUnknownType), http.StatusBadRequest, false},
		{"no delivery id", githubevent.ErrNoDeliveryID, http.StatusBadRequest, false},
		{"object refused as invalid", apierrors.NewInvalid(schema.GroupKind{Group: gr.Group, Kind: "Branch"}, "x", nil), http.StatusUnprocessableEntity, false},
		{"object too large for etcd", apierrors.NewInternalError(errors.New("etcdserver: request is too large")), http.StatusRequestEntityTooLarge, false},
		{"conflicts exhausted", apierrors.NewConflict(gr, "x", errors.New("changed")), http.StatusServiceUnavailable, true},
		{"API server throttles", apierrors.NewTooManyRequests("slow down", 1), http.StatusServiceUnavailable, true},
		{"API server timeout", apierrors.NewServerTimeout(gr, "update", 1), http.StatusServiceUnavailable, true},
		{"API server unavailable", apierrors.NewServiceUnavailable("down"), http.StatusServiceUnavailable, true},
		{"API server unreachable", fmt.Errorf("get: %w", dialErr), http.StatusServiceUnavailable, true},
		{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable, true},
		{"RBAC denies a write", apierrors.NewForbidden(gr, "x", errors.New("no")), http.StatusInternalServerError, true},
		{"namespace missing", apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "gitpulse"), http.StatusInternalServerError, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StatusCode(tt.err)
			if got != tt.want {
				t.Fatalf("StatusCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
			if got != http.StatusOK && brokerRetries(got) != tt.retryable {
				t.Fatalf("%d: the Broker retries it = %v, want %v", got, brokerRetries(got), tt.retryable)
			}
		})
	}
}
