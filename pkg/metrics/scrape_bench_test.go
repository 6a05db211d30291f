package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	kubefake "k8s.io/client-go/kubernetes/fake"

	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

// scrapeRepositories is how many repositories the scrape benchmark spreads
// its objects over: test/bench's objects-100k group.
const scrapeRepositories = 1000

// scrapeView is a view of 100 objects a repository (70 pull requests, 25
// branches, 5 deployments to two environments) and six event counters
// each, over scrapeRepositories repositories.
func scrapeView(b *testing.B) *view {
	b.Helper()
	return viewOfRepositories(scrapeRepositories, 5000, func(r int) string { return fmt.Sprintf("org-%d/repo-%d", r/100, r) })
}

// viewOfRepositories is scrapeView's view over n repositories named by
// name, at most maxRepos of them admitted.
func viewOfRepositories(n, maxRepos int, name func(r int) string) *view {
	repo := func(i int) string { return name(i % n) }
	var prs []*cachedPullRequest
	var brs []*cachedBranch
	var deps []*cachedDeployment
	for i := range 70 * n {
		p := recordedPullRequest(i)
		p.Spec.Repository = repo(i)
		switch i % 7 {
		case 0:
			p.Spec.Status, p.Spec.Merged, p.Spec.MergedAt = "open", false, nil
		case 1:
			p.Spec.Merged, p.Spec.MergedAt = false, nil
		}
		o, _ := compactObject(p)
		prs = append(prs, o.(*cachedPullRequest))
	}
	for i := range 25 * n {
		br := recordedBranch(i)
		br.Spec.Repository = repo(i)
		o, _ := compactObject(br)
		brs = append(brs, o.(*cachedBranch))
	}
	for i := range 5 * n {
		d := recordedDeployment(i)
		d.Spec.Repository = repo(i)
		if i/n > 2 {
			d.Spec.Environment = "staging"
		}
		o, _ := compactObject(d)
		deps = append(deps, o.(*cachedDeployment))
	}
	counts := map[eventcount.Key]uint64{}
	for r := range n {
		for _, a := range []string{"opened", "merged", "closed"} {
			counts[eventcount.Key{Kind: kindPullRequest, Namespace: "gitpulse", Repository: repo(r), Action: a}] = 20
		}
		for _, a := range []string{"created", "pushed", "deleted"} {
			counts[eventcount.Key{Kind: kindBranch, Namespace: "gitpulse", Repository: repo(r), Action: a}] = 8
		}
	}
	v := &view{counts: counts}
	return v.admitObjects(newRepoCap(maxRepos), aggregateObjects(prs, brs, deps))
}

// BenchmarkScrape_PerRepositoryFamilies measures, part by part, what
// rendering the per-repository families costs at scrapeRepositories
// repositories (exposition.go renders it once per change): gathering them
// through the registry, encoding the text, and, for comparison, what gzip
// would add (the handler does not compress). It measures; it asserts
// nothing.
func BenchmarkScrape_PerRepositoryFamilies(b *testing.B) {
	v := scrapeView(b)
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollectorOf(repositoryFamilies(), func() *view { return v }))
	b.Run("gather", func(b *testing.B) {
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var text bytes.Buffer
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			text.Reset()
			enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(text.Len()), "bytes")
	})
	// What a render does instead of gather and encode for the text
	// formats (textwriter.go): the families' samples written as text.
	svc, err := New(Options{Config: Config{Namespace: "ns"},
		Clients: typedClients(kubefake.NewSimpleClientset(), gpfake.NewSimpleClientset(), "ns")})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("write", func(b *testing.B) {
		size := 0
		for b.Loop() {
			kept, err := svc.writeRepositoryTexts(v, textPlain)
			if err != nil {
				b.Fatal(err)
			}
			size = 0
			for _, f := range kept.families {
				size += len(f.text)
			}
			kept.release()
		}
		b.ReportMetric(float64(size), "bytes")
	})
	b.Run("gzip", func(b *testing.B) {
		for b.Loop() {
			w := gzip.NewWriter(io.Discard)
			if _, err := w.Write(text.Bytes()); err != nil {
				b.Fatal(err)
			}
			w.Close()
		}
	})
}
