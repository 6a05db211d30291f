package ghsource

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/liatrio/gitpulse/internal/ghadapter"
	"github.com/liatrio/gitpulse/internal/octokit"
)

// The differential tests below pin this package to the real GitHubSource
// receive adapter (knative.dev/eventing-github v0.43.0, `make
// eventing-github`): the same webhook, posted to the adapter binary and
// given to FromWebhook, must make the same CloudEvent. Both events are
// compared as they arrive at a sink over HTTP (binary mode, as the adapter
// sends), decoded by the same code.
//
// Compared: specversion, id, type, source, subject, datacontenttype,
// dataschema, every extension (name and value) and the data bytes.
// Excluded, and why:
//   - time: the adapter's CloudEvents client stamps it when it sends;
//     FromWebhook stamps its own now. Both are checked to be set.
//   - HTTP headers outside CloudEvents (the adapter's Kn-Namespace and its
//     W3C Traceparent): they are not part of the event; Kn-Namespace is
//     checked to be the adapter's NAMESPACE.
// The ids are equal because the test sets X-GitHub-Delivery.

// adapterEventTypes are the GitHub event types the differential test
// covers: those the recorder reads, and issues, which it acknowledges and
// ignores.
var adapterEventTypes = []string{"pull_request", "push", "create", "delete", "ping",
	"pull_request_review", "deployment", "deployment_status", "issues"}

const (
	adapterSecret    = "differential-secret"
	adapterOwnerRepo = "octo-org/hello-world"
	adapterNamespace = "gitpulse-differential"
)

// sink captures what arrives at K_SINK, by CloudEvent id.
type sink struct {
	mu     sync.Mutex
	events map[string]capture
}

type capture struct {
	event  *event.Event
	header http.Header
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.events[e.ID()] = capture{event: e, header: r.Header.Clone()}
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (s *sink) take(id string) (capture, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.events[id]
	delete(s.events, id)
	return c, ok
}

// startAdapter runs the real adapter with K_SINK at a new sink; it skips
// the test when the binary is not built.
func startAdapter(t *testing.T) (*ghadapter.Adapter, *sink) {
	t.Helper()
	bin, err := ghadapter.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := ghadapter.Built(bin); err != nil {
		t.Skipf("%v; `make test` builds it", err)
	}
	s := &sink{events: map[string]capture{}}
	srv := httptest.NewServer(s) // 127.0.0.1
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	// The adapter's injection builds a Kubernetes client from it and
	// never calls it: an unreachable server is enough.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := ghadapter.Start(ctx, ghadapter.Options{BinDir: bin, Sink: srv.URL, Secret: adapterSecret,
		OwnerAndRepository: adapterOwnerRepo, Namespace: adapterNamespace, Name: "differential",
		Kubeconfig: kubeconfig, LogPath: filepath.Join(dir, "adapter.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "adapter.log"))
			t.Logf("adapter log:\n%s", b)
		}
	})
	return a, s
}

// post sends a webhook to the adapter as GitHub does, signed with SHA-1
// (X-Hub-Signature, the only signature the adapter checks), and returns
// the answer.
func post(t *testing.T, url, eventType, id string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha1.New, []byte(adapterSecret))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", eventType)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// overHTTP is e as a sink receives it from the adapter: written in binary
// mode and decoded again.
func overHTTP(t *testing.T, e event.Event) *event.Event {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://sink/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	got, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// differences lists what differs between two events, time excluded.
func differences(adapter, emulated *event.Event) []string {
	var diffs []string
	attr := func(name, a, e string) {
		if a != e {
			diffs = append(diffs, fmt.Sprintf("%s: adapter %q, ghsource %q", name, a, e))
		}
	}
	attr("specversion", adapter.SpecVersion(), emulated.SpecVersion())
	attr("id", adapter.ID(), emulated.ID())
	attr("type", adapter.Type(), emulated.Type())
	attr("source", adapter.Source(), emulated.Source())
	attr("subject", adapter.Subject(), emulated.Subject())
	attr("datacontenttype", adapter.DataContentType(), emulated.DataContentType())
	attr("dataschema", adapter.DataSchema(), emulated.DataSchema())
	for _, k := range slices.Sorted(maps.Keys(adapter.Extensions())) {
		if _, ok := emulated.Extensions()[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("extension %s: adapter %v, ghsource none", k, adapter.Extensions()[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(emulated.Extensions())) {
		a, ok := adapter.Extensions()[k]
		e := emulated.Extensions()[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("extension %s: adapter none, ghsource %v", k, e))
		} else if fmt.Sprint(a) != fmt.Sprint(e) {
			diffs = append(diffs, fmt.Sprintf("extension %s: adapter %v, ghsource %v", k, a, e))
		}
	}
	if !bytes.Equal(adapter.Data(), emulated.Data()) {
		diffs = append(diffs, fmt.Sprintf("data:\n adapter %s\n ghsource %s", adapter.Data(), emulated.Data()))
	}
	return diffs
}

// TestFromWebhook_MakesTheRealAdaptersEventForEveryOctokitExample is the
// differential test: every @octokit/webhooks-examples payload of the event
// types gitpulse handles, through the real adapter and through
// FromWebhook, makes the same CloudEvent (see the comment at the top).
func TestFromWebhook_MakesTheRealAdaptersEventForEveryOctokitExample(t *testing.T) {
	a, s := startAdapter(t)
	examples := octokit.Examples(t)
	total, equal := 0, 0
	for _, eventType := range adapterEventTypes {
		if len(examples[eventType]) == 0 {
			t.Fatalf("no %s examples in @octokit/webhooks-examples", eventType)
		}
		for i, raw := range examples[eventType] {
			t.Run(fmt.Sprintf("%s-%d", eventType, i), func(t *testing.T) {
				total++
				id := fmt.Sprintf("differential-%s-%d-%d", eventType, i, time.Now().UnixNano())
				if code, body := post(t, a.URL(), eventType, id, raw); code != http.StatusAccepted {
					t.Fatalf("adapter answered %d %q, want 202", code, body)
				}
				got, ok := s.take(id)
				if !ok {
					t.Fatal("the adapter answered 202 but the sink has no event with the delivery id")
				}
				emulated, err := FromWebhook(adapterOwnerRepo, eventType, id, raw)
				if err != nil {
					t.Fatalf("FromWebhook refused what the adapter sent: %v", err)
				}
				if got.event.Time().IsZero() || emulated.Time().IsZero() {
					t.Errorf("time unset: adapter %v, ghsource %v", got.event.Time(), emulated.Time())
				}
				if ns := got.header.Get("Kn-Namespace"); ns != adapterNamespace {
					t.Errorf("Kn-Namespace = %q, want the adapter's NAMESPACE %q", ns, adapterNamespace)
				}
				if diffs := differences(got.event, overHTTP(t, emulated)); len(diffs) > 0 {
					t.Fatalf("%d differences:\n%s", len(diffs), joinLines(diffs))
				}
				equal++
			})
		}
	}
	t.Logf("%d of %d examples made the same CloudEvent", equal, total)
}

// TestParse_RefusesWhatTheRealAdapterRefuses: where the adapter answers
// 404 or 400, Parse fails the same way (ErrEventNotFound for the 404).
func TestParse_RefusesWhatTheRealAdapterRefuses(t *testing.T) {
	a, _ := startAdapter(t)
	tests := []struct {
		name, eventType, body string
		wantCode              int
	}{
		{"event type outside ValidEvents", "workflow_run", `{"action":"completed"}`, http.StatusNotFound},
		{"broken JSON", "push", `{"ref":`, http.StatusBadRequest},
		{"empty body", "push", ``, http.StatusBadRequest},
		{"field of the wrong type for the v5 struct", "push", `{"repository":{"pushed_at":"2026-01-01T10:00:00Z"}}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, a.URL(), tt.eventType, "refused-"+tt.name, []byte(tt.body))
			if code != tt.wantCode {
				t.Fatalf("adapter answered %d %q, want %d", code, body, tt.wantCode)
			}
			_, err := Parse(tt.eventType, []byte(tt.body))
			if err == nil {
				t.Fatalf("Parse accepted what the adapter answers %d", code)
			}
			if notFound := errors.Is(err, ErrEventNotFound); notFound != (code == http.StatusNotFound) {
				t.Fatalf("Parse: %v; the adapter answered %d", err, code)
			}
		})
	}
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
