package funcrunner

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	if err := s.WaitStarted(context.Background()); err != nil {
		t.Fatal(err)
	}
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

// TestCloudEventMode_AnswersAsFuncGo: the codes and bodies are sdk-go's
// NewHTTPReceiveHandler's, which is what func-go serves in a cluster.
func TestCloudEventMode_AnswersAsFuncGo(t *testing.T) {
	ce := map[string]string{
		"Ce-Specversion": "1.0", "Ce-Id": "d-1", "Ce-Type": "t", "Ce-Source": "s", "Content-Type": "application/json",
	}
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	tests := []struct {
		name   string
		answer error
		header map[string]string
		body   string
		want   int
		text   string
	}{
		{"handler 4xx result: its code and text", cehttp.NewResult(http.StatusBadRequest, "payload is %s", "broken"), ce, `{}`, 400, "payload is broken"},
		{"handler plain error: 500, empty body", errors.New("apiserver down"), ce, `{}`, 500, ""},
		{"no CloudEvent at all: 415", nil, map[string]string{"Content-Type": "text/plain"}, `hi`, 415, ""},
		{"broken structured JSON: 500", nil, structured, `{"specversion":`, 500, ""},
		{"structured without id: 400", nil, structured, `{"specversion":"1.0","type":"t","source":"s"}`, 400, "id"},
		{"binary without source: 400", nil, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "d-1", "Ce-Type": "t"}, `{}`, 400, "source"},
		{"invalid ce-time: 500", nil, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "d-1", "Ce-Type": "t", "Ce-Source": "s", "Ce-Time": "yesterday"}, `{}`, 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, &echoFunction{answer: tt.answer}, Options{})
			code, body := post(t, s.URL(), tt.header, tt.body)
			if code != tt.want || !strings.Contains(body, tt.text) || (tt.text == "" && code == 500 && body != "") {
				t.Fatalf("got %d %q, want %d containing %q", code, body, tt.want, tt.text)
			}
		})
	}
}

func TestHealthAndLifecycle(t *testing.T) {
	fn := &echoFunction{}
	s := start(t, fn, Options{})
	for path, want := range map[string]string{ReadinessPath: "READY", LivenessPath: "ALIVE"} {
		code, body := get(t, s.URL()+path)
		if code != http.StatusOK || body != want {
			t.Fatalf("%s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	if code, _ := get(t, s.URL()+"/"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET / = %d, want 405", code)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !fn.stopped.Load() {
		t.Fatal("Stop not called on shutdown")
	}
}

// slowStart is a function whose Start blocks until released.
type slowStart struct {
	echoFunction
	release chan struct{}
	fail    error
}

func (f *slowStart) Start(ctx context.Context, cfg map[string]string) error {
	<-f.release
	if f.fail != nil {
		return f.fail
	}
	return f.echoFunction.Start(ctx, cfg)
}

func TestStart_ListensFirstThenStartsTheFunction(t *testing.T) {
	fn := &slowStart{release: make(chan struct{})}
	s, err := New(fn, Options{Config: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	// Listening while Start still runs: readiness says so, as func-go's does.
	if code, body := get(t, s.URL()+ReadinessPath); code != http.StatusServiceUnavailable || body != "function not yet ready\n" {
		t.Fatalf("readiness while starting: %d %q", code, body)
	}
	close(fn.release)
	if err := s.WaitStarted(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, s.URL()+ReadinessPath); code != http.StatusOK {
		t.Fatalf("readiness after Start: %d", code)
	}
}

func TestStart_AFailedStartIsReported(t *testing.T) {
	fn := &slowStart{release: make(chan struct{}), fail: errors.New("no kubeconfig")}
	close(fn.release)
	s, err := New(fn, Options{Config: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if err := <-s.Failed(); err == nil || !strings.Contains(err.Error(), "no kubeconfig") {
		t.Fatalf("Failed() = %v", err)
	}
}

type probeFunction struct {
	httpFunction
	ready, alive bool
	err          error
}

func (f probeFunction) Ready(context.Context) (bool, error) { return f.ready, f.err }
func (f probeFunction) Alive(context.Context) (bool, error) { return f.alive, f.err }

func TestHealth_CodesAndBodiesAreFuncGos(t *testing.T) {
	tests := []struct {
		name                 string
		fn                   probeFunction
		readyCode, aliveCode int
		readyBody, aliveBody string
	}{
		{"not ready, not alive", probeFunction{}, 503, 503, "function not yet ready\n", "function not alive"},
		{"error", probeFunction{err: errors.New("boom")}, 500, 500, "error checking readiness: boom", "error checking liveness: boom"},
		{"ready and alive", probeFunction{ready: true, alive: true}, 200, 200, "READY", "ALIVE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.fn, Options{})
			if code, body := get(t, s.URL()+ReadinessPath); code != tt.readyCode || body != tt.readyBody {
				t.Errorf("readiness %d %q, want %d %q", code, body, tt.readyCode, tt.readyBody)
			}
			if code, body := get(t, s.URL()+LivenessPath); code != tt.aliveCode || body != tt.aliveBody {
				t.Errorf("liveness %d %q, want %d %q", code, body, tt.aliveCode, tt.aliveBody)
			}
		})
	}
}

func TestServer_HasFuncGosTimeouts(t *testing.T) {
	s := start(t, httpFunction{}, Options{})
	if s.srv.ReadTimeout != 30*time.Second || s.srv.WriteTimeout != 30*time.Second || s.srv.IdleTimeout != 30*time.Second ||
		s.srv.ReadHeaderTimeout != 2*time.Second || s.srv.MaxHeaderBytes != 1<<20 {
		t.Fatalf("server settings %+v", s.srv)
	}
}

func TestConfig_ReadsCfgFileThenEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("cfg", []byte("A = \"from file\"\nB=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("B", "env")
	cfg, err := Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["A"] != "from file" || cfg["B"] != "env" {
		t.Fatalf("A=%q B=%q", cfg["A"], cfg["B"])
	}
	if err := os.WriteFile("cfg", []byte("no equals sign\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Config(); err == nil {
		t.Fatal("invalid cfg line accepted")
	}
}

func TestListenAddress_FollowsFuncGo(t *testing.T) {
	tests := []struct{ listen, address, port, want string }{
		{"", "", "", "[::]:8080"},
		{"127.0.0.1:9", "", "", "127.0.0.1:9"},
		{"", "", "9090", "127.0.0.1:9090"},
		{"", "0.0.0.0", "", "0.0.0.0:8080"},
	}
	for _, tt := range tests {
		t.Setenv("LISTEN_ADDRESS", tt.listen)
		t.Setenv("ADDRESS", tt.address)
		t.Setenv("PORT", tt.port)
		if got := ListenAddress(); got != tt.want {
			t.Errorf("LISTEN_ADDRESS=%q ADDRESS=%q PORT=%q: %q, want %q", tt.listen, tt.address, tt.port, got, tt.want)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
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
