package metrics

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/h2server"
)

// verbOf is "watch" for a watch request, else "list".
func verbOf(r *http.Request) string {
	if r.URL.Query().Get("watch") == "true" {
		return "watch"
	}
	return "list"
}

// TestNewClients_ListOverHTTP1AndWatchOverHTTP2: over TLS to a server that
// offers HTTP/2, the Events and the objects are listed over HTTP/1.1 and
// watched over HTTP/2 (with client-go's health pings), and the ConfigMaps
// are read over HTTP/2.
func TestNewClients_ListOverHTTP1AndWatchOverHTTP2(t *testing.T) {
	var mu sync.Mutex
	protos := map[string]string{}
	cfg := h2server.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[verbOf(r)+" "+r.URL.Path] = r.Proto
		mu.Unlock()
		h2server.NotFound(w)
	}))
	c, err := NewClients(cfg, "ns")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.listEvents().List(ctx, metav1.ListOptions{})
	c.Events.Watch(ctx, metav1.ListOptions{})
	objectLists(c.listGitpulse(), "ns").prs(ctx, metav1.ListOptions{})
	c.Gitpulse.PullRequests("ns").Watch(ctx, metav1.ListOptions{})
	c.ConfigMaps.List(ctx, metav1.ListOptions{})
	for request, want := range map[string]string{
		"list /api/v1/namespaces/ns/events":                         "HTTP/1.1",
		"watch /api/v1/namespaces/ns/events":                        "HTTP/2.0",
		"list /apis/stable.liatr.io/v1/namespaces/ns/pullrequests":  "HTTP/1.1",
		"watch /apis/stable.liatr.io/v1/namespaces/ns/pullrequests": "HTTP/2.0",
		"list /api/v1/namespaces/ns/configmaps":                     "HTTP/2.0",
	} {
		if got := protos[request]; got != want {
			t.Errorf("%s went over %q, want %s", request, got, want)
		}
	}
}

// TestService_ListsOverHTTP1AndWatchesOverHTTP2: a Service on NewClients
// lists the Events and the objects over HTTP/1.1 and watches them over
// HTTP/2, against a TLS server that offers HTTP/2 and answers empty lists.
func TestService_ListsOverHTTP1AndWatchesOverHTTP2(t *testing.T) {
	kinds := map[string]string{"events": "EventList", "configmaps": "ConfigMapList", "pullrequests": "PullRequestList",
		"branches": "BranchList", "githubdeployments": "GitHubDeploymentList"}
	var mu sync.Mutex
	protos := map[string]string{}
	cfg := h2server.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resource, verb := path.Base(r.URL.Path), verbOf(r)
		mu.Lock()
		protos[verb+" "+resource] = r.Proto
		mu.Unlock()
		kind, ok := kinds[resource]
		switch {
		case !ok: // the checkpoint's ConfigMap: none yet
			h2server.NotFound(w)
		case verb == "watch": // nothing happens until the client leaves
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			w.Header().Set("Content-Type", "application/json")
			apiVersion := "v1"
			if strings.HasPrefix(r.URL.Path, "/apis/") {
				apiVersion = "stable.liatr.io/v1"
			}
			fmt.Fprintf(w, `{"kind":%q,"apiVersion":%q,"metadata":{"resourceVersion":"1"},"items":[]}`, kind, apiVersion)
		}
	}))
	c, err := NewClients(cfg, "ns")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Config: Config{Namespace: "ns"}, Clients: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx)
	want := map[string]string{}
	for _, resource := range []string{"events", "pullrequests", "branches", "githubdeployments"} {
		want["list "+resource], want["watch "+resource] = "HTTP/1.1", "HTTP/2.0"
	}
	var got map[string]string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got = maps.Clone(protos)
		mu.Unlock()
		done := true
		for request := range want {
			done = done && got[request] != ""
		}
		if done {
			break
		}
	}
	for request, proto := range want {
		if got[request] != proto {
			t.Errorf("%s went over %q, want %s", request, got[request], proto)
		}
	}
}
