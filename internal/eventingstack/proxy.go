package eventingstack

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is the eventing processes' HTTP_PROXY and HTTPS_PROXY. There is no
// cluster DNS here: Knative addresses everything by Service host names
// (broker-ingress.knative-eventing.svc.cluster.local,
// <broker>-kne-trigger-kn-channel.<ns>.svc.cluster.local, ...), and the proxy
// maps those names to loopback ports while keeping the Host header (the
// channel dispatcher routes on it). It never looks a name up: a host it has
// no route for is answered 502, so nothing leaves the machine and nothing
// reaches the 192.0.2.0/24 placeholders in the Endpoints objects.
type Proxy struct {
	mu       sync.RWMutex
	exact    map[string]int // host name -> loopback port
	suffixes []suffixRoute
	lis      net.Listener
	srv      *http.Server
	rp       *httputil.ReverseProxy
	// observer, when set, is told of every request forwarded (Observe).
	observer atomic.Pointer[func(Hop)]
}

// Hop is one HTTP request the proxy forwarded from one eventing process to
// another (or to a function): every hop of a delivery through the Broker
// passes here, so a benchmark can time each part on one clock.
type Hop struct {
	// Host is the Service host asked for (e.g.
	// broker-filter.knative-eventing.svc.cluster.local).
	Host string
	// ID is the CloudEvent id (the Ce-Id header; "" when not binary mode).
	ID string
	// Start is when the proxy received the request; Took is until the
	// answer was passed back whole; Code is the answer's status.
	Start time.Time
	Took  time.Duration
	Code  int
}

type suffixRoute struct {
	suffix string
	port   int
}

func newProxy() (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{exact: map[string]int{}, lis: lis}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			port, _ := p.route(r.In.URL.Hostname())
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "127.0.0.1:" + strconv.Itoa(port)
			r.Out.Host = r.In.Host // the dispatcher routes on the Host header
		},
		// The stand-in for the cluster's network must not cost what the
		// network does not: it keeps a connection idle for every request
		// that may be in flight to a host (a delivery waits at the filter
		// until the function answers, hundreds at once under load; with
		// 100 kept, every burst closed and dialed again the rest, the
		// bench process's biggest single cost at 100 deliveries/s), and
		// copies bodies through pooled buffers (ReverseProxy allocates
		// 32 KiB per request otherwise). It closes an idle connection
		// before the servers behind it do: Knative's receivers close one
		// unused for 10 s (knative.dev/eventing pkg/kncloudevents
		// event_receiver.go, newServer: a ReadTimeout of 10 s, which
		// net/http applies to a new connection's first request and, with
		// no IdleTimeout set, to an idle one). A server closing one just as
		// the proxy takes it for a request breaks that request's body
		// ("write: broken pipe"); the proxy cannot send a body it has read
		// again, so it would answer 502 and the Broker retry.
		Transport: &http.Transport{
			Proxy:               nil, // never chain to another proxy
			MaxIdleConnsPerHost: 2048,
			IdleConnTimeout:     5 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
		BufferPool: copyBuffers{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(lis)
	return p, nil
}

// URL is the proxy's address, for HTTP_PROXY / HTTPS_PROXY.
func (p *Proxy) URL() string { return "http://" + p.lis.Addr().String() }

// Route sends requests for host (a Service host name such as
// gitpulse-recorder.gitpulse.svc.cluster.local) to 127.0.0.1:port. The
// short forms <name>.<ns>.svc and <name>.<ns> are routed too.
func (p *Proxy) Route(host string, port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	host = strings.ToLower(host)
	p.exact[host] = port
	if short, ok := strings.CutSuffix(host, ".cluster.local"); ok {
		p.exact[short] = port
		p.exact[strings.TrimSuffix(short, ".svc")] = port
	}
}

// RouteLabelSuffix sends requests for every Service host whose first label
// ends in suffix (<name><suffix>.<ns>.svc.cluster.local, any namespace) to
// port.
func (p *Proxy) RouteLabelSuffix(suffix string, port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.suffixes = append(p.suffixes, suffixRoute{strings.ToLower(suffix), port})
}

// ServiceHost is the cluster host name of Service name in namespace ns.
func ServiceHost(name, ns string) string { return name + "." + ns + ".svc.cluster.local" }

func (p *Proxy) route(host string) (int, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	p.mu.RLock()
	defer p.mu.RUnlock()
	if port, ok := p.exact[host]; ok {
		return port, true
	}
	label, rest, _ := strings.Cut(host, ".")
	if strings.HasSuffix(rest, ".svc.cluster.local") || strings.HasSuffix(rest, ".svc") {
		for _, s := range p.suffixes {
			if strings.HasSuffix(label, s.suffix) {
				return s.port, true
			}
		}
	}
	return 0, false
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if r.URL.Host == "" {
		http.Error(w, "this is a forward proxy", http.StatusBadRequest)
		return
	}
	if _, ok := p.route(r.URL.Hostname()); !ok {
		http.Error(w, fmt.Sprintf("no local route for %s (no DNS here)", r.URL.Hostname()), http.StatusBadGateway)
		return
	}
	obs := p.observer.Load()
	if obs == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	hop := Hop{Host: r.URL.Hostname(), ID: r.Header.Get("Ce-Id"), Start: time.Now()}
	cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
	p.rp.ServeHTTP(cw, r)
	hop.Took, hop.Code = time.Since(hop.Start), cw.code
	(*obs)(hop)
}

// Observe makes the proxy call fn with every request it forwards, once
// answered (nil stops it). fn runs on the request's goroutine: it must be
// quick.
func (p *Proxy) Observe(fn func(Hop)) {
	if fn == nil {
		p.observer.Store(nil)
		return
	}
	p.observer.Store(&fn)
}

// codeWriter notes the status of an answer.
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController (the reverse proxy's flushes) reach
// the real writer.
func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// connect tunnels HTTPS to a routed host; any other host is refused without
// a name lookup (e.g. kubernetes.default.svc, which a process may try when
// it believes it runs in a pod).
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	port, ok := p.route(host)
	if !ok {
		http.Error(w, fmt.Sprintf("no local route for %s (no DNS here)", host), http.StatusBadGateway)
		return
	}
	up, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	go func() { io.Copy(up, buf); up.Close() }()
	io.Copy(conn, up)
	conn.Close()
}

// copyBuffers is the reverse proxy's httputil.BufferPool: 32 KiB buffers,
// as it would allocate per request.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }
