package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/function"
	"github.com/liatrio/gitpulse/pkg/metrics"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// startService starts a metrics Service on ns and waits until it is ready.
// Stopping is the test's business (tests restart it on purpose), but a
// cleanup makes sure nothing keeps running.
func startService(t *testing.T, cfg *rest.Config, c metrics.Config) *metrics.Service {
	t.Helper()
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 200 * time.Millisecond
	}
	clients, err := metrics.NewClients(cfg, c.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := metrics.New(metrics.Options{Config: c, Clients: clients, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
	})
	if err := svc.WaitReady(ctx); err != nil {
		t.Fatalf("metrics service not ready: %v", err)
	}
	return svc
}

// handlerOf is what the metrics function serves for svc.
func handlerOf(svc *metrics.Service) http.Handler {
	return function.MetricsHandler(svc.Handler(), svc.Ready, svc.Alive)
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// eventSpec is one recorder Event to create.
type eventSpec struct {
	delivery   string
	kind       string // PullRequest, Branch or GitHubDeployment
	repository string // "" leaves the annotation out
	action     string
	controller string // default: the recorder's
	// environment, for GitHubDeployment Events, is the
	// stable.liatr.io/environment annotation.
	environment string
}

// createEvent writes an Event the way the recorder does (see
// pkg/apis/stable/v1/well_known.go).
func createEvent(ctx context.Context, kube kubernetes.Interface, ns string, e eventSpec) (*corev1.Event, error) {
	controller := e.controller
	if controller == "" {
		controller = stablev1.ReportingController
	}
	ann := map[string]string{stablev1.AnnotationDeliveryID: e.delivery}
	if e.repository != "" {
		ann[stablev1.AnnotationRepository] = e.repository
	}
	if e.environment != "" {
		ann[stablev1.AnnotationEnvironment] = e.environment
	}
	objName := "object-" + strings.ToLower(e.kind)
	if e.repository != "" {
		objName = naming.PullRequestName(e.repository, 0, 1)
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: naming.EventName(e.delivery), Namespace: ns, Annotations: ann},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: stablev1.SchemeGroupVersion.String(), Kind: e.kind, Namespace: ns, Name: objName,
		},
		Reason:              "Test" + e.kind,
		Message:             fmt.Sprintf("delivery %s", e.delivery),
		Type:                corev1.EventTypeNormal,
		Action:              e.action,
		ReportingController: controller,
		ReportingInstance:   "recorder-test",
		Source:              corev1.EventSource{Component: stablev1.SourceComponent},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		EventTime:           metav1.NewMicroTime(now.Time),
		Count:               1,
	}
	return kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{})
}

func mustCreateEvents(t *testing.T, kube kubernetes.Interface, ns string, events ...eventSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range events {
		if _, err := createEvent(ctx, kube, ns, e); err != nil {
			t.Fatalf("creating Event %s: %v", e.delivery, err)
		}
	}
}

// scrape GETs /metrics from h and returns the body; the text is also parsed
// by Prometheus' own parser, so every scrape in these tests validates it.
func scrape(t *testing.T, h http.Handler) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, function.MetricsPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body.String())
	}
	body := rec.Body.String()
	return body, parse(t, body)
}

func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

// counterSum sums a family's samples whose labels include match.
func counterSum(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.Metric {
		for k, v := range match {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

// countsByAction is a family's values by action label in namespace ns.
func countsByAction(fams map[string]*dto.MetricFamily, name, ns string) map[string]float64 {
	out := map[string]float64{}
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns {
				out[labels["action"]] += m.Counter.GetValue()
			}
		}
	}
	return out
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, msg := cond()
		last = msg
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached within %s; last: %s", what, timeout, last)
	}
}

// familyText extracts from an exposition the lines of the named families
// (HELP, TYPE and samples, histogram series included), in order.
func familyText(body string, names []string) string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		name := ""
		switch {
		case strings.HasPrefix(line, "# HELP "), strings.HasPrefix(line, "# TYPE "):
			name = strings.Fields(line)[2]
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		default:
			name = line[:strings.IndexAny(line, "{ ")]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && want[base] {
					name = base
				}
			}
		}
		if want[name] {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// goldenFamilies lists the families (# TYPE lines) of a golden file.
func goldenFamilies(golden string) []string {
	var names []string
	for _, line := range strings.Split(golden, "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			names = append(names, strings.Fields(line)[2])
		}
	}
	sort.Strings(names)
	return names
}

// prometheusBin finds the directory with Debian's prometheus and promtool:
// $GITPULSE_PROMETHEUS_BIN, else <module root>/.cache/prometheus/usr/bin
// (`make prometheus` unpacks it there). Missing is a failure, not a skip:
// `make test` installs it.
func prometheusBin(t *testing.T, root string) string {
	t.Helper()
	dir := os.Getenv("GITPULSE_PROMETHEUS_BIN")
	if dir == "" {
		dir = filepath.Join(root, ".cache", "prometheus", "usr", "bin")
	}
	for _, b := range []string{"prometheus", "promtool"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s not found in %s (set GITPULSE_PROMETHEUS_BIN or run `make prometheus`): %v", b, dir, err)
		}
	}
	return dir
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
