package function

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"strings"
	"testing"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

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

func TestStatusCode_TooLargeForTheAPIServerIsNotRetried(t *testing.T) {
	gr := schema.GroupResource{Group: "stable.liatr.io", Resource: "pullrequests"}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"etcd refuses the request as too large", apierrors.NewInternalError(errors.New("etcdserver: request is too large")), http.StatusRequestEntityTooLarge},
		{"the API server refuses the body as too large", apierrors.NewRequestEntityTooLargeError("limit is 3145728"), http.StatusRequestEntityTooLarge},
		{"another internal error", apierrors.NewInternalError(errors.New("boom")), http.StatusInternalServerError},
		{"an object of another identity", errors.New("object belongs to another identity"), http.StatusInternalServerError},
		{"invalid object", apierrors.NewInvalid(schema.GroupKind{Group: gr.Group, Kind: "PullRequest"}, "x", nil), http.StatusUnprocessableEntity},
		{"conflict", apierrors.NewConflict(gr, "x", errors.New("changed")), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusCode(tt.err); got != tt.want {
				t.Fatalf("StatusCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestAnswer_TellsTheSenderOnlyWhatIsItsFault(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantText string
		hidden   string
	}{
		{"malformed payload: the reason is the sender's", fmt.Errorf("%w: unexpected end of JSON input", githubevent.ErrMalformed),
			http.StatusBadRequest, "unexpected end of JSON input", ""},
		{"over a size limit: the reason is the sender's", bodyTooLarge{}, http.StatusRequestEntityTooLarge, "over the limit", ""},
		{"API server failure: only a public reason", apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "e1", errors.New("user system:serviceaccount:ns:sa")),
			http.StatusInternalServerError, "details in the recorder's log", "serviceaccount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			err := Answer(slog.New(slog.NewJSONHandler(&logs, nil)), tt.err)
			var res *cehttp.Result
			if !errors.As(err, &res) || res.StatusCode != tt.wantCode {
				t.Fatalf("Answer = %v, want a %d result", err, tt.wantCode)
			}
			if !strings.Contains(res.Error(), tt.wantText) || (tt.hidden != "" && strings.Contains(res.Error(), tt.hidden)) {
				t.Errorf("answer %q: want %q in it and not %q", res.Error(), tt.wantText, tt.hidden)
			}
			var line struct {
				Msg    string `json:"msg"`
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Msg != "delivery refused" ||
				line.Code != tt.wantCode || line.Reason != tt.err.Error() {
				t.Errorf("log %s: want the refusal with its code and whole reason", logs.String())
			}
		})
	}
	if Answer(slog.Default(), nil) != nil {
		t.Error("a nil error is not answered 2xx")
	}
}

// bodyTooLarge says TooLarge as pkg/recorder's size error does.
type bodyTooLarge struct{}

func (bodyTooLarge) Error() string  { return "event data is 2 bytes, over the limit" }
func (bodyTooLarge) TooLarge() bool { return true }
