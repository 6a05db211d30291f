package fakegithub

import (
	"net/http"
	"strings"
)

// Faults on one path: what GitHub answers for what a token may not see (404,
// or 403 "Resource not accessible by personal access token" for a
// fine-grained token without the permission), its own failures (5xx) and
// no answer at all (the connection closed), for the requests that match,
// while every other request is served.

type fault struct {
	method, suffix string
	status         int
	times          int // left; < 0: until ClearFaults
	hits           int
}

// FailOn answers the next times API requests with method ("" any) whose
// path ends with suffix with status instead of serving them (times < 0:
// every such request until ClearFaults). Status 0 closes the connection
// without an answer. Rate limits, the outage and authentication are
// checked first, as GitHub's front does; the request is counted in the
// primary budget. The first matching fault answers.
func (s *Server) FailOn(method, suffix string, status, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{method: method, suffix: suffix, status: status, times: times})
}

// ClearFaults ends every FailOn.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleared = append(s.cleared, s.faults...)
	s.faults = nil
}

// Faulted is how many requests a FailOn with that method and suffix has
// answered (summed over such faults, cleared or not).
func (s *Server) Faulted(method, suffix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, fs := range [][]*fault{s.cleared, s.faults} {
		for _, f := range fs {
			if f.method == method && f.suffix == suffix {
				n += f.hits
			}
		}
	}
	return n
}

// takeFault returns the status of the fault matching r (ok false: none),
// counting it down. Called with s.mu held.
func (s *Server) takeFault(r *http.Request) (status int, ok bool) {
	for i, f := range s.faults {
		if (f.method != "" && f.method != r.Method) || !strings.HasSuffix(r.URL.Path, f.suffix) {
			continue
		}
		f.hits++
		if f.times > 0 {
			f.times--
			if f.times == 0 {
				s.cleared = append(s.cleared, f)
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return f.status, true
	}
	return 0, false
}

// answerFault answers a request as the fault's status says.
func answerFault(w http.ResponseWriter, status int) {
	switch {
	case status == 0:
		// No answer: the connection breaks mid-answer (go-github returns
		// the transport's error, a *url.Error). A few bytes are sent first:
		// on a connection that answered nothing, Go's transport would send
		// an idempotent request again by itself.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_, _ = conn.Write([]byte("HTTP/1.1 "))
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case status == http.StatusNotFound:
		notFound(w)
	case status == http.StatusForbidden:
		writeJSON(w, status, map[string]string{"message": "Resource not accessible by personal access token",
			"documentation_url": "https://docs.github.com/rest", "status": "403"})
	case status >= 500:
		writeJSON(w, status, map[string]string{"message": "Server Error"})
	default:
		writeJSON(w, status, map[string]string{"message": http.StatusText(status),
			"documentation_url": "https://docs.github.com/rest"})
	}
}
