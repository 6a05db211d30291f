package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// textFormats are the formats a scraper may negotiate that are written
// directly: both text formats, with and without an escaping scheme.
var textFormats = []expfmt.Format{
	expfmt.NewFormat(expfmt.TypeTextPlain),
	expfmt.NewFormat(expfmt.TypeTextPlain) + "; escaping=underscores",
	expfmt.NewFormat(expfmt.TypeTextPlain) + "; escaping=allow-utf-8",
	expfmt.NewFormat(expfmt.TypeOpenMetrics),
	expfmt.FmtOpenMetrics_0_0_1 + "; escaping=values",
}

func newTextService(t testing.TB) *Service {
	t.Helper()
	svc, err := New(Options{Config: Config{Namespace: "ns"},
		Clients: typedClients(kubefake.NewSimpleClientset(), gpfake.NewSimpleClientset(), "ns")})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// bothTexts renders v's per-repository families in format both ways:
// written directly and through the registries and expfmt's encoder.
func bothTexts(t testing.TB, svc *Service, v *view, format expfmt.Format) (direct, registry string, err error) {
	t.Helper()
	k, ok := directTextOf(format)
	if !ok {
		t.Fatalf("%s is not written directly", format)
	}
	join := func(kept *keptTexts) string {
		defer kept.release()
		var b strings.Builder
		for _, f := range kept.families {
			if !bytes.HasPrefix(f.text, []byte("# HELP "+strings.TrimSuffix(f.name, "_total"))) {
				t.Errorf("family %s kept under another name's text: %.60q", f.name, f.text)
			}
			b.Write(f.text)
		}
		return b.String()
	}
	kept, err := svc.writeRepositoryTexts(v, k)
	if err != nil {
		return "", "", err
	}
	direct = join(kept)
	kept, err = svc.gatherRepositoryTexts(v, format)
	if err != nil {
		t.Fatalf("through the registry: %v", err)
	}
	return direct, join(kept), nil
}

// strangeView has repository names and actions that need escaping or are
// not ASCII, and counts that the text format writes in exponent form.
func strangeView() *view {
	names := []string{`acme/"quoted"`, `acme\back\slash`, "acme/new\nline", "ünïcødé/répo", "acme/plain", ""}
	v := viewOfRepositories(len(names), 100, func(r int) string { return names[r] })
	v.counts = map[eventcount.Key]uint64{}
	for i, name := range names {
		v.counts[eventcount.Key{Kind: kindPullRequest, Namespace: "gitpulse", Repository: name, Action: "opened"}] = uint64(1_000_000 * (i + 1))
		v.counts[eventcount.Key{Kind: kindBranch, Namespace: "ns\"2", Repository: name, Action: "pushed\\"}] = 1 << 53
		v.counts[eventcount.Key{Kind: kindGitHubDeployment, Namespace: "gitpulse", Repository: name, Environment: "prod\nx", Action: "success"}] = uint64(i)
	}
	return v
}

// TestTextWriter_WritesWhatTheRegistryEncodes: the per-repository
// families written directly are byte for byte what gathering them through
// their registries and encoding them with expfmt made, in every text
// format, for a small fixed view, the bench's shape of view and a view of
// names that need escaping.
func TestTextWriter_WritesWhatTheRegistryEncodes(t *testing.T) {
	svc := newTextService(t)
	views := map[string]func() *view{
		"built view": builtView,
		"100 objects a repository": func() *view {
			return viewOfRepositories(40, 100, func(r int) string { return fmt.Sprintf("org-%d/repo-%d", r/10, r) })
		},
		"names that need escaping":   strangeView,
		"nothing recorded":           func() *view { return (&view{}).admitObjects(newRepoCap(10), aggregateObjects(nil, nil, nil)) },
		"more repositories than cap": func() *view { return viewOfRepositories(30, 12, func(r int) string { return fmt.Sprint("o/", r) }) },
	}
	for name, build := range views {
		for _, format := range textFormats {
			t.Run(name+"/"+string(format), func(t *testing.T) {
				direct, registry, err := bothTexts(t, svc, build(), format)
				if err != nil {
					t.Fatal(err)
				}
				if direct != registry {
					t.Errorf("direct text differs from the registry's\n%s", firstDifference(direct, registry))
				}
				if name != "nothing recorded" && len(direct) == 0 {
					t.Error("no text")
				}
			})
		}
	}
}

// firstDifference shows the line where a and b first differ.
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n direct:   %q\n registry: %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths: %d lines against %d", len(al), len(bl))
}

// TestTextWriter_NumbersAsTheEncodersFormatThem covers the special values
// one by one, in both formats.
func TestTextWriter_NumbersAsTheEncodersFormatThem(t *testing.T) {
	tests := []struct {
		value        float64
		text, openMe string
	}{
		{0, "0", "0.0"},
		{math.Copysign(0, -1), "0", "0.0"},
		{1, "1", "1.0"},
		{-1, "-1", "-1.0"},
		{2, "2", "2.0"},
		{0.25, "0.25", "0.25"},
		{1_000_000, "1e+06", "1e+06"},
		{123456, "123456", "123456.0"},
		{math.Inf(+1), "+Inf", "+Inf"},
		{math.Inf(-1), "-Inf", "-Inf"},
		{math.NaN(), "NaN", "NaN"},
	}
	for _, tt := range tests {
		if got := string(appendFloat(nil, tt.value, textPlain)); got != tt.text {
			t.Errorf("text %v: got %q, want %q", tt.value, got, tt.text)
		}
		if got := string(appendFloat(nil, tt.value, textOpenMetrics)); got != tt.openMe {
			t.Errorf("OpenMetrics %v: got %q, want %q", tt.value, got, tt.openMe)
		}
	}
}

// TestTextWriter_RefusesWhatTheRegistryRefuses: two series with the same
// labels, label values that are not UTF-8 and a sample with the wrong
// number of labels are errors, as Gather's (or, for the last two, the const
// metric's panic) would be, not text a parser stumbles on.
func TestTextWriter_RefusesWhatTheRegistryRefuses(t *testing.T) {
	f, err := textFamilyOf(family{name: "x_total", help: "h", kind: kindCounter, labels: []string{"repository", "action"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]sample{
		"duplicate series": {{labels: []string{"r", "a"}, value: 1}, {labels: []string{"r", "b"}}, {labels: []string{"r", "a"}, value: 2}},
		"not UTF-8":        {{labels: []string{"r\xff", "a"}, value: 1}},
		"too few labels":   {{labels: []string{"r"}, value: 1}},
	}
	for name, samples := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := f.appendText(nil, samples, textPlain); err == nil {
				t.Error("written")
			} else if name == "duplicate series" && !errors.Is(err, errDuplicateSeries) {
				t.Errorf("got %v", err)
			}
		})
	}
	for _, bad := range []family{
		{name: "bad-name", kind: kindGauge},
		{name: "x", kind: kindGauge, labels: []string{"le"}},
		{name: "x", kind: kindGauge, labels: []string{"répo"}},
	} {
		if _, err := textFamilyOf(bad); err == nil {
			t.Errorf("%+v prepared for direct writing", bad)
		}
	}
}

// TestTextWriter_EveryFormatTheHandlerNegotiates: only the text formats
// are written directly; the protobuf ones still go through the registry.
func TestTextWriter_EveryFormatTheHandlerNegotiates(t *testing.T) {
	for _, f := range textFormats {
		if _, ok := directTextOf(f); !ok {
			t.Errorf("%s not written directly", f)
		}
	}
	for _, f := range []expfmt.Format{expfmt.NewFormat(expfmt.TypeProtoDelim), expfmt.NewFormat(expfmt.TypeProtoText), expfmt.NewFormat(expfmt.TypeProtoCompact)} {
		if _, ok := directTextOf(f); ok {
			t.Errorf("%s written directly", f)
		}
	}
}

// FuzzFamilyText writes a view of one repository, one action and one
// environment from the fuzzer, with counts, both ways, and expects the same
// text (or, for names that are not UTF-8, an error from the direct writer;
// the registry's const metrics panic on those).
func FuzzFamilyText(f *testing.F) {
	f.Add("acme/api", "opened", "production", uint64(3), false)
	f.Add(`a"b\c`, "x\ny", "", uint64(1_000_000), true)
	f.Add("ünï", "", "é", uint64(1<<53+1), false)
	svc := newTextService(f)
	f.Fuzz(func(t *testing.T, repo, action, env string, n uint64, openMetrics bool) {
		v := viewOfRepositories(1, 10, func(int) string { return repo })
		v.counts[eventcount.Key{Kind: kindPullRequest, Namespace: "gitpulse", Repository: repo, Action: action}] = n
		v.counts[eventcount.Key{Kind: kindGitHubDeployment, Namespace: "gitpulse", Repository: repo, Environment: env, Action: action}] = n / 3
		format := textFormats[0]
		if openMetrics {
			format = textFormats[3]
		}
		if !utf8.ValidString(repo) || !utf8.ValidString(action) || !utf8.ValidString(env) {
			k, _ := directTextOf(format)
			if _, err := svc.writeRepositoryTexts(v, k); err == nil {
				t.Fatal("label values that are not UTF-8 written")
			}
			return
		}
		direct, registry, err := bothTexts(t, svc, v, format)
		if err != nil {
			if errors.Is(err, errDuplicateSeries) {
				// e.g. an action the deployment families spell out too.
				if kept, err := svc.gatherRepositoryTexts(v, format); err == nil {
					kept.release()
					t.Fatal("the registry gathered what the direct writer refused as a duplicate")
				}
				return
			}
			t.Fatal(err)
		}
		if direct != registry {
			t.Errorf("direct text differs from the registry's\n%s", firstDifference(direct, registry))
		}
	})
}

// TestHandler_EveryFormatServesTheSameSeries: a scrape in the text format
// (written directly) and one in delimited protobuf (through the
// registries) get the same series with the same values, each read back by
// expfmt's decoder. (OpenMetrics has no decoder in expfmt; its bytes are
// held to the registry's above, and test/metrics scrapes it with a real
// Prometheus.)
func TestHandler_EveryFormatServesTheSameSeries(t *testing.T) {
	svc := newTextService(t)
	var prs []*cachedPullRequest
	for i := range 30 {
		p := recordedPullRequest(i)
		p.Namespace = "ns"
		o, _ := compactObject(p)
		prs = append(prs, o.(*cachedPullRequest))
	}
	svc.objects.Store(aggregateObjects(prs, nil, nil))
	scrape := func(accept string) map[string]string {
		t.Helper()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("Accept %q: answered %d: %s", accept, rec.Code, rec.Body)
		}
		series := map[string]string{}
		dec := expfmt.NewDecoder(rec.Body, expfmt.Format(rec.Header().Get("Content-Type")))
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("Accept %q: %v", accept, err)
			}
			if !strings.HasPrefix(mf.GetName(), "gitpulse_pull_request") {
				continue // the runtime's and the process's move between scrapes
			}
			for _, m := range mf.Metric {
				key := mf.GetName() + fmt.Sprint(m.Label)
				// The +Inf bucket is the text formats' (the encoders add
				// it); a const histogram's protobuf leaves it implied.
				var buckets []string
				for _, b := range m.GetHistogram().GetBucket() {
					if !math.IsInf(b.GetUpperBound(), +1) {
						buckets = append(buckets, fmt.Sprint(b.GetUpperBound(), ":", b.GetCumulativeCount()))
					}
				}
				series[key] = fmt.Sprint(m.GetCounter().GetValue(), m.GetGauge().GetValue(),
					m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(), buckets)
			}
		}
		return series
	}
	text := scrape("text/plain;version=0.0.4")
	if len(text) < 30 {
		t.Fatalf("%d series in the text exposition", len(text))
	}
	proto := scrape("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	if !maps.Equal(text, proto) {
		t.Errorf("protobuf served %d series, text %d, or other values", len(proto), len(text))
		for k, v := range text {
			if proto[k] != v {
				t.Errorf("%s: text %s, protobuf %s", k, v, proto[k])
				break
			}
		}
	}
}

// TestTextWriter_AnEventsEnvironmentThatIsNotUTF8IsWrittenReplaced: a
// deployment Event whose environment is not UTF-8 (an Event written as
// protobuf; TestEventLister_AnEventWrittenAsProtobufIsCountedInUTF8) is
// counted under the environment with U+FFFD in place of those bytes, and
// the families render, both ways alike.
func TestTextWriter_AnEventsEnvironmentThatIsNotUTF8IsWrittenReplaced(t *testing.T) {
	svc := newTextService(t)
	ev, _ := slimEvent(&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "delivery-1", Namespace: "ns",
		Annotations: map[string]string{stablev1.AnnotationRepository: "acme/api", stablev1.AnnotationEnvironment: "prod\xff"}},
		InvolvedObject: corev1.ObjectReference{Kind: kindGitHubDeployment}, Action: stablev1.DeploymentStateSuccess})
	key, reason := classify(ev.(*cachedEvent))
	if reason != "" {
		t.Fatalf("not countable: %s", reason)
	}
	v := (&view{counts: map[eventcount.Key]uint64{key: 1}}).admitObjects(newRepoCap(10), aggregateObjects(nil, nil, nil))
	for _, format := range textFormats {
		direct, registry, err := bothTexts(t, svc, v, format)
		if err != nil {
			t.Fatal(err)
		}
		if direct != registry || !strings.Contains(direct, `environment="prod`+"\uFFFD"+`"`) {
			t.Errorf("%s:\n%s", format, direct)
		}
	}
}
