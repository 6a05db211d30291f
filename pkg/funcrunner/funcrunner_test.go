package funcrunner

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// echoFunction records what it was given and answers what the test asks for.
type echoFunction struct {
	started, stopped atomic.Bool
	last             atomic.Value // event.Event
	answer           error
	cfg              map[string]string
}

func (f *echoFunction) Start(_ context.Context, cfg map[string]string) error {
	f.cfg = cfg
	f.started.Store(true)
	return nil
}
func (f *echoFunction) Stop(context.Context) error          { f.stopped.Store(true); return nil }
func (f *echoFunction) Ready(context.Context) (bool, error) { return f.started.Load(), nil }
func (f *echoFunction) Handle(_ context.Context, e event.Event) (*event.Event, error) {
	f.last.Store(e)
	return nil, f.answer
}

var _ interface {
	Starter
	Stopper
	ReadinessReporter
	CloudEventHandler
} = (*echoFunction)(nil)

func start(t *testing.T, fn any, opts Options) *Server {
	t.Helper()
	s, err := New(fn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func post(t *testing.T, url string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCloudEventMode_AcceptsBinaryStructuredAndBase64(t *testing.T) {
	binary := map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "d-1", "Ce-Type": "dev.knative.source.github.ping",
		"Ce-Source": "https://github.com/o/r", "Content-Type": "application/json",
	}
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	tests := []struct {
		name   string
		header map[string]string
		body   string
	}{
		{"binary", binary, `{"zen":"x"}`},
		{"structured", structured, `{"specversion":"1.0","id":"d-1","type":"dev.knative.source.github.ping","source":"https://github.com/o/r","datacontenttype":"application/json","data":{"zen":"x"}}`},
		{"structured data_base64", structured, `{"specversion":"1.0","id":"d-1","type":"dev.knative.source.github.ping","source":"https://github.com/o/r","datacontenttype":"application/json","data_base64":"eyJ6ZW4iOiJ4In0="}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := &echoFunction{}
			s := start(t, fn, Options{Config: map[string]string{"K": "v"}})
			code, body := post(t, s.URL(), tt.header, tt.body)
			if code != http.StatusOK {
				t.Fatalf("code %d: %s", code, body)
			}
			got := fn.last.Load().(event.Event)
			if got.ID() != "d-1" || string(got.Data()) != `{"zen":"x"}` {
				t.Fatalf("event id %q data %q", got.ID(), got.Data())
			}
			if fn.cfg["K"] != "v" {
				t.Fatalf("Start got config %v", fn.cfg)
			}
		})
	}
}

func TestCloudEventMode_AnswersCodes(t *testing.T) {
	ce := map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "d-1", "Ce-Type": "t", "Ce-Source": "s", "Content-Type": "application/json",
	}
	tests := []struct {
		name   string
		answer error
		header map[string]string
		body   string
		want   int
		text   string
	}{
		{"handler 4xx result", cehttp.NewResult(http.StatusBadRequest, "payload is %s", "broken"), ce, `{}`, 400, "payload is broken"},
		{"handler plain error is transient", errors.New("apiserver down"), ce, `{}`, 500, "apiserver down"},
		{"no CloudEvent at all", nil, map[string]string{"Content-Type": "text/plain"}, `hi`, 415, "not a CloudEvent"},
		{"broken structured JSON", nil, map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":`, 400, "malformed CloudEvent"},
		{"structured without id", nil, map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","type":"t","source":"s"}`, 400, "id"},
		{"body over the limit", nil, ce, strings.Repeat("x", 2048), 413, "exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &echoFunction{answer: tt.answer}, Options{MaxBodyBytes: 1024})
			code, body := post(t, s.URL(), tt.header, tt.body)
			if code != tt.want || !strings.Contains(body, tt.text) {
				t.Fatalf("got %d %q, want %d containing %q", code, body, tt.want, tt.text)
			}
		})
	}
}

func TestHealthAndLifecycle(t *testing.T) {
	fn := &echoFunction{}
	s := start(t, fn, Options{})
	for _, path := range []string{ReadinessPath, LivenessPath} {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := http.Get(s.URL() + "/"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET / = %d, want 405", resp.StatusCode)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !fn.stopped.Load() {
		t.Fatal("Stop not called on shutdown")
	}
}

type httpFunction struct{}

func (httpFunction) Handle(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "path "+r.URL.Path)
}

func TestHTTPMode_RoutesEverythingButHealthToHandle(t *testing.T) {
	s := start(t, httpFunction{}, Options{})
	resp, err := http.Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "path /metrics" {
		t.Fatalf("got %q", b)
	}
}

func TestNew_RefusesValueWithoutHandle(t *testing.T) {
	if _, err := New(struct{}{}, Options{}); err == nil {
		t.Fatal("want error")
	}
}
