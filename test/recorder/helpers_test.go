package recorder_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"

	recorderfn "github.com/liatrio/gitpulse/functions/recorder"
	"github.com/liatrio/gitpulse/internal/functest"
	"github.com/liatrio/gitpulse/internal/ghsource"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// harness is one recorder served over HTTP by the real func-go
// (internal/functest), writing into its own namespace.
type harness struct {
	env    *testenv.Env
	ns     string
	url    string
	logs   *syncBuffer
	client cloudevents.Client
}

// serve starts fn on a loopback port for the duration of the test.
func serve(t *testing.T, env *testenv.Env, ns string, fn any, cfg map[string]string, logs *syncBuffer) *harness {
	t.Helper()
	// func-go starts the function after listening; Knative routes only
	// once it is ready, and so do the tests.
	srv := functest.CloudEvents(t, fn, cfg)
	return newHarness(t, env, ns, srv.URL, logs)
}

// newHarness sends to a recorder listening at url.
func newHarness(t *testing.T, env *testenv.Env, ns, url string, logs *syncBuffer) *harness {
	t.Helper()
	client, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	return &harness{env: env, ns: ns, url: url, logs: logs, client: client}
}

// startFunction serves the real function (functions/recorder), configured
// the way a cluster configures it: through the environment map.
func startFunction(t *testing.T, env *testenv.Env, ns string) *harness {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.ControlPlane.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{
		function.EnvKubeconfig: kubeconfig,
		function.EnvNamespace:  ns,
		function.EnvInstance:   "recorder-test-0",
		function.EnvLogLevel:   "warn",
	}
	return serve(t, env, ns, recorderfn.New(), cfg, nil)
}

// startRecorder serves a pkg/recorder Recorder in a fresh namespace with
// its logs captured, so tests can read what it logged.
func startRecorder(t *testing.T, env *testenv.Env, mutate ...func(*recorder.Options)) *harness {
	t.Helper()
	ns := env.Namespace(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := recorder.Options{
		Kube: env.Kube, Gitpulse: env.Gitpulse, Namespace: ns, Instance: "recorder-test-0", Logger: log,
	}
	for _, m := range mutate {
		m(&opts)
	}
	rec, err := recorder.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Served through the function's own Handle, so answers and refusal
	// logs are the function's (function.Answer).
	return serve(t, env, ns, recorderfn.NewStarted(rec, log), map[string]string{}, logs)
}

// How an event reaches the recorder: its data's shape and its HTTP mode.
// The plain modes carry the GitHubSource adapter's shape (what a cluster
// delivers, internal/ghsource); the raw- ones carry GitHub's body as is
// (githubevent.NewRawCloudEvent).
type mode string

const (
	binary        mode = "binary"
	structured    mode = "structured"
	base64Mode    mode = "structured-data_base64"
	rawBinary     mode = "raw-binary"
	rawStructured mode = "raw-structured"
	rawBase64     mode = "raw-structured-data_base64"
)

// modes are the adapter-shaped modes; rawModes the same with GitHub's shape.
var (
	modes    = []mode{binary, structured, base64Mode}
	rawModes = []mode{rawBinary, rawStructured, rawBase64}
	// shapes lists both, for tests that replay every payload in each.
	shapes = map[string][]mode{"adapter": modes, "raw": rawModes}
)

func (m mode) raw() bool { return strings.HasPrefix(string(m), "raw-") }

// encoding is the HTTP mode alone.
func (m mode) encoding() mode { return mode(strings.TrimPrefix(string(m), "raw-")) }

// event shapes payload as m says.
func (m mode) event(t *testing.T, eventType, deliveryID string, payload []byte) event.Event {
	t.Helper()
	if m.raw() {
		return rawEvent(t, eventType, deliveryID, payload)
	}
	return adapterEvent(t, eventType, deliveryID, payload)
}

// send delivers e and returns the HTTP status code the recorder answered.
func (h *harness) send(t *testing.T, m mode, e event.Event) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if m.encoding() == base64Mode {
		return h.sendBase64(t, ctx, e)
	}
	ctx = cloudevents.ContextWithTarget(ctx, h.url)
	if m.encoding() == structured {
		ctx = binding.WithForceStructured(ctx)
	}
	res := h.client.Send(ctx, e)
	var httpResult *cehttp.Result
	if !cloudevents.ResultAs(res, &httpResult) {
		t.Fatalf("sending %s: %v", e.ID(), res)
	}
	return httpResult.StatusCode
}

// sendBase64 posts a structured event whose data is data_base64, as some
// senders (and the spec) allow.
func (h *harness) sendBase64(t *testing.T, ctx context.Context, e event.Event) int {
	t.Helper()
	body := map[string]any{
		"specversion": "1.0", "id": e.ID(), "type": e.Type(), "source": e.Source(),
		"datacontenttype": e.DataContentType(), "data_base64": base64.StdEncoding.EncodeToString(e.Data()),
	}
	if e.Subject() != "" {
		body["subject"] = e.Subject()
	}
	if !e.Time().IsZero() {
		body["time"] = e.Time().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sending %s: %v", e.ID(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// deliver builds the GitHubSource adapter's CloudEvent for payload, sends
// it and fails the test unless the answer is want.
func (h *harness) deliver(t *testing.T, m mode, eventType, deliveryID string, payload []byte, want int) event.Event {
	t.Helper()
	e := m.event(t, eventType, deliveryID, payload)
	if got := h.send(t, m, e); got != want {
		t.Fatalf("%s %s (%s): answered %d, want %d\nlogs:\n%s", eventType, deliveryID, m, got, want, h.logs)
	}
	return e
}

// adapterEvent is the CloudEvent the GitHubSource adapter sends for this
// webhook delivery (its send time included).
func adapterEvent(t *testing.T, eventType, deliveryID string, payload []byte) event.Event {
	t.Helper()
	e, err := ghsource.FromWebhook("", eventType, deliveryID, payload)
	if err != nil {
		t.Fatalf("the GitHubSource adapter would refuse this %s delivery: %v", eventType, err)
	}
	return e
}

// rawEvent carries GitHub's body as is, with the adapter's attributes.
func rawEvent(t *testing.T, eventType, deliveryID string, payload []byte) event.Event {
	t.Helper()
	e, err := githubevent.NewRawCloudEvent(eventType, deliveryID, payload)
	if err != nil {
		t.Fatal(err)
	}
	e.SetTime(time.Now())
	return e
}

func (h *harness) events(t *testing.T) []corev1.Event {
	t.Helper()
	list, err := h.env.Kube.CoreV1().Events(h.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// describeEvents lists Events one per line, for failure messages.
func describeEvents(evs []corev1.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s: %s %s/%s reason %s by %q/%q: %s", e.Name, e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name,
			e.Reason, e.ReportingController, e.Source.Component, e.Message)
	}
	return b.String()
}

func (h *harness) event(t *testing.T, name string) *corev1.Event {
	t.Helper()
	ev, err := h.env.Kube.CoreV1().Events(h.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("event %s: %v", name, err)
	}
	return ev
}

// newDeliveryID makes an X-GitHub-Delivery style GUID.
func newDeliveryID(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payload is a decoded webhook payload, read with dotted paths, so that
// assertions do not reuse the go-github decoding under test.
type payload map[string]any

func decode(t testing.TB, b []byte) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p payload) get(path string) any {
	var cur any = map[string]any(p)
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func (p payload) str(path string) string {
	s, _ := p.get(path).(string)
	return s
}

func (p payload) boolean(path string) bool {
	b, _ := p.get(path).(bool)
	return b
}

func (p payload) number(path string) int64 {
	f, _ := p.get(path).(float64)
	return int64(f)
}

// time reads an ISO timestamp or a Unix time (GitHub uses both) as UTC
// RFC 3339, "" when absent.
func (p payload) time(t testing.TB, path string) string {
	t.Helper()
	switch v := p.get(path).(type) {
	case string:
		tm, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return tm.UTC().Format(time.RFC3339)
	case float64:
		return time.Unix(int64(v), 0).UTC().Format(time.RFC3339)
	}
	return ""
}

func fmtTime(mt *metav1.Time) string {
	if mt == nil {
		return ""
	}
	return mt.UTC().Format(time.RFC3339)
}

// syncBuffer collects logs written from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	if b == nil {
		return "(not captured)"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mismatch collects field-by-field differences for one report.
type mismatch struct{ lines []string }

func (m *mismatch) eq(field string, got, want any) {
	if fmt.Sprint(got) != fmt.Sprint(want) {
		m.lines = append(m.lines, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

func (m *mismatch) report(t *testing.T, what string) {
	t.Helper()
	if len(m.lines) > 0 {
		t.Errorf("%s:\n  %s", what, strings.Join(m.lines, "\n  "))
	}
}

// lean checks that an object carries no labels (spec.repository is a
// selectable field) and no annotations: the recorder's bookkeeping is in
// its status (docs/benchmarks.md, "A lean object" and "The bookkeeping in
// the status").
func (m *mismatch) lean(obj *metav1.ObjectMeta) {
	if len(obj.Labels) > 0 {
		m.lines = append(m.lines, fmt.Sprintf("labels %v, want none", obj.Labels))
	}
	if len(obj.Annotations) > 0 {
		m.lines = append(m.lines, fmt.Sprintf("annotations %v, want none (the bookkeeping is in the status)", obj.Annotations))
	}
	// A create's managed fields (an update clears them) name spec and
	// status whole: both are atomic.
	for _, e := range obj.ManagedFields {
		if e.FieldsV1 != nil && string(e.FieldsV1.Raw) != `{"f:spec":{},"f:status":{}}` {
			m.lines = append(m.lines, fmt.Sprintf("managed fields %s by %s, want spec and status whole", e.FieldsV1.Raw, e.Manager))
		}
	}
}

// specRepository is spec.repository of the object an Event is about.
func (h *harness) specRepository(t *testing.T, kind, name string) string {
	t.Helper()
	ctx, c := context.Background(), h.env.Gitpulse.StableV1()
	var (
		repo string
		err  error
	)
	switch kind {
	case stablev1.KindPullRequest:
		var o *stablev1.PullRequest
		if o, err = c.PullRequests(h.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			repo = o.Spec.Repository
		}
	case stablev1.KindBranch:
		var o *stablev1.Branch
		if o, err = c.Branches(h.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			repo = o.Spec.Repository
		}
	case stablev1.KindGitHubDeployment:
		var o *stablev1.GitHubDeployment
		if o, err = c.GitHubDeployments(h.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			repo = o.Spec.Repository
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// findPullRequest, findBranch and findDeployment find the one object of a
// pull request, branch or deployment by its spec (the CRDs' selectable
// fields) rather than by a name: a name hashes the repository's GitHub id
// when the delivery carries one, and keeps the prefix it was created with
// after a rename, so the spec is what a test knows. None is a NotFound
// error; more than one is an error too (one object per identity).
func findPullRequest(h *harness, repo string, number int64) (*stablev1.PullRequest, error) {
	l, err := h.env.Gitpulse.StableV1().PullRequests(h.ns).List(context.Background(),
		metav1.ListOptions{FieldSelector: specSelector(repo, "spec.number", strconv.FormatInt(number, 10))})
	if err != nil {
		return nil, err
	}
	return one(l.Items, "pullrequests", fmt.Sprintf("%s#%d", repo, number))
}

func findBranch(h *harness, repo, branch string) (*stablev1.Branch, error) {
	l, err := h.env.Gitpulse.StableV1().Branches(h.ns).List(context.Background(),
		metav1.ListOptions{FieldSelector: specSelector(repo, "spec.name", branch)})
	if err != nil {
		return nil, err
	}
	return one(l.Items, "branches", repo+" "+branch)
}

func findDeployment(h *harness, repo string, id int64) (*stablev1.GitHubDeployment, error) {
	l, err := h.env.Gitpulse.StableV1().GitHubDeployments(h.ns).List(context.Background(),
		metav1.ListOptions{FieldSelector: specSelector(repo, "spec.deploymentID", strconv.FormatInt(id, 10))})
	if err != nil {
		return nil, err
	}
	return one(l.Items, "githubdeployments", fmt.Sprintf("%s/%d", repo, id))
}

func specSelector(repo, keyField, key string) string {
	return fields.AndSelectors(fields.OneTermEqualSelector("spec.repository", repo), fields.OneTermEqualSelector(keyField, key)).String()
}

func one[E any](items []E, resource, what string) (*E, error) {
	switch len(items) {
	case 0:
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: stablev1.GroupName, Resource: resource}, what)
	case 1:
		return &items[0], nil
	}
	return nil, fmt.Errorf("%d %s of %s, want one", len(items), resource, what)
}
