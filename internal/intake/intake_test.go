package intake

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
)

// recorderStub stands in for the recorder: it decodes the CloudEvent the
// intake forwards and answers a chosen code.
type recorderStub struct {
	mu     sync.Mutex
	events []event.Event
	code   int
}

func (s *recorderStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.events = append(s.events, *ev)
	s.mu.Unlock()
	w.WriteHeader(s.code)
	io.WriteString(w, "stub says hi")
}

const secret = "It's a Secret to Everybody"

func send(t *testing.T, url string, mutate func(*http.Request)) (int, string) {
	t.Helper()
	body := ghwebhook.Ref{Repo: "octo/repo", Ref: "feature/x", Sender: "octocat"}.CreatePayload()
	req, err := ghwebhook.Request(context.Background(), url, []byte(secret), ghwebhook.Delivery{Event: "create", ID: "d-1", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestIntake_AnswersAndForwards(t *testing.T) {
	tests := []struct {
		name      string
		recorder  int // code the recorder answers; 0 = recorder down
		mutate    func(*http.Request)
		want      int
		text      string
		forwarded bool
	}{
		{name: "signed delivery is forwarded", recorder: 200, want: 202, text: "accepted", forwarded: true},
		{name: "missing signature", recorder: 200, mutate: func(r *http.Request) { r.Header.Del("X-Hub-Signature-256") }, want: 401, text: "missing X-Hub-Signature-256"},
		{name: "forged signature", recorder: 200, mutate: func(r *http.Request) {
			r.Header.Set("X-Hub-Signature-256", ghwebhook.Signature([]byte("wrong secret"), []byte("x")))
		}, want: 403, text: "signature"},
		{name: "malformed signature", recorder: 200, mutate: func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", "sha256=zz") }, want: 401, text: "64 hex digits"},
		{name: "SHA-1 signature only", recorder: 200, mutate: func(r *http.Request) {
			r.Header.Del("X-Hub-Signature-256")
			r.Header.Set("X-Hub-Signature", "sha1=0000000000000000000000000000000000000000")
		}, want: 401, text: "missing X-Hub-Signature-256"},
		{name: "form-encoded content type, refused as the adapter does", recorder: 200, mutate: func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}, want: 400, text: "application/json"},
		{name: "missing event header", recorder: 200, mutate: func(r *http.Request) { r.Header.Del("X-GitHub-Event") }, want: 400, text: "X-GitHub-Event"},
		{name: "missing delivery header", recorder: 200, mutate: func(r *http.Request) { r.Header.Del("X-GitHub-Delivery") }, want: 400, text: "X-GitHub-Delivery"},
		{name: "event type the adapter does not accept", recorder: 200, mutate: func(r *http.Request) { r.Header.Set("X-GitHub-Event", "workflow_run") }, want: 404, text: "workflow_run"},
		{name: "GET, refused as the adapter does", recorder: 200, mutate: func(r *http.Request) { r.Method = http.MethodGet }, want: 400, text: "POST"},
		{name: "recorder refuses for good", recorder: 400, want: 400, text: "stub says hi", forwarded: true},
		{name: "recorder fails transiently", recorder: 503, want: 502, forwarded: true},
		{name: "recorder down", recorder: 0, want: 502, text: "unreachable"},
		{name: "recorder's internal error text is not echoed", recorder: 500, want: 502, text: "recorder answered 500", forwarded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &recorderStub{code: tt.recorder}
			rec := httptest.NewServer(stub)
			target := rec.URL
			if tt.recorder == 0 {
				rec.Close()
			} else {
				defer rec.Close()
			}
			h, err := New(Options{Secret: []byte(secret), Target: target})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			code, body := send(t, srv.URL, tt.mutate)
			if code != tt.want || !strings.Contains(body, tt.text) {
				t.Fatalf("got %d %q, want %d containing %q", code, body, tt.want, tt.text)
			}
			if got := len(stub.events); (got == 1) != tt.forwarded {
				t.Fatalf("forwarded %d events, want forwarded=%v", got, tt.forwarded)
			}
			if tt.forwarded {
				ev := stub.events[0]
				if ev.ID() != "d-1" || ev.Type() != "dev.knative.source.github.create" || ev.Source() != "https://github.com/octo/repo" {
					t.Fatalf("forwarded event %s", ev)
				}
			}
		})
	}
}

func TestIntake_RefusesOversizedBodyWithoutForwarding(t *testing.T) {
	stub := &recorderStub{code: 200}
	rec := httptest.NewServer(stub)
	defer rec.Close()
	h, _ := New(Options{Secret: []byte(secret), Target: rec.URL, MaxBodyBytes: 64})
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, _ := send(t, srv.URL, nil)
	if code != http.StatusRequestEntityTooLarge || len(stub.events) != 0 {
		t.Fatalf("got %d with %d forwarded", code, len(stub.events))
	}
}

func TestNew_RequiresSecretAndTarget(t *testing.T) {
	if _, err := New(Options{Target: "http://x"}); err == nil {
		t.Fatal("no secret accepted")
	}
	if _, err := New(Options{Secret: []byte("s")}); err == nil {
		t.Fatal("no target accepted")
	}
}

func TestIntake_ForwardsTheAdaptersShapeNotTheRawBody(t *testing.T) {
	stub := &recorderStub{code: 200}
	rec := httptest.NewServer(stub)
	defer rec.Close()
	h, _ := New(Options{Secret: []byte(secret), Target: rec.URL, OwnerAndRepository: "octo"})
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := []byte(`{"ref":"refs/heads/gone","deleted":true,"after":"0000000000000000000000000000000000000000",` +
		`"head_commit":null,"draft_only_in_raw":1,"repository":{"name":"repo","full_name":"octo/repo","owner":{"login":"octo"},"pushed_at":1767261600},` +
		`"sender":{"login":"octocat"}}`)
	req, err := ghwebhook.Request(context.Background(), srv.URL, []byte(secret), ghwebhook.Delivery{Event: "push", ID: "d-9", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || len(stub.events) != 1 {
		t.Fatalf("answered %d, forwarded %d", resp.StatusCode, len(stub.events))
	}
	ev := stub.events[0]
	data := string(ev.Data())
	if !strings.Contains(data, `"head_commit":{"id":""`) || strings.Contains(data, "draft_only_in_raw") {
		t.Errorf("data is not json.Marshal of the adapter's struct: %s", data)
	}
	if ev.Source() != "https://github.com/octo" || ev.Extensions()["deleted"] != "true" || ev.Extensions()["ref"] != "refs/heads/gone" {
		// Over HTTP binary mode every extension arrives as a string.
		t.Errorf("attributes: %s", ev)
	}
}

func TestIntake_TowardABrokerAnswersAsTheAdapter(t *testing.T) {
	tests := []struct {
		name     string
		broker   int // 0 = down
		want     int
		contains string
	}{
		{"acknowledged", 202, 202, "accepted"},
		{"refused", 400, 400, "did not acknowledge"},
		{"failing", 503, 400, "answered 503"},
		{"down", 0, 400, "did not acknowledge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &recorderStub{code: tt.broker}
			broker := httptest.NewServer(stub)
			target := broker.URL
			if tt.broker == 0 {
				broker.Close()
			} else {
				defer broker.Close()
			}
			h, _ := New(Options{Secret: []byte(secret), Target: target, ToBroker: true})
			srv := httptest.NewServer(h)
			defer srv.Close()
			code, body := send(t, srv.URL, nil)
			if code != tt.want || !strings.Contains(body, tt.contains) {
				t.Fatalf("got %d %q, want %d containing %q", code, body, tt.want, tt.contains)
			}
		})
	}
}
