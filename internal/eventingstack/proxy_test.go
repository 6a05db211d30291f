package eventingstack

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestProxy_MapsServiceHostsToLoopbackAndKeepsTheHostHeader(t *testing.T) {
	var gotHost, gotPath string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotPath = r.Host, r.URL.Path
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	port := backend.Listener.Addr().(*net.TCPAddr).Port

	p, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Route(ServiceHost("broker-filter", SystemNamespace), port)
	p.RouteLabelSuffix("-kn-channel", port)
	proxyURL, _ := url.Parse(p.URL())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}

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
	p, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.RouteLabelSuffix("-kn-channel", 1)
	proxyURL, _ := url.Parse(p.URL())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	for _, u := range []string{
		"http://kubernetes.default.svc/.well-known/openid-configuration",
		"https://kubernetes.default.svc/.well-known/openid-configuration", // CONNECT
		"http://192.0.2.1:8080/",           // the Endpoints placeholders
		"http://x-kn-channel.example.com/", // not a Service host
		"http://example.com/",
	} {
		resp, err := client.Get(u)
		switch {
		case strings.HasPrefix(u, "https:"):
			// The tunnel is refused: CONNECT answered 502.
			if err == nil || !strings.Contains(err.Error(), "Bad Gateway") {
				t.Errorf("%s: %v, want the CONNECT refused with 502", u, err)
			}
		case err != nil:
			t.Errorf("%s: %v", u, err)
		default:
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("%s: %d, want 502", u, resp.StatusCode)
			}
		}
	}
}

func TestProxy_ObserverSeesEachForwardedRequestWithItsCloudEventIDAndAnswer(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Id") == "refused" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer backend.Close()
	p, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Route(ServiceHost("broker-filter", SystemNamespace), backend.Listener.Addr().(*net.TCPAddr).Port)
	// Told after the answer went back: the client may see it first.
	observed := make(chan Hop, 10)
	p.Observe(func(h Hop) { observed <- h })
	proxyURL, _ := url.Parse(p.URL())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
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
