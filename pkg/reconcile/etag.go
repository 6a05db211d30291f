package reconcile

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// GitHub answers a GET whose If-None-Match names the current ETag with 304
// Not Modified, which counts against no rate limit (GitHub's docs "Best
// practices for using the REST API", conditional requests). go-github v60
// sends no If-None-Match by itself and treats a 304 as an error, so the
// REST reads of a pass (branches, deployments and their statuses, the
// deliveries, an organisation's repositories, review lists) go through
// etagTransport: it remembers each answer's ETag and body, asks again
// conditionally, and hands go-github the remembered body on a 304 as the
// 200 it was. A pass then reads exactly what it read before, without
// spending GitHub's budget on what did not change.
//
// The cache is in memory (a recorder replica that starts again asks
// unconditionally once) and bounded in bytes; the oldest answers go
// first. Only answers that carry an ETag and fit are kept.

// etagCacheBytes bounds the remembered bodies of one Reconciler. A page
// of 100 branches is ~20 KiB, of 100 deployments ~300 KiB.
const etagCacheBytes = 16 << 20

type etagEntry struct {
	key    string
	etag   string
	body   []byte
	header http.Header // Link and Content-Type: a 304 carries neither
}

type etagCache struct {
	mu      sync.Mutex
	max     int
	size    int
	entries map[string]*etagEntry
	order   []string // insertion order, oldest first
}

func newETagCache(maxBytes int) *etagCache {
	return &etagCache{max: maxBytes, entries: map[string]*etagEntry{}}
}

func (c *etagCache) get(key string) *etagEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[key]
}

func (c *etagCache) put(e *etagEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[e.key]; ok {
		c.size -= len(old.body)
	} else {
		c.order = append(c.order, e.key)
	}
	c.entries[e.key] = e
	c.size += len(e.body)
	for c.size > c.max && len(c.order) > 0 {
		k := c.order[0]
		c.order = c.order[1:]
		if old, ok := c.entries[k]; ok {
			c.size -= len(old.body)
			delete(c.entries, k)
		}
	}
}

type noETagCacheKey struct{}

// withoutETagCache marks requests that manage their own ETag (pullsProbe).
func withoutETagCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, noETagCacheKey{}, true)
}

// etagTransport makes a source's GETs conditional. scope keeps sources
// apart (their tokens may see different things).
type etagTransport struct {
	base  http.RoundTripper
	cache *etagCache
	scope string
}

func (t *etagTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Header.Get("If-None-Match") != "" || req.Context().Value(noETagCacheKey{}) != nil {
		return t.base.RoundTrip(req)
	}
	key := t.scope + " " + req.URL.String()
	e := t.cache.get(key)
	if e != nil {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", e.etag)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && e != nil:
		resp.Body.Close()
		out := *resp
		out.StatusCode, out.Status = http.StatusOK, "200 OK"
		out.Header = resp.Header.Clone()
		for k, v := range e.header {
			out.Header[k] = v
		}
		out.Header.Set("Content-Length", strconv.Itoa(len(e.body)))
		out.ContentLength = int64(len(e.body))
		out.Body = io.NopCloser(bytes.NewReader(e.body))
		return &out, nil
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "" && resp.ContentLength <= etagCacheBytes/8:
		body, err := io.ReadAll(io.LimitReader(resp.Body, etagCacheBytes/8+1))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if len(body) <= etagCacheBytes/8 {
			h := http.Header{}
			for _, k := range []string{"Link", "Content-Type"} {
				if v, ok := resp.Header[k]; ok {
					h[k] = v
				}
			}
			t.cache.put(&etagEntry{key: key, etag: resp.Header.Get("ETag"), body: body, header: h})
		}
	}
	return resp, nil
}
