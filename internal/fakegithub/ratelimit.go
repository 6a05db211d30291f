package fakegithub

import (
	"net/http"
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

// limit is the API's front: authentication, outage, rate limits.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
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
		if s.opts.Token != "" && !strings.HasPrefix(r.URL.Path, "/app/") {
			auth := r.Header.Get("Authorization")
			_, tok, _ := strings.Cut(auth, " ")
			s.mu.Lock()
			issued := s.issued[tok]
			s.mu.Unlock()
			if auth != "Bearer "+s.opts.Token && auth != "token "+s.opts.Token && !issued {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials",
					"documentation_url": "https://docs.github.com/rest"})
				return
			}
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
		default:
			next.ServeHTTP(w, r)
		}
	})
}
