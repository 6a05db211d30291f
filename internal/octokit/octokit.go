// Package octokit reads the real GitHub webhook payloads of npm's
// @octokit/webhooks-examples (installed by `make webhook-examples`) for the
// tests that replay them.
package octokit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Examples reads the payloads by event type from GITPULSE_WEBHOOK_EXAMPLES,
// else the repository's .cache; the test fails, saying how to install them,
// when they are missing.
func Examples(t testing.TB) map[string][]json.RawMessage {
	t.Helper()
	dir := os.Getenv("GITPULSE_WEBHOOK_EXAMPLES")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", ".cache", "npm", "node_modules", "@octokit", "webhooks-examples")
	}
	b, err := os.ReadFile(filepath.Join(dir, "api.github.com", "index.json"))
	if err != nil {
		t.Fatalf("the @octokit/webhooks-examples payloads are missing (run `make webhook-examples`, or set "+
			"GITPULSE_WEBHOOK_EXAMPLES to the package directory): %v", err)
	}
	var index []struct {
		Name     string            `json:"name"`
		Examples []json.RawMessage `json:"examples"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	out := map[string][]json.RawMessage{}
	for _, e := range index {
		out[e.Name] = e.Examples
	}
	return out
}
