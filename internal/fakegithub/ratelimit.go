package fakegithub

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// The API's front: authentication, an outage, the primary and secondary
// rate limits.

// SetDown makes every API request fail with 503 (deliveries still go out:
// GitHub's webhooks and its REST API fail independently).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetRateLimit sets the primary budget left until reset.
func (s *Server) SetRateLimit(remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining, s.reset = remaining, reset
}

// SecondaryLimitOnce answers the next API request with a secondary rate
// limit and Retry-After.
func (s *Server) SecondaryLimitOnce(retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary = retryAfter
}

// SecondaryLimitOnceOn answers the next API request with method whose path
// ends with suffix with a secondary rate limit and Retry-After; the
// requests before it are served (a fault on one path, e.g. a redelivery's
// POST .../attempts).
func (s *Server) SecondaryLimitOnceOn(method, suffix string, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary = retryAfter
	s.secondaryOn.method, s.secondaryOn.suffix = method, suffix
}

// Remaining is the primary budget left.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remaining
}

// limit is the API's front: authentication, outage, rate limits, and
// conditional requests. GitHub Enterprise Server's paths (REST under
// /api/v3, GraphQL at /api/graphql) are served too, so a source whose API
// URL ends in /api/v3/ talks to the fake as to an Enterprise server.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3/"); ok {
			r.URL.Path, r.URL.RawPath = "/"+p, ""
		}
		if r.URL.Path == "/graphql" || r.URL.Path == "/api/graphql" {
			// GraphQL has its own point budget (graphql.go).
			s.mu.Lock()
			down := s.down
			s.mu.Unlock()
			if down {
				http.Error(w, "service unavailable", http.StatusServiceUnavailable)
				return
			}
			if !s.authorized(r) {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials",
					"documentation_url": "https://docs.github.com/graphql"})
				return
			}
			// A fault injected on the GraphQL path (FailOn) answers
			// instead, as on every other path.
			s.mu.Lock()
			faultStatus, faulted := s.takeFault(r)
			s.mu.Unlock()
			if faulted {
				answerFault(w, faultStatus)
				return
			}
			s.graphql(w, r)
			return
		}
		s.mu.Lock()
		down, secondary := s.down, s.secondary
		if on := s.secondaryOn; on.method != "" && (r.Method != on.method || !strings.HasSuffix(r.URL.Path, on.suffix)) {
			secondary = 0 // not the request the limit waits for
		} else {
			s.secondary, s.secondaryOn.method, s.secondaryOn.suffix = 0, "", ""
		}
		if s.opts.Now().After(s.reset) {
			s.remaining, s.reset = s.opts.RateLimit, s.opts.Now().Add(time.Hour)
		}
		exhausted := s.remaining <= 0
		if !down && !exhausted && secondary == 0 {
			s.remaining--
		}
		remaining, reset := s.remaining, s.reset
		faultStatus, faulted := 0, false
		if !down && !exhausted && secondary == 0 {
			faultStatus, faulted = s.takeFault(r)
		}
		s.mu.Unlock()
		if down {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/app/") && !s.authorized(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials",
				"documentation_url": "https://docs.github.com/rest"})
			return
		}
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		w.Header().Set("X-RateLimit-Resource", "core")
		switch {
		case secondary > 0:
			w.Header().Set("Retry-After", strconv.Itoa(int(secondary.Seconds())))
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "You have exceeded a secondary rate limit.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"})
		case exhausted:
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "API rate limit exceeded.",
				"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
		case faulted:
			answerFault(w, faultStatus)
		case r.Method == http.MethodGet:
			s.conditional(w, r, next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// authorized tells whether r carries the one accepted credential (or an
// installation token the fake issued); every credential when Options.Token
// is empty.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	_, tok, _ := strings.Cut(auth, " ")
	s.mu.Lock()
	issued := s.issued[tok]
	s.mu.Unlock()
	return auth == "Bearer "+s.opts.Token || auth == "token "+s.opts.Token || issued
}

// conditional answers a GET with an ETag over its body, and 304 Not
// Modified, empty, to an If-None-Match that names the current one; a 304
// does not count against the primary rate limit (GitHub's docs "Best
// practices for using the REST API": "Making a conditional request does
// not count against your primary rate limit if a 304 response is
// returned"). GitHub's list ETags are weak (W/"...").
func (s *Server) conditional(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	if rec.Code == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `W/"` + hex.EncodeToString(sum[:]) + `"`
		w.Header().Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == strings.TrimPrefix(etag, "W/")) {
			s.mu.Lock()
			s.remaining++ // given back: a 304 is free
			remaining := s.remaining
			s.mu.Unlock()
			s.notModified.Add(1)
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
			w.Header().Del("Content-Type")
			w.Header().Del("Link")
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// NotModified is how many conditional requests were answered 304.
func (s *Server) NotModified() int64 { return s.notModified.Load() }
