package recorder

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

func TestStart_FailsClearlyWithoutAKubernetesClient(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]string
		wantErr string
	}{
		{"kubeconfig that does not exist", map[string]string{"KUBECONFIG": "/nonexistent/kubeconfig"}, "KUBECONFIG=/nonexistent/kubeconfig"},
		{"outside a cluster without kubeconfig", map[string]string{}, "in-cluster"},
		{"invalid body limit", map[string]string{"GITPULSE_MAX_BODY_BYTES": "-1"}, "GITPULSE_MAX_BODY_BYTES"},
		{"invalid log level", map[string]string{"GITPULSE_LOG_LEVEL": "chatty"}, "GITPULSE_LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "") // never pick up a real cluster
			f := New()
			err := f.Start(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Start error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if ready, _ := f.Ready(context.Background()); ready {
				t.Error("ready after a failed start")
			}
		})
	}
}

func TestHandle_AnswersServiceUnavailableBeforeStart(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetType("dev.knative.source.github.push")
	e.SetSource("https://github.com/o/r")
	_, err := New().Handle(context.Background(), e)
	var res *cehttp.Result
	if !errors.As(err, &res) || res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("Handle before Start = %v, want 503", err)
	}
	if alive, _ := New().Alive(context.Background()); !alive {
		t.Error("not alive")
	}
}
