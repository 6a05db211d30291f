package recorder

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

func TestStart_FailsClearlyWithoutAKubernetesClient(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]string
		wantErr string
	}{
		{"kubeconfig that does not exist", map[string]string{"GITPULSE_NAMESPACE": "ns", "KUBECONFIG": "/nonexistent/kubeconfig"}, "KUBECONFIG=/nonexistent/kubeconfig"},
		{"outside a cluster without kubeconfig", map[string]string{"GITPULSE_NAMESPACE": "ns"}, "in-cluster"},
		{"outside a pod without a namespace", map[string]string{"KUBECONFIG": "/nonexistent/kubeconfig"}, "GITPULSE_NAMESPACE is not set"},
		{"body limit not positive", map[string]string{"GITPULSE_NAMESPACE": "ns", "GITPULSE_MAX_BODY_BYTES": "-1"}, "GITPULSE_MAX_BODY_BYTES"},
		{"body limit not a number", map[string]string{"GITPULSE_NAMESPACE": "ns", "GITPULSE_MAX_BODY_BYTES": "lots"}, "GITPULSE_MAX_BODY_BYTES"},
		{"clock skew not a duration", map[string]string{"GITPULSE_NAMESPACE": "ns", "GITPULSE_MAX_CLOCK_SKEW": "an hour"}, "GITPULSE_MAX_CLOCK_SKEW"},
		{"clock skew not positive", map[string]string{"GITPULSE_NAMESPACE": "ns", "GITPULSE_MAX_CLOCK_SKEW": "-1h"}, "GITPULSE_MAX_CLOCK_SKEW"},
		{"invalid log level", map[string]string{"GITPULSE_NAMESPACE": "ns", "GITPULSE_LOG_LEVEL": "chatty"}, "GITPULSE_LOG_LEVEL"},
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

func TestEnv_ReadsEveryKeyWithItsDefault(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]string
		want Env
	}{
		{"defaults", map[string]string{}, Env{
			Env:          function.Env{LogLevel: slog.LevelInfo},
			MaxBodyBytes: recorder.DefaultMaxBodyBytes, MaxClockSkew: githubevent.DefaultMaxClockSkew,
		}},
		{"empty values are unset", map[string]string{"GITPULSE_MAX_BODY_BYTES": "", "GITPULSE_LOG_LEVEL": " "}, Env{
			Env:          function.Env{LogLevel: slog.LevelInfo},
			MaxBodyBytes: recorder.DefaultMaxBodyBytes, MaxClockSkew: githubevent.DefaultMaxClockSkew,
		}},
		{"everything set", map[string]string{
			"GITPULSE_NAMESPACE": "ns", "POD_NAMESPACE": "pod-ns", "KUBECONFIG": "/k", "GITPULSE_LOG_LEVEL": "debug",
			"GITPULSE_INSTANCE": "i", "HOSTNAME": "pod-1", "GITPULSE_MAX_BODY_BYTES": "1024",
			"GITPULSE_MAX_CLOCK_SKEW": "10m", "GITPULSE_ALLOWED_OWNERS": "acme,Liatrio",
		}, Env{
			Env: function.Env{Namespace: "ns", PodNamespace: "pod-ns", Kubeconfig: "/k", LogLevel: slog.LevelDebug,
				Instance: "i", Hostname: "pod-1"},
			MaxBodyBytes: 1024, MaxClockSkew: 10 * time.Minute, AllowedOwners: []string{"acme", "Liatrio"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Env
			if err := function.Process(context.Background(), tt.cfg, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Env = %+v, want %+v", got, tt.want)
			}
		})
	}
}
