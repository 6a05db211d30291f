package eventingstack

import (
	"bytes"
	"errors"
	"io"
	"net"
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
// maps those names to loopback ports. It never looks a name up: a host it
// has no route for is refused, so nothing leaves the machine and nothing
// reaches the 192.0.2.0/24 placeholders in the Endpoints objects.
//
// It is a SOCKS5 server (RFC 1928, CONNECT only, no authentication), which
// Go's net/http speaks when HTTP_PROXY is a socks5:// URL and which hands it
// the host name unresolved (net/http's socks dialer sends a name as
// ATYP 3). A connection through it is a byte tunnel to the Service's port,
// as a connection to a Service's address is in a cluster: the Host header
// and the client's connection reuse are the client's own, and the proxy
// neither parses nor rewrites HTTP. (It was an HTTP forward proxy, which
// read, parsed and wrote every request and answer again on each of a
// delivery's four hops: ~2 ms of CPU per delivery on the machine's two
// shared cores, which a cluster's network does not spend.)
type Proxy struct {
	mu       sync.RWMutex
	exact    map[string]int // host name -> loopback port
	suffixes []suffixRoute
	lis      net.Listener
	// observer, when set, is told of every request forwarded (Observe).
	observer atomic.Pointer[func(Hop)]

	connsMu sync.Mutex
	conns   map[net.Conn]struct{} // open client and upstream connections
	closed  bool
}

// Hop is one HTTP request the proxy carried from one eventing process to
// another (or to a function): every hop of a delivery through the Broker
// passes here, so a benchmark can time each part on one clock.
type Hop struct {
	// Host is the Service host asked for (e.g.
	// broker-filter.knative-eventing.svc.cluster.local).
	Host string
	// ID is the CloudEvent id (the Ce-Id header; "" when not binary mode).
	ID string
	// Start is when the request's first bytes reached the proxy; Took is
	// until the answer's first bytes were passed back (the answers here
	// are a status line and a few headers, one read); Code is the
	// answer's status.
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
	p := &Proxy{exact: map[string]int{}, lis: lis, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// URL is the proxy's address, for HTTP_PROXY / HTTPS_PROXY.
func (p *Proxy) URL() string { return "socks5://" + p.lis.Addr().String() }

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

// Observe makes the proxy call fn with every HTTP request it carries, once
// its answer starts back (nil stops it). fn runs on the tunnel's goroutine:
// it must be quick.
func (p *Proxy) Observe(fn func(Hop)) {
	if fn == nil {
		p.observer.Store(nil)
		return
	}
	p.observer.Store(&fn)
}

// Close stops the proxy and closes every tunnel.
func (p *Proxy) Close() error {
	err := p.lis.Close()
	p.connsMu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.connsMu.Unlock()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.connsMu.Lock()
	delete(p.conns, c)
	p.connsMu.Unlock()
	c.Close()
}

// serve accepts until the proxy is closed. Any other accept error (e.g.
// EMFILE while hundreds of deliveries hold connections) is waited out with
// net/http's Server.Serve backoff, 5 ms doubling to 1 s, as a cluster's
// network would not stop carrying connections for it.
func (p *Proxy) serve() {
	var backoff time.Duration
	for {
		c, err := p.lis.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go p.serveConn(c)
	}
}

// SOCKS5 (RFC 1928) constants: the version, the one method offered (no
// authentication), the one command (CONNECT), the address types and the
// replies used.
const (
	socksVersion          = 5
	socksNoAuth           = 0
	socksNoAcceptable     = 0xff
	socksConnect          = 1
	socksIPv4             = 1
	socksDomain           = 3
	socksIPv6             = 4
	socksSucceeded        = 0
	socksHostUnreachable  = 4
	socksConnRefused      = 5
	socksCmdNotSupported  = 7
	socksAddrNotSupported = 8
)

// handshakeTimeout bounds a client's greeting and request.
const handshakeTimeout = 10 * time.Second

func (p *Proxy) serveConn(c net.Conn) {
	if !p.track(c) {
		c.Close()
		return
	}
	defer p.untrack(c)
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	host, port, err := p.handshake(c)
	if err != nil {
		return
	}
	up, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		socksReply(c, socksConnRefused)
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	if err := socksReply(c, socksSucceeded); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	t := &tunnel{p: p, host: host}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.copyRequests(up, c)
		// The client is done sending; the server may still answer.
		if tc, ok := up.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	t.copyAnswers(c, up)
	// The server closed (or failed): so does the client's side.
	c.Close()
	up.Close()
	<-done
}

// handshake reads a client's greeting and CONNECT request and answers the
// greeting; it answers the request itself only when refusing it. It
// returns the host asked for and the loopback port routed to it.
func (p *Proxy) handshake(c net.Conn) (string, int, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return "", 0, err
	}
	if hdr[0] != socksVersion {
		return "", 0, errors.New("not SOCKS5")
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return "", 0, err
	}
	if bytes.IndexByte(methods, socksNoAuth) < 0 {
		c.Write([]byte{socksVersion, socksNoAcceptable})
		return "", 0, errors.New("no acceptable method")
	}
	if _, err := c.Write([]byte{socksVersion, socksNoAuth}); err != nil {
		return "", 0, err
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return "", 0, err
	}
	if req[0] != socksVersion {
		return "", 0, errors.New("not SOCKS5")
	}
	var host string
	switch req[3] {
	case socksDomain:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return "", 0, err
		}
		name := make([]byte, n[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return "", 0, err
		}
		host = string(name)
	case socksIPv4, socksIPv6:
		ip := make(net.IP, 4)
		if req[3] == socksIPv6 {
			ip = make(net.IP, 16)
		}
		if _, err := io.ReadFull(c, ip); err != nil {
			return "", 0, err
		}
		host = ip.String()
	default:
		socksReply(c, socksAddrNotSupported)
		return "", 0, errors.New("address type not supported")
	}
	// The port asked for is read and not used: each Service maps to one
	// loopback port, whatever port its clients name.
	var portBytes [2]byte
	if _, err := io.ReadFull(c, portBytes[:]); err != nil {
		return "", 0, err
	}
	if req[1] != socksConnect {
		socksReply(c, socksCmdNotSupported)
		return "", 0, errors.New("command not supported")
	}
	port, ok := p.route(host)
	if !ok {
		// No name lookup, no connection: the name is not a routed
		// Service's (e.g. kubernetes.default.svc, which a process may try
		// when it believes it runs in a pod, or an Endpoints placeholder).
		socksReply(c, socksHostUnreachable)
		return "", 0, errors.New("no local route for " + host)
	}
	return host, port, nil
}

func socksReply(c net.Conn, code byte) error {
	_, err := c.Write([]byte{socksVersion, code, 0, socksIPv4, 0, 0, 0, 0, 0, 0})
	return err
}

// tunnel carries one client connection's bytes to its Service's port and
// back. When the proxy is observed, it follows HTTP/1.1's request and
// answer turns (a client sends its next request on a connection only once
// the last answer is in; net/http's does not pipeline) to tell the observer
// of each request: its start, its CloudEvent id, its answer's status. It
// never changes a byte.
type tunnel struct {
	p    *Proxy
	host string

	mu      sync.Mutex
	pending bool   // a request is in, its answer has not started
	head    []byte // the request's head while it is still arriving
	hop     Hop
}

// copyBufferPool holds the tunnels' 32 KiB copy buffers.
var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pump copies src to dst until either side fails. Each read is shown to
// see before it is written on; the function see returns, if any, runs once
// the write is done.
func pump(dst, src net.Conn, see func([]byte) (after func())) {
	bp := copyBufferPool.Get().(*[]byte)
	defer copyBufferPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			after := see(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if after != nil {
				after()
			}
		}
		if err != nil {
			return
		}
	}
}

func (t *tunnel) copyRequests(dst, src net.Conn) {
	pump(dst, src, func(b []byte) func() {
		t.requestBytes(b)
		return nil
	})
}

func (t *tunnel) copyAnswers(dst, src net.Conn) {
	pump(dst, src, func(b []byte) func() {
		// The request's turn ends before its answer goes back: the
		// client may send its next request the moment it has read it.
		hop, obs := t.answerStarts(b)
		if obs == nil {
			return nil
		}
		return func() {
			hop.Took = time.Since(hop.Start)
			(*obs)(hop)
		}
	})
}

// maxObservedHead bounds how much of a request's head the tunnel keeps to
// find its Ce-Id header.
const maxObservedHead = 16 << 10

func (t *tunnel) requestBytes(b []byte) {
	if t.p.observer.Load() == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.pending {
		if !isRequestLine(b) {
			return // the rest of a body the server answered early
		}
		t.pending = true
		t.hop = Hop{Host: t.host, Start: time.Now()}
		if end := bytes.Index(b, headEnd); end >= 0 {
			// The whole head in one read, as a client's buffered
			// writer sends it: read it in place.
			t.hop.ID = headerValue(b[:end], "Ce-Id")
			return
		}
		t.head = make([]byte, 0, 4<<10)
	} else if t.head == nil {
		return // the request's body
	}
	t.head = append(t.head, b[:min(len(b), maxObservedHead-len(t.head))]...)
	end := bytes.Index(t.head, headEnd)
	if end < 0 && len(t.head) < maxObservedHead {
		return // the head goes on in the next read
	}
	if end >= 0 {
		t.head = t.head[:end]
	}
	t.hop.ID = headerValue(t.head, "Ce-Id")
	t.head = nil
}

var headEnd = []byte("\r\n\r\n")

// answerStarts ends the pending request's turn when b starts its answer,
// and returns its hop (all but Took) and the observer to tell; nil when
// there is nothing to tell.
func (t *tunnel) answerStarts(b []byte) (Hop, *func(Hop)) {
	obs := t.p.observer.Load()
	if obs == nil {
		return Hop{}, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.pending {
		return Hop{}, nil // the rest of an answer
	}
	code, ok := statusCode(b)
	if !ok || code/100 == 1 {
		return Hop{}, nil // not a status line, or an interim answer (100 Continue)
	}
	t.pending, t.head = false, nil
	hop := t.hop
	hop.Code = code
	return hop, obs
}

// isRequestLine reports whether b starts with an HTTP/1.x request line
// ("POST /path HTTP/1.1\r\n"), or the start of one too short to tell.
func isRequestLine(b []byte) bool {
	line, _, complete := bytes.Cut(b, []byte("\r\n"))
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return !complete && len(b) < 16 && isToken(b)
	}
	if len(method) == 0 || !isToken(method) {
		return false
	}
	return !complete || bytes.HasSuffix(rest, []byte(" HTTP/1.1")) || bytes.HasSuffix(rest, []byte(" HTTP/1.0"))
}

func isToken(b []byte) bool {
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// statusCode reads the status of an HTTP/1.x status line at b's start.
func statusCode(b []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1."))
	if !ok || len(rest) < 5 || rest[1] != ' ' {
		return 0, false
	}
	code, err := strconv.Atoi(string(rest[2:5]))
	return code, err == nil
}

// headerValue is the value of the first header called name in a request's
// head (its request line and header lines), or "".
func headerValue(head []byte, name string) string {
	_, rest, _ := bytes.Cut(head, []byte("\r\n")) // the request line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && len(k) == len(name) && strings.EqualFold(string(k), name) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}
