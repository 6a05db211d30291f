package ghadapter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuilt_SaysWhatIsMissingAndHowToBuildIt(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		missing string // "" when built
	}{
		{"nothing built", nil, Binary},
		{"binary without its CRD", []string{Binary}, "300-githubsource.yaml"},
		{"CRD without the binary", []string{"config/300-githubsource.yaml"}, Binary},
		{"both", []string{Binary, "config/300-githubsource.yaml"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(dir, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Built(dir)
			switch {
			case tt.missing == "" && err != nil:
				t.Fatalf("Built: %v, want nil", err)
			case tt.missing != "" && (!errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), tt.missing) ||
				!strings.Contains(err.Error(), "make eventing-github")):
				t.Fatalf("Built: %v, want ErrNotBuilt naming %s and `make eventing-github`", err, tt.missing)
			}
		})
	}
}

func TestStart_RefusesOptionsTheAdapterCannotRunWithout(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{Binary, "config/300-githubsource.yaml"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	full := Options{BinDir: dir, Sink: "http://127.0.0.1:1", Secret: "s", OwnerAndRepository: "o/r",
		Kubeconfig: "/dev/null", LogPath: filepath.Join(dir, "log")}
	tests := []struct {
		name  string
		clear func(*Options)
		want  string
	}{
		{"no sink", func(o *Options) { o.Sink = "" }, "K_SINK"},
		{"no secret", func(o *Options) { o.Secret = "" }, "GITHUB_SECRET_TOKEN"},
		{"no owner and repository", func(o *Options) { o.OwnerAndRepository = "" }, "GITHUB_OWNER_REPO"},
		{"no kubeconfig", func(o *Options) { o.Kubeconfig = "" }, "kubeconfig"},
		{"no log", func(o *Options) { o.LogPath = "" }, "log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := full
			tt.clear(&opts)
			if _, err := Start(context.Background(), opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// The process gets the GitHubSource controller's environment for its
// adapter (eventing-github pkg/reconciler/source/resources/service.go), what
// Serving and the pod add, and nothing else of the parent's but PATH and
// HOME.
func TestEnv_IsTheControllersPlusServingsAndNothingElse(t *testing.T) {
	t.Setenv("GITPULSE_SOMETHING", "leak")
	got := env(Options{Sink: "http://broker-ingress.knative-eventing.svc.cluster.local/ns/default", Secret: "s",
		OwnerAndRepository: "o/r", Namespace: "ns", Name: "n", Port: 23456, Kubeconfig: "/k", Proxy: "http://127.0.0.1:1"})
	want := []string{
		"GITHUB_SECRET_TOKEN=s", "K_SINK=http://broker-ingress.knative-eventing.svc.cluster.local/ns/default",
		"GITHUB_OWNER_REPO=o/r", "NAMESPACE=ns", "METRICS_DOMAIN=knative.dev/eventing", "K_METRICS_CONFIG=",
		"K_LOGGING_CONFIG=", "NAME=n", "PORT=23456", "KUBECONFIG=/k",
		"HTTP_PROXY=http://127.0.0.1:1", "NO_PROXY=127.0.0.1,localhost",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("env lacks %s: %v", w, got)
		}
	}
	for _, e := range got {
		if strings.HasPrefix(e, "GITPULSE_") {
			t.Errorf("env leaks %s", e)
		}
	}
}
