package controlplane

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The API server writes its self-signed certificate after it starts, with
// a create and then a write; a readiness poll can read the file in
// between. The first poll's empty or cut file must not be what later polls
// trust, or an API server that is up stays "not ready" to the timeout.
func TestReadyTrusting_ReadsTheCertificateAgainUntilItVerifies(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c := &ControlPlane{apiPort: port, token: "t"}
	file := filepath.Join(t.TempDir(), "apiserver.crt")

	steps := []struct {
		name    string
		content []byte // nil: no file yet
		want    bool
	}{
		{"no file yet", nil, false},
		{"created, not yet written", []byte{}, false},
		{"cut short", cert[:len(cert)/2], false},
		{"written", cert, true},
	}
	for _, s := range steps {
		if s.content != nil {
			if err := os.WriteFile(file, s.content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.readyTrusting(file); got != s.want {
			t.Fatalf("%s: ready %v, want %v", s.name, got, s.want)
		}
	}
	if string(c.caData) != string(cert) {
		t.Errorf("kept CA data %q, want the certificate that verified", c.caData)
	}
}
