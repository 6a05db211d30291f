package eventingstack

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DeadLetter is what config/eventing/dead-letter.yaml runs in a cluster
// (Knative's event_display, which logs each CloudEvent): a sink that keeps
// and logs every CloudEvent the Broker gives up on. Knative adds the
// extensions knativeerrorcode, knativeerrordest and knativeerrordata
// (pkg/kncloudevents/attributes/knative_error.go).
type DeadLetter struct {
	lis net.Listener
	srv *http.Server
	log io.Writer

	mu     sync.Mutex
	events []DeadLetterEvent
}

// DeadLetterEvent is one dead-lettered CloudEvent (binary content mode).
type DeadLetterEvent struct {
	Received  time.Time `json:"received"`
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Source    string    `json:"source"`
	ErrorCode string    `json:"knativeerrorcode"`
	ErrorDest string    `json:"knativeerrordest"`
	// Header holds every ce-* header, lower-cased without the prefix.
	Header map[string]string `json:"attributes"`
	Data   []byte            `json:"-"`
}

// StartDeadLetter listens on 127.0.0.1:port (0: a free one); each event is
// also written to log as a JSON line when log is not nil.
func StartDeadLetter(port int, log io.Writer) (*DeadLetter, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	d := &DeadLetter{lis: lis, log: log}
	d.srv = &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go d.srv.Serve(lis)
	return d, nil
}

func (d *DeadLetter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	ev := DeadLetterEvent{Received: time.Now(), Header: map[string]string{}, Data: body}
	for k, v := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "ce-") && len(v) > 0 {
			ev.Header[strings.TrimPrefix(lk, "ce-")] = v[0]
		}
	}
	ev.ID, ev.Type, ev.Source = ev.Header["id"], ev.Header["type"], ev.Header["source"]
	ev.ErrorCode, ev.ErrorDest = ev.Header["knativeerrorcode"], ev.Header["knativeerrordest"]
	d.mu.Lock()
	d.events = append(d.events, ev)
	if d.log != nil {
		b, _ := json.Marshal(ev)
		d.log.Write(append(b, '\n'))
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// Port is where the sink listens.
func (d *DeadLetter) Port() int { return d.lis.Addr().(*net.TCPAddr).Port }

// Events returns the dead-lettered events so far.
func (d *DeadLetter) Events() []DeadLetterEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DeadLetterEvent(nil), d.events...)
}

// Close stops the sink.
func (d *DeadLetter) Close() error { return d.srv.Close() }
