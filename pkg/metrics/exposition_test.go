package metrics

import (
	"context"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	kubefake "k8s.io/client-go/kubernetes/fake"

	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
	"github.com/liatrio/gitpulse/pkg/memlimit"
)

// TestHandler_ScrapesRacingRendersGetWholeTexts: the kept text lives
// outside the Go heap and is freed by hand (exposition.go), so it must be
// freed only once no scrape is writing it. Scrapes racing renders (a new
// object aggregate before each) always get an exposition Prometheus's
// parser reads whole, in each format, and once the Service stops nothing
// is left outside the heap.
func TestHandler_ScrapesRacingRendersGetWholeTexts(t *testing.T) {
	before := memlimit.OutsideHeap()
	// OwnsProcess: each render's garbage is returned in the background too,
	// as in the function.
	svc, err := New(Options{Config: Config{Namespace: "ns"}, OwnsProcess: true,
		Clients: typedClients(kubefake.NewSimpleClientset(), gpfake.NewSimpleClientset(), "ns")})
	if err != nil {
		t.Fatal(err)
	}
	aggregate := func(n int) *objectAggregate {
		var prs []*cachedPullRequest
		for i := range n {
			p := recordedPullRequest(i)
			p.Namespace = "ns"
			o, _ := compactObject(p)
			prs = append(prs, o.(*cachedPullRequest))
		}
		return aggregateObjects(prs, nil, nil)
	}
	svc.objects.Store(aggregate(1))
	stop := make(chan struct{})
	renders := sync.WaitGroup{}
	renders.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			svc.objects.Store(aggregate(1 + i%50))
			runtime.Gosched()
		}
	})
	h := svc.Handler()
	var scrapes sync.WaitGroup
	for _, accept := range []string{"text/plain", "application/openmetrics-text;version=1.0.0", "text/plain", ""} {
		scrapes.Go(func() {
			for range 100 {
				req := httptest.NewRequest("GET", "/metrics", nil)
				req.Header.Set("Accept", accept)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					t.Errorf("Accept %q: answered %d: %s", accept, rec.Code, rec.Body)
					return
				}
				if accept != "" && accept != "text/plain" {
					continue // the text parser reads only the text format
				}
				parser := expfmt.NewTextParser(model.UTF8Validation)
				families, err := parser.TextToMetricFamilies(rec.Body)
				if err != nil {
					t.Errorf("the exposition does not parse: %v", err)
					return
				}
				if _, ok := families["gitpulse_pull_requests"]; !ok {
					t.Errorf("no gitpulse_pull_requests among %d families", len(families))
					return
				}
			}
		})
	}
	scrapes.Wait()
	close(stop)
	if n := svc.renders.Load(); n < 10 {
		t.Errorf("%d renders during 400 scrapes: the scrapes did not race renders", n)
	}
	renders.Wait()
	if err := svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := memlimit.OutsideHeap() - before; got != 0 {
		t.Errorf("after Stop, %d bytes are still kept outside the heap", got)
	}
}

// TestRenderIsLarge_FromTheLastRendersText: a render collects often and
// returns its garbage at once only when the last render's text was large,
// and the first render, which nothing predicts, is taken as large.
func TestRenderIsLarge_FromTheLastRendersText(t *testing.T) {
	tests := []struct {
		name     string
		rendered bool
		lastSize int
		want     bool
	}{
		{"the first render", false, 0, true},
		{"after a small text", true, 700 << 10, false},
		{"after a text just under the line", true, largeRenderText - 1, false},
		{"after a text at the line", true, largeRenderText, true},
		{"after 1,000 repositories' text", true, 14 << 20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := renderIsLarge(tc.rendered, tc.lastSize); got != tc.want {
				t.Errorf("renderIsLarge(%v, %d) = %v, want %v", tc.rendered, tc.lastSize, got, tc.want)
			}
		})
	}
}
