package eventingstack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startProxy starts a proxy that the test closes.
func startProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// client is an HTTP client whose every request goes through p, as the
// eventing processes' do (HTTP_PROXY).
func (p *Proxy) client() *http.Client {
	proxyURL, _ := url.Parse(p.URL())
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
}

func TestProxy_MapsServiceHostsToLoopbackAndKeepsTheHostHeader(t *testing.T) {
	var gotHost, gotPath string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotPath = r.Host, r.URL.Path
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	port := backend.Listener.Addr().(*net.TCPAddr).Port

	p := startProxy(t)
	p.Route(ServiceHost("broker-filter", SystemNamespace), port)
	p.RouteLabelSuffix("-kn-channel", port)
	client := p.client()

	for _, tc := range []struct{ url, host string }{
		{"http://broker-filter.knative-eventing.svc.cluster.local/triggers/ns/t/uid", "broker-filter.knative-eventing.svc.cluster.local"},
		{"http://broker-filter.knative-eventing.svc/triggers/ns/t/uid", "broker-filter.knative-eventing.svc"},
		{"http://default-kne-trigger-kn-channel.gitpulse.svc.cluster.local/", "default-kne-trigger-kn-channel.gitpulse.svc.cluster.local"},
	} {
		resp, err := client.Get(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || gotHost != tc.host {
			t.Errorf("%s: %d, backend saw Host %q, want 200 and %q", tc.url, resp.StatusCode, gotHost, tc.host)
		}
	}
	if gotPath != "/" {
		t.Errorf("path %q", gotPath)
	}
}

func TestProxy_RefusesEveryOtherHostWithoutForwarding(t *testing.T) {
	p := startProxy(t)
	p.RouteLabelSuffix("-kn-channel", 1)
	client := p.client()
	for _, u := range []string{
		"http://kubernetes.default.svc/.well-known/openid-configuration",
		"https://kubernetes.default.svc/.well-known/openid-configuration",
		"http://192.0.2.1:8080/",           // the Endpoints placeholders
		"http://x-kn-channel.example.com/", // not a Service host
		"http://example.com/",
	} {
		resp, err := client.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: answered %d, want the connection refused", u, resp.StatusCode)
			continue
		}
		// net/http's SOCKS dialer names RFC 1928's reply 4.
		if !strings.Contains(err.Error(), "host unreachable") {
			t.Errorf("%s: %v, want the SOCKS request refused with host unreachable", u, err)
		}
	}
}

// HTTPS_PROXY is the same proxy: a TLS connection is tunnelled unread.
func TestProxy_TunnelsTLSToARoutedHost(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "over TLS")
	}))
	defer backend.Close()
	p := startProxy(t)
	p.Route(ServiceHost("eventing-webhook", SystemNamespace), backend.Listener.Addr().(*net.TCPAddr).Port)
	proxyURL, _ := url.Parse(p.URL())
	tr := backend.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(proxyURL)
	tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate names it
	resp, err := (&http.Client{Transport: tr}).Get("https://eventing-webhook.knative-eventing.svc:443/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "over TLS" {
		t.Errorf("body %q", body)
	}
}

func TestProxy_ObserverSeesEachForwardedRequestWithItsCloudEventIDAndAnswer(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Id") == "refused" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer backend.Close()
	p := startProxy(t)
	p.Route(ServiceHost("broker-filter", SystemNamespace), backend.Listener.Addr().(*net.TCPAddr).Port)
	// Told after the answer went back: the client may see it first.
	observed := make(chan Hop, 10)
	p.Observe(func(h Hop) { observed <- h })
	client := p.client()
	send := func(id string) {
		req, _ := http.NewRequest(http.MethodPost, "http://broker-filter.knative-eventing.svc.cluster.local/", strings.NewReader("{}"))
		req.Header.Set("Ce-Id", id)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send("accepted")
	send("refused")
	var hops []Hop
	for range 2 {
		select {
		case h := <-observed:
			hops = append(hops, h)
		case <-time.After(5 * time.Second):
			t.Fatalf("observed %d hops, want 2", len(hops))
		}
	}
	sort.Slice(hops, func(i, j int) bool { return hops[i].ID < hops[j].ID }) // either may be told first
	p.Observe(nil)
	send("unobserved")
	select {
	case h := <-observed:
		t.Errorf("observed %+v after Observe(nil)", h)
	case <-time.After(100 * time.Millisecond):
	}

	want := []struct {
		id   string
		code int
	}{{"accepted", http.StatusOK}, {"refused", http.StatusServiceUnavailable}}
	for i, w := range want {
		h := hops[i]
		if h.ID != w.id || h.Code != w.code || h.Host != "broker-filter.knative-eventing.svc.cluster.local" || h.Start.IsZero() || h.Took <= 0 {
			t.Errorf("hop %d = %+v, want id %q code %d on the filter's host", i, h, w.id, w.code)
		}
	}
}

// A client keeps its connection through the proxy and sends request after
// request on it, bodies large enough to take several reads among them, and
// a head that arrives in pieces: the observer is told of each request once,
// with its own id and answer, and every byte arrives as sent.
func TestProxy_ObserverFollowsTheRequestsOfAKeptConnection(t *testing.T) {
	var bodies []int
	var mu sync.Mutex
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, len(b))
		mu.Unlock()
		if bytes.Count(b, []byte("x")) != len(b) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer backend.Close()
	p := startProxy(t)
	p.Route(ServiceHost("broker-ingress", SystemNamespace), backend.Listener.Addr().(*net.TCPAddr).Port)
	var hops []Hop
	var hopsMu sync.Mutex
	p.Observe(func(h Hop) { hopsMu.Lock(); hops = append(hops, h); hopsMu.Unlock() })

	// One connection, by hand, so that the head can be written in pieces.
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "socks5://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := "broker-ingress.knative-eventing.svc.cluster.local"
	conn.Write([]byte{5, 1, 0})
	greeting := make([]byte, 2)
	io.ReadFull(conn, greeting)
	conn.Write(append(append([]byte{5, 1, 0, 3, byte(len(host))}, host...), 0, 80))
	reply := make([]byte, 10)
	if _, err := io.ReadFull(conn, reply); err != nil || reply[1] != 0 {
		t.Fatalf("SOCKS reply %v, %v", reply, err)
	}
	br := bufio.NewReader(conn)
	sizes := []int{2, 200 << 10, 0, 70 << 10}
	for i, n := range sizes {
		head := fmt.Sprintf("POST /ns/default HTTP/1.1\r\nHost: %s\r\nCe-Id: delivery-%d\r\nContent-Length: %d\r\n\r\n", host, i, n)
		if i == 2 { // the head in three writes
			for _, part := range []string{head[:3], head[3:40], head[40:]} {
				conn.Write([]byte(part))
				time.Sleep(10 * time.Millisecond)
			}
		} else {
			conn.Write([]byte(head))
		}
		conn.Write(bytes.Repeat([]byte("x"), n))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("request %d: %d", i, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		hopsMu.Lock()
		n := len(hops)
		hopsMu.Unlock()
		if n >= len(sizes) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	hopsMu.Lock()
	defer hopsMu.Unlock()
	if len(hops) != len(sizes) {
		t.Fatalf("observed %d hops, want %d: %+v", len(hops), len(sizes), hops)
	}
	for i, h := range hops {
		if h.ID != fmt.Sprintf("delivery-%d", i) || h.Code != http.StatusAccepted || h.Host != host || h.Took <= 0 {
			t.Errorf("hop %d = %+v", i, h)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(bodies) != fmt.Sprint(sizes) {
		t.Errorf("backend read bodies of %v bytes, want %v", bodies, sizes)
	}
}

// A client sends its next request on a kept connection the moment it has
// read the last answer: that request is observed too, not taken for the
// rest of the last one.
func TestProxy_ObserverSeesARequestSentTheMomentTheLastIsAnswered(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer backend.Close()
	p := startProxy(t)
	p.Route(ServiceHost("broker-filter", SystemNamespace), backend.Listener.Addr().(*net.TCPAddr).Port)
	var seen sync.Map
	var hops atomic.Int64
	p.Observe(func(h Hop) {
		if h.Code == http.StatusAccepted {
			seen.Store(h.ID, true)
		}
		hops.Add(1)
	})
	client := p.client()
	const n = 500
	for i := range n {
		req, _ := http.NewRequest(http.MethodPost, "http://broker-filter.knative-eventing.svc.cluster.local/", strings.NewReader("{}"))
		req.Header.Set("Ce-Id", strconv.Itoa(i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for hops.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var missed []int
	for i := range n {
		if _, ok := seen.Load(strconv.Itoa(i)); !ok {
			missed = append(missed, i)
		}
	}
	if len(missed) > 0 || hops.Load() != n {
		t.Errorf("observed %d hops for %d requests; requests not observed: %v", hops.Load(), n, missed)
	}
}
