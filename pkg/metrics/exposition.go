package metrics

// /metrics in two parts. The per-repository families (the event counters,
// the object-derived and DORA families: about 120 series a repository, some
// 14 MB of text at 1,000 repositories of 100 objects) are rendered once per change and the
// text kept; the rest — the function's self metrics, the reconcile cursors
// (their ages move with the clock), the Go runtime's and the process's — is
// small and gathered on every scrape. Gathering and encoding the first part
// took a few hundred milliseconds of CPU and allocated some 70 MB at 1,000
// repositories (kube-state-metrics renders at watch time, not at scrape
// time, for the same reason); serving kept text takes a copy. In the text
// formats a render writes the families' text itself (textwriter.go, ~44 ms
// and 9 MB at 1,000 repositories against ~120 ms and 36 MB through the
// registry); the protobuf formats still go through their registries.
//
// What the first part reads is the counts, the newest object aggregate and
// the repository cap (which repositories fold into "other"). A scrape
// compares them with what the kept text was rendered from: the counts by
// value (a few thousand entries), the aggregate by identity (it is
// immutable and replaced on every change), the cap by its generation. So a
// scrape after a change renders (and sees it), a scrape after none copies.
//
// The kept text lives outside the Go heap (pkg/offheap): on it, the collector
// let half its size again in garbage wait beside it (GOGC 50), and a
// replaced text's pages went back to the system only as the scavenger got to
// them. A render's texts are freed when the exposition has moved on and the
// last scrape writing them is done (keptTexts' references).
//
// The text is not compressed: a scrape that asks for gzip gets identity,
// which HTTP allows. Compressing 14 MB costs more CPU per scrape than the
// render it saves (kube-state-metrics ships with compression off for the same
// reason).

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/liatrio/gitpulse/pkg/eventcount"
	"github.com/liatrio/gitpulse/pkg/offheap"
)

// repositoryFamilies are the families rendered once per change.
func repositoryFamilies() []family {
	return append(append(eventFamilies(), objectFamilies()...), doraFamilies()...)
}

// scrapeFamilies are the families gathered on every scrape.
func scrapeFamilies() []family {
	return append(selfFamilies(), reconcileFamilies()...)
}

// renderInputs is what the per-repository families were rendered from.
type renderInputs struct {
	counts  map[eventcount.Key]uint64
	objects *objectAggregate
	capGen  uint64
}

func (a renderInputs) same(b renderInputs) bool {
	return a.objects == b.objects && a.capGen == b.capGen && maps.Equal(a.counts, b.counts)
}

// exposition keeps the per-repository families' text, per format.
type exposition struct {
	mu     sync.Mutex
	inputs renderInputs
	// texts hold one reference each to their keptTexts.
	texts map[expfmt.Format]*keptTexts
	// rendering is the view the repository collector reads while a render
	// runs.
	rendering atomic.Pointer[view]
	// rendered: a render has been made; lastSize is its text's size, what
	// the next one's is expected to be (renderIsLarge).
	rendered bool
	lastSize int
}

// largeRenderText is the size of text from which a render's garbage (about
// twice the text) is worth collecting often and returning to the system at
// once: ~150 repositories' families (14 MB at 1,000). Below it, both cost
// more than they save: the bench's end-to-end group scrapes 20 times a second
// at 50 repositories, where a forced collection after each render took the
// function's CPU per delivery from ~1.7 ms to 1.9-2.6 (docs/benchmarks.md).
const largeRenderText = 2 << 20

// renderIsLarge says whether a render is to be treated as large, from the
// last render's text: the first is, as nothing says otherwise (it is the one
// that sets the process's peak after a start at 100k objects).
func renderIsLarge(rendered bool, lastSize int) bool {
	return !rendered || lastSize >= largeRenderText
}

// familyText is one family's text, kept apart so that a scrape can serve
// every family in name order, as promhttp does, the kept ones among the
// gathered ones.
type familyText struct {
	name string
	text []byte
}

// keptTexts are one render's families in one format, their text outside the
// Go heap. Whoever holds them holds a reference (the exposition while they
// are current, each scrape writing them); the last release frees the text.
type keptTexts struct {
	families []familyText
	refs     atomic.Int32
}

func (k *keptTexts) acquire() *keptTexts {
	k.refs.Add(1)
	return k
}

func (k *keptTexts) release() {
	if k.refs.Add(-1) != 0 {
		return
	}
	for _, f := range k.families {
		_ = offheap.Free(f.text)
	}
	k.families = nil
}

// keepText copies text outside the Go heap.
func keepText(text []byte) ([]byte, error) {
	kept, err := offheap.Alloc(len(text))
	if err != nil {
		return nil, fmt.Errorf("keeping %d bytes of text: %w", len(text), err)
	}
	copy(kept, text)
	return kept, nil
}

// release gives the exposition's texts back (Service.Stop); a scrape after
// it renders them again.
func (e *exposition) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drop()
}

// drop releases the exposition's texts (when what they were rendered from
// changed); e.mu is held.
func (e *exposition) drop() {
	for _, k := range e.texts {
		k.release()
	}
	e.texts = nil
}

// repositoryView is the view the per-repository collector reads: the one
// being rendered, or (Gatherer, outside a scrape) a fresh one.
func (s *Service) repositoryView() *view {
	if v := s.exp.rendering.Load(); v != nil {
		return v
	}
	return s.viewOf(s.currentInputs())
}

func (s *Service) currentInputs() renderInputs {
	return renderInputs{counts: s.counter.Counts(), objects: s.currentObjects(), capGen: s.capGen.Load()}
}

// viewOf is the per-repository families' view of in: the object series
// admitted under the cap.
func (s *Service) viewOf(in renderInputs) *view {
	v := &view{counts: in.counts}
	v.objects = admitObjects(s.repos, in.objects)
	return v
}

// repositoryText is the per-repository families' text in format, in name
// order, rendered now if what they read changed since it was kept. The
// caller holds a reference to it and must release it when done writing.
func (s *Service) repositoryText(format expfmt.Format) (*keptTexts, error) {
	in := s.currentInputs()
	e := &s.exp
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.inputs.same(in) || e.texts == nil {
		e.drop()
		e.inputs, e.texts = in, map[expfmt.Format]*keptTexts{}
	}
	if kept, ok := e.texts[format]; ok {
		return kept.acquire(), nil
	}
	if s.ownsProcess && renderIsLarge(e.rendered, e.lastSize) {
		defer collectOftenDuringRender()()
	}
	var kept *keptTexts
	var err error
	if k, ok := directTextOf(format); ok {
		kept, err = s.writeRepositoryTexts(s.viewOf(in), k)
	} else {
		kept, err = s.gatherRepositoryTexts(s.viewOf(in), format)
	}
	if err != nil {
		return nil, err
	}
	e.texts[format] = kept
	s.renders.Add(1)
	size := 0
	for _, f := range kept.families {
		size += len(f.text)
	}
	e.rendered, e.lastSize = true, size
	if s.ownsProcess && size >= largeRenderText {
		s.returnRenderGarbage()
	}
	return kept.acquire(), nil
}

// writeRepositoryTexts writes the per-repository families of v in text
// format k (textwriter.go), each kept in a slice of its own length.
func (s *Service) writeRepositoryTexts(v *view, k textKind) (*keptTexts, error) {
	kept := &keptTexts{}
	kept.refs.Store(1)
	var scratch []byte
	for i := range s.repositoryTexts {
		f := &s.repositoryTexts[i]
		var err error
		scratch, err = f.appendText(scratch[:0], f.generate(v), k)
		if err != nil {
			kept.release()
			return nil, fmt.Errorf("writing %s: %w", f.name, err)
		}
		if len(scratch) == 0 {
			continue // no series: the registry leaves such a family out
		}
		text, err := keepText(scratch)
		if err != nil {
			kept.release()
			return nil, err
		}
		kept.families = append(kept.families, familyText{name: f.name, text: text})
	}
	return kept, nil
}

// gatherRepositoryTexts renders the per-repository families of v in
// format through their registries: the formats not written directly.
func (s *Service) gatherRepositoryTexts(v *view, format expfmt.Format) (*keptTexts, error) {
	s.exp.rendering.Store(v)
	defer s.exp.rendering.Store(nil)
	// Family by family, each gathered, encoded into a scratch buffer and
	// kept in a slice of its own length: gathering every family at once
	// held all their metric structs beside the text, and one buffer for the
	// whole text grew by doubling (1, 2, 4, 8, 16 MB for 14 MB) and was
	// then copied, which together set the process's peak (issue 23).
	var scratch bytes.Buffer
	enc := expfmt.NewEncoder(&scratch, format)
	kept := &keptTexts{}
	kept.refs.Store(1)
	for _, r := range s.repositoryRegistries {
		mfs, err := r.Gather()
		if err != nil {
			kept.release()
			return nil, fmt.Errorf("gathering: %w", err)
		}
		for _, mf := range mfs {
			scratch.Reset()
			if err := enc.Encode(mf); err != nil {
				kept.release()
				return nil, fmt.Errorf("encoding %s: %w", mf.GetName(), err)
			}
			// Not closed: OpenMetrics' EOF comes after the scrape's own
			// families.
			text, err := keepText(scratch.Bytes())
			if err != nil {
				kept.release()
				return nil, err
			}
			kept.families = append(kept.families, familyText{name: mf.GetName(), text: text})
		}
	}
	return kept, nil
}

// renderGCPercent is the collector's GOGC while a render runs.
const renderGCPercent = 20

// collectOftenDuringRender lowers the collector's GOGC to renderGCPercent
// until the returned function is called, unless it is lower already (or off).
// A render is the one burst of garbage the function makes: at the usual
// GOGC the heap grows to half the live heap again above it during each
// render, which set the process's peak; collecting at a fifth costs a few
// collections of the live heap per render instead.
func collectOftenDuringRender() (restore func()) {
	prev := debug.SetGCPercent(renderGCPercent)
	if prev >= 0 && prev <= renderGCPercent {
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() { debug.SetGCPercent(prev) }
}

// returnRenderGarbage hands what a render allocated back to the system, in
// the background. A render allocates most of what the function allocates
// once its caches are built (9 MB written directly for 14 MB of text at
// 1,000 repositories, 36 MB through Gather and expfmt,
// BenchmarkScrape_PerRepositoryFamilies): left to the collector, that garbage
// takes the heap to its goal and the scavenger returns the pages only
// slowly, so the process would sit at half the live heap again above it
// (GOGC 50) plus what the scavenger has not returned. A forced collection
// costs far less than the render (a fraction of its CPU, once per scrape
// after a change).
func (s *Service) returnRenderGarbage() {
	if !s.freeing.CompareAndSwap(false, true) {
		return // one is running; it returns this render's garbage too
	}
	go func() {
		defer s.freeing.Store(false)
		debug.FreeOSMemory()
	}()
}

// Handler serves GET /metrics: Prometheus text, or OpenMetrics when the
// scraper asks for it.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateIncludingOpenMetrics(r.Header)
		texts, err := s.repositoryText(format)
		if err != nil {
			s.log.ErrorContext(r.Context(), "rendering the per-repository families", "error", err)
			http.Error(w, "rendering metrics failed", http.StatusInternalServerError)
			return
		}
		defer texts.release()
		kept := texts.families
		// After the render: it may have admitted repositories, which the
		// cap's dropped total reports.
		mfs, err := s.scrapeRegistry.Gather()
		if err != nil {
			s.log.ErrorContext(r.Context(), "gathering metrics", "error", err)
			http.Error(w, "gathering metrics failed", http.StatusInternalServerError)
			return
		}
		// The scrape's own families, small, are encoded first, so that an
		// error can still be answered; then both lists, in name order
		// (Gather sorts), are merged into the response, the kept text
		// written as it is.
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, format)
		fresh := make([]familyText, 0, len(mfs)+1)
		for _, mf := range mfs {
			start := buf.Len()
			if err := enc.Encode(mf); err != nil {
				s.log.ErrorContext(r.Context(), "encoding metrics", "family", mf.GetName(), "error", err)
				http.Error(w, "encoding metrics failed", http.StatusInternalServerError)
				return
			}
			fresh = append(fresh, familyText{name: mf.GetName(), text: buf.Bytes()[start:buf.Len()]})
		}
		var eof []byte
		if c, ok := enc.(expfmt.Closer); ok {
			start := buf.Len()
			if err := c.Close(); err != nil {
				http.Error(w, "encoding metrics failed", http.StatusInternalServerError)
				return
			}
			eof = buf.Bytes()[start:]
		}
		w.Header().Set("Content-Type", string(format))
		for len(kept) > 0 || len(fresh) > 0 {
			next := &fresh
			if len(fresh) == 0 || len(kept) > 0 && kept[0].name < fresh[0].name {
				next = &kept
			}
			if _, err := w.Write((*next)[0].text); err != nil {
				return // the scraper went away
			}
			*next = (*next)[1:]
		}
		_, _ = w.Write(eof)
	})
}

// Gatherer gathers every family the Handler serves, without keeping
// anything.
func (s *Service) Gatherer() prometheus.Gatherer {
	gs := prometheus.Gatherers{s.scrapeRegistry}
	for _, r := range s.repositoryRegistries {
		gs = append(gs, r)
	}
	return gs
}
