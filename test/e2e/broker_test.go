package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/eventingstack"
	"github.com/liatrio/gitpulse/internal/freeport"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/localrun"
	"github.com/liatrio/gitpulse/internal/proc"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// observer sits between the Broker and a real recorder (the Broker's
// address for the recorder's Service is routed to it) and notes each
// attempt's time and the recorder's answer.
type observer struct {
	lis net.Listener
	mu  sync.Mutex
	log map[string][]attempt
}

type attempt struct {
	at   time.Time
	code int
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func startObserver(t *testing.T, target string) *observer {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	o := &observer{log: map[string][]attempt{}}
	var err error
	if o.lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, cw := time.Now(), &codeWriter{ResponseWriter: w, code: http.StatusOK}
		rp.ServeHTTP(cw, r)
		o.mu.Lock()
		id := r.Header.Get("Ce-Id")
		o.log[id] = append(o.log[id], attempt{at, cw.code})
		o.mu.Unlock()
	})}
	go srv.Serve(o.lis)
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *observer) port() int { return o.lis.Addr().(*net.TCPAddr).Port }

func (o *observer) attempts(id string) []attempt {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]attempt(nil), o.log[id]...)
}

// startFailingRecorder runs a second, real recorder that writes into a
// namespace that does not exist: every delivery it accepts fails on the
// API server side, and it answers 500 (README, "Answer codes").
func startFailingRecorder(t *testing.T, s *localrun.Stack) string {
	t.Helper()
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "failing-recorder.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	env := append(s.FunctionEnv(port), "GITPULSE_NAMESPACE=no-such-namespace")
	p, err := localrun.StartProcess(filepath.Join(s.BinDir(), "gitpulse-recorder"), env, logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); logf.Close() })
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatalf("failing recorder did not start\n%s", proc.Tail(logPath, 2000))
		}
	}
}

// postCloudEvent sends a delivery to a Broker as the GitHubSource adapter
// does (binary mode, type dev.knative.source.github.<event>, id = the
// delivery id) and returns the ingress's answer.
func postCloudEvent(t *testing.T, brokerURL string, d ghwebhook.Delivery) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, brokerURL, bytes.NewReader(d.Body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", d.ID)
	req.Header.Set("Ce-Type", "dev.knative.source.github."+d.Event)
	req.Header.Set("Ce-Source", "https://github.com/e2e/broker")
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBroker_FailingRecorder_ConfigDeliverySpecAppliesByKnative puts a real
// recorder that cannot write behind a Broker and Triggers made from
// config/eventing/broker.yaml and func.yaml. A delivery it answers 500 is
// retried exactly as the file's delivery spec says (count and backoff) and
// then dead-lettered with knativeerrorcode 500; a delivery it refuses with
// 400 goes to the dead-letter sink at once, never retried.
func TestBroker_FailingRecorder_ConfigDeliverySpecAppliesByKnative(t *testing.T) {
	s := stack(t)
	spec, err := eventingstack.ReadDelivery(filepath.Join(s.Root(), "config", "eventing", "broker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obs := startObserver(t, startFailingRecorder(t, s))
	dl, err := eventingstack.StartDeadLetter(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() }) // after the parallel subtests
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := s.Eventing().Deploy(ctx, eventingstack.DeployOptions{
		Namespace:      "e2e-failing-recorder",
		BrokerFile:     filepath.Join(s.Root(), "config", "eventing", "broker.yaml"),
		DeadLetterFile: filepath.Join(s.Root(), "config", "eventing", "dead-letter.yaml"),
		DeadLetterPort: dl.Port(),
		FuncYAML:       filepath.Join(s.Root(), "func.yaml"),
		FunctionPort:   obs.port(),
	})
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC()
	valid := ghwebhook.Delivery{Event: "create", ID: "e2e-recorder-500",
		Body: ghwebhook.Ref{Repo: "e2e/broker", Ref: "feature", Sender: "u", At: now}.CreatePayload()}
	pr := ghwebhook.PullRequest{Repo: "e2e/broker", Number: 1, Action: "opened", User: "u", Head: "h", CreatedAt: now, UpdatedAt: now}.Payload()
	mismatched := ghwebhook.Delivery{Event: "push", ID: "e2e-recorder-400", Body: pr}

	t.Run("5xx is retried per config/ then dead-lettered", func(t *testing.T) {
		t.Parallel()
		if code := postCloudEvent(t, r.BrokerURL, valid); code != http.StatusAccepted {
			t.Fatalf("ingress answered %d, want 202", code)
		}
		as := obs.attempts(valid.ID)
		if len(as) != 1+spec.Retry {
			t.Fatalf("recorder saw %d attempts, want 1 + retry (%d)", len(as), spec.Retry)
		}
		for i, a := range as {
			if a.code != http.StatusInternalServerError {
				t.Errorf("attempt %d answered %d, want 500 (namespace missing)", i+1, a.code)
			}
			if i == 0 {
				continue
			}
			gap, want := a.at.Sub(as[i-1].at), spec.Delay(i-1)
			t.Logf("retry %d after %s (config: %s)", i, gap.Round(time.Millisecond), want)
			if gap < want*9/10 || gap > want+1500*time.Millisecond {
				t.Errorf("retry %d came %s after the previous attempt, want %s", i, gap, want)
			}
		}
		assertDeadLettered(t, dl, valid.ID, "500", "http://"+r.FunctionHost)
	})
	t.Run("4xx goes to the dead-letter sink at once", func(t *testing.T) {
		t.Parallel()
		if code := postCloudEvent(t, r.BrokerURL, mismatched); code != http.StatusAccepted {
			t.Fatalf("ingress answered %d, want 202", code)
		}
		as := obs.attempts(mismatched.ID)
		if len(as) != 1 || as[0].code != http.StatusBadRequest {
			t.Fatalf("recorder saw %v, want one attempt answered 400", as)
		}
		assertDeadLettered(t, dl, mismatched.ID, "400", "http://"+r.FunctionHost)
	})
}

func assertDeadLettered(t *testing.T, dl *eventingstack.DeadLetter, id, code, dest string) {
	t.Helper()
	var got []eventingstack.DeadLetterEvent
	for _, d := range dl.Events() {
		if d.ID == id {
			got = append(got, d)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%s dead-lettered %d times, want once", id, len(got))
	}
	if got[0].ErrorCode != code || got[0].ErrorDest != dest {
		t.Errorf("%s dead-lettered with knativeerrorcode %q knativeerrordest %q, want %s, %s", id, got[0].ErrorCode, got[0].ErrorDest, code, dest)
	}
}

// TestBroker_RecorderDown_DeliveredOnceItIsBack kills the recorder, sends a
// signed webhook through the receive adapter, and brings the recorder back 1.5 s
// later: the Broker's retries (config/'s backoff) deliver it, the adapter
// answers 202, the branch exists with one Event, and nothing is
// dead-lettered.
func TestBroker_RecorderDown_DeliveredOnceItIsBack(t *testing.T) {
	s := stack(t)
	ctx := context.Background()
	d := ghwebhook.Delivery{Event: "create", ID: fmt.Sprintf("e2e-down-%d", time.Now().UnixNano()),
		Body: ghwebhook.Ref{Repo: "e2e/down", Ref: "comeback", Sender: "u", At: time.Now().UTC()}.CreatePayload()}

	s.KillRecorder()
	answered := make(chan int, 1)
	go func() {
		// Once, as GitHub does: the Broker retries, not the sender.
		req, err := ghwebhook.Request(ctx, s.WebhookURL(), []byte(s.Secret()), d)
		if err == nil {
			var resp *http.Response
			if resp, err = (&http.Client{Timeout: 2 * time.Minute}).Do(req); err == nil {
				resp.Body.Close()
				answered <- resp.StatusCode
				return
			}
		}
		t.Errorf("sending: %v", err)
		answered <- 0
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := s.StartRecorder(ctx); err != nil {
		t.Fatal(err)
	}
	if code := <-answered; code != http.StatusAccepted {
		t.Fatalf("the receive adapter answered %d, want 202", code)
	}
	br, err := versioned.NewForConfigOrDie(s.ControlPlane.Config()).StableV1().Branches(s.Namespace()).Get(ctx, naming.BranchName("e2e/down", ghwebhook.Repo("e2e/down").ID(), "comeback"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("branch not recorded: %v", err)
	}
	if br.Spec.State != "created" {
		t.Errorf("branch state %q", br.Spec.State)
	}
	if _, err := s.Kube.CoreV1().Events(s.Namespace()).Get(ctx, "delivery-"+d.ID, metav1.GetOptions{}); err != nil {
		t.Errorf("Event for the delivery: %v", err)
	}
	for _, e := range s.DeadLetter().Events() {
		if e.ID == d.ID {
			t.Errorf("dead-lettered (knativeerrorcode %s) although the recorder came back within the retries", e.ErrorCode)
		}
	}
}

// TestMakeRun_TheIntakeSendsIntoTheBroker: what `make run` writes to
// .cache/run/env names the Broker's ingress, and that Broker and its Triggers
// are the ones made from config/eventing/broker.yaml and func.yaml.
func TestMakeRun_TheIntakeSendsIntoTheBroker(t *testing.T) {
	s := stack(t)
	envFile := filepath.Join(t.TempDir(), "env")
	if err := s.WriteEnv(envFile); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "GITPULSE_BROKER_URL=" + s.BrokerURL() + "\n"
	if s.BrokerURL() == "" || !bytes.Contains(b, []byte(want)) {
		t.Fatalf("env file lacks %q:\n%s", want, b)
	}
	r := s.Routing()
	// Eight GitHub types and two reconcile triggers.
	if r.Namespace != s.Namespace() || r.Broker != "default" || len(r.Triggers) != 10 {
		t.Errorf("routing %+v, want Broker default in %s with func.yaml's 10 Triggers", r, s.Namespace())
	}
}
