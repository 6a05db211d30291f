package recorder

import (
	"errors"
	"net/http"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

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
		{"an object of another identity", ErrIdentityMismatch, http.StatusInternalServerError},
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

func TestConfigFromEnv_ClockSkewAndAllowedOwners(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		wantSkew   time.Duration
		wantOwners []string
		wantErr    bool
	}{
		{"defaults", map[string]string{}, time.Hour, nil, false},
		{"skew set", map[string]string{EnvMaxClockSkew: "10m"}, 10 * time.Minute, nil, false},
		{"skew not a duration", map[string]string{EnvMaxClockSkew: "an hour"}, 0, nil, true},
		{"skew not positive", map[string]string{EnvMaxClockSkew: "-1h"}, 0, nil, true},
		{"owners", map[string]string{EnvAllowedOwners: " acme, Liatrio ,,"}, time.Hour, []string{"acme", "Liatrio"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(tt.env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if c.MaxClockSkew != tt.wantSkew || len(c.AllowedOwners) != len(tt.wantOwners) {
				t.Fatalf("skew %s owners %q, want %s %q", c.MaxClockSkew, c.AllowedOwners, tt.wantSkew, tt.wantOwners)
			}
			for i := range tt.wantOwners {
				if c.AllowedOwners[i] != tt.wantOwners[i] {
					t.Fatalf("owners %q, want %q", c.AllowedOwners, tt.wantOwners)
				}
			}
		})
	}
}
