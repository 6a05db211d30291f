// Package h2server serves a test's handler over TLS offering HTTP/2 in ALPN,
// as a kube-apiserver does, so that a test can see which protocol a client
// built from a rest.Config chooses (r.Proto in the handler).
package h2server

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"
)

// Start serves handler on 127.0.0.1 over TLS, offering HTTP/2 and
// HTTP/1.1, until the test ends, and returns a client configuration that
// trusts its certificate.
func Start(t testing.TB, handler http.Handler) *rest.Config {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{
		CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})}}
}

// NotFound answers a Kubernetes Status 404, which client-go reads as such.
func NotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
}
