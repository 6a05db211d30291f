package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/localrun"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/naming"
)

// written counts what the recorder has written, to prove a refused delivery
// wrote nothing.
func written(t *testing.T, s *localrun.Stack) [3]int {
	t.Helper()
	ctx := context.Background()
	gp := versioned.NewForConfigOrDie(s.ControlPlane.Config())
	prs, err1 := gp.StableV1().PullRequests(s.Namespace()).List(ctx, metav1.ListOptions{})
	brs, err2 := gp.StableV1().Branches(s.Namespace()).List(ctx, metav1.ListOptions{})
	evs, err3 := s.Kube.CoreV1().Events(s.Namespace()).List(ctx, metav1.ListOptions{})
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return [3]int{len(prs.Items), len(brs.Items), len(evs.Items)}
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestBadInput_EachGetsItsDocumentedCodeAndWritesNothing sweeps hostile
// input through the raw-webhook intake and straight at the recorder: each
// gets the code the README documents, nothing is written, and both keep
// serving. What the intake forwards and the recorder refuses (4xx) is, as in
// a cluster, acknowledged by the Broker (202) and delivered to the
// dead-letter sink at once, with the recorder's code in knativeerrorcode.
func TestBadInput_EachGetsItsDocumentedCodeAndWritesNothing(t *testing.T) {
	s := stack(t)
	ctx := context.Background()
	secret := []byte(s.Secret())
	now := time.Now().UTC()
	prPayload := ghwebhook.PullRequest{Repo: "bad/input", Number: 1, Action: "opened", User: "u", Head: "h",
		CreatedAt: now, UpdatedAt: now}.Payload()

	signed := func(event string, body []byte) *http.Request {
		req, err := ghwebhook.Request(ctx, s.WebhookURL(), secret, ghwebhook.Delivery{Event: event, ID: fmt.Sprintf("bad-%d", time.Now().UnixNano()), Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	cloudEvent := func(contentType string, header map[string]string, body []byte) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.RecorderURL(), bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return req
	}
	binary := func(ceType string) map[string]string {
		return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": fmt.Sprintf("bad-ce-%d", time.Now().UnixNano()),
			"Ce-Type": ceType, "Ce-Source": "https://github.com/bad/input"}
	}
	oversize := append(append([]byte(`{"zen":"`), bytes.Repeat([]byte("x"), 26<<20)...), []byte(`"}`)...)

	tests := []struct {
		name string
		req  func() *http.Request
		want int
	}{
		// Through the intake, as GitHub would send it.
		{"intake: body over 25 MiB", func() *http.Request { return signed("ping", oversize) }, 413},
		// The GitHubSource adapter answers 400 to what it cannot parse.
		{"intake: truncated JSON", func() *http.Request { return signed("pull_request", prPayload[:len(prPayload)/2]) }, 400},
		{"intake: form-encoded content type", func() *http.Request {
			r := signed("pull_request", prPayload)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 400},
		{"intake: event type the adapter does not accept", func() *http.Request {
			return signed("workflow_run", []byte(`{"action":"completed","repository":{"full_name":"bad/input"}}`))
		}, 404},
		{"intake: missing signature", func() *http.Request {
			r := signed("pull_request", prPayload)
			r.Header.Del("X-Hub-Signature-256")
			return r
		}, 401},
		{"intake: forged signature", func() *http.Request {
			r := signed("pull_request", prPayload)
			r.Header.Set("X-Hub-Signature-256", ghwebhook.Signature([]byte("not the secret"), prPayload))
			return r
		}, 403},
		{"intake: push header on a pull_request payload", func() *http.Request { return signed("push", prPayload) }, 400},
		{"intake: create without a repository", func() *http.Request {
			return signed("create", []byte(`{"ref":"main","ref_type":"branch"}`))
		}, 202},
		{"intake: invalid UTF-8 in JSON", func() *http.Request {
			return signed("create", []byte("{\"ref\":\"a\xff\xfe\",\"ref_type\":\"branch\",\"repository\":{\"full_name\":\"bad/input\"}}"))
		}, 400},
		// Names git and GitHub refuse (issue 10 item 2): the recorder refuses
		// them (400), so the Broker dead-letters them and the intake, like the
		// adapter, answers 202 once the Broker accepted.
		{"intake: branch name with a dot-dot", func() *http.Request {
			return signed("create", ghwebhook.Ref{Repo: "bad/names", Ref: "release-1.2.3..rc", Sender: "u", At: now}.CreatePayload())
		}, 202},
		{"intake: branch name starting with a dot", func() *http.Request {
			return signed("create", ghwebhook.Ref{Repo: "bad/names", Ref: ".hidden", Sender: "u", At: now}.CreatePayload())
		}, 202},
		// A line feed cannot even be sent as the adapter's ce-ref header.
		{"intake: LF in a branch name", func() *http.Request {
			return signed("create", ghwebhook.Ref{Repo: "bad/names", Ref: "a\nb", Sender: "u", At: now}.CreatePayload())
		}, 400},
		{"intake: event type gitpulse does not track is acknowledged", func() *http.Request {
			return signed("watch", []byte(`{"action":"started","repository":{"full_name":"bad/input"}}`))
		}, 202},
		// Straight at the recorder, as a Broker would deliver.
		{"recorder: body over 25 MiB", func() *http.Request {
			return cloudEvent("application/json", binary("dev.knative.source.github.ping"), oversize)
		}, 413},
		{"recorder: not a CloudEvent", func() *http.Request { return cloudEvent("text/plain", nil, []byte("hello")) }, 415},
		// func-go's receiver (sdk-go) answers a broken structured event 500:
		// the Broker retries it, then dead-letters it.
		{"recorder: broken structured CloudEvent", func() *http.Request {
			return cloudEvent("application/cloudevents+json", nil, []byte(`{"specversion":"1.0","id":`))
		}, 500},
		{"recorder: type outside dev.knative.source.github", func() *http.Request {
			return cloudEvent("application/json", binary("com.example.other"), prPayload)
		}, 400},
		{"recorder: data that is not JSON", func() *http.Request {
			return cloudEvent("text/plain", binary("dev.knative.source.github.pull_request"), []byte("opened"))
		}, 400},
	}
	// What the recorder refuses behind the Broker, with the recorder's code.
	// (What the intake itself refuses, as the adapter would, never reaches
	// the Broker.)
	deadLetter := map[string]int{
		"intake: create without a repository":     400,
		"intake: branch name with a dot-dot":      400,
		"intake: branch name starting with a dot": 400,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := written(t, s)
			req := tt.req()
			code, body := do(t, req)
			if code != tt.want {
				t.Fatalf("answered %d (%s), want %d", code, body, tt.want)
			}
			if want, ok := deadLetter[tt.name]; ok {
				// The ingress answers once the dead-letter sink has it.
				id := req.Header.Get("X-GitHub-Delivery")
				var got []string
				for _, d := range s.DeadLetter().Events() {
					if d.ID == id {
						got = append(got, d.ErrorCode)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint([]string{strconv.Itoa(want)}) {
					t.Fatalf("dead-lettered with knativeerrorcode %v, want once with %d", got, want)
				}
			}
			if after := written(t, s); after != before {
				t.Fatalf("wrote something: (PRs, branches, Events) %v -> %v", before, after)
			}
		})
	}

	// Hostile but legal names are recorded under sanitised object names,
	// with the raw name kept in the spec.
	gp := versioned.NewForConfigOrDie(s.ControlPlane.Config())
	for _, branch := range []string{
		strings.Repeat("very-long-branch-name/", 12) + "end",
		"fëature/ünïcødé-🚀",
		"a/b/c/d/e",
		"release-1.2.3.rc",
		"x.hidden",
		"UPPER_case",
	} {
		t.Run("hostile branch name "+branch[:min(len(branch), 20)], func(t *testing.T) {
			code, body := do(t, signed("create", ghwebhook.Ref{Repo: "bad/names", Ref: branch, Sender: "u", At: now}.CreatePayload()))
			if code != http.StatusAccepted {
				t.Fatalf("answered %d (%s), want 202", code, body)
			}
			name := naming.BranchName("bad/names", branch)
			if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
				t.Fatalf("object name %q: %v", name, errs)
			}
			got, err := gp.StableV1().Branches(s.Namespace()).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Spec.Name != branch || got.Spec.State != "created" {
				t.Fatalf("spec %+v, want raw name %q created", got.Spec, branch)
			}
		})
	}

	// Both processes still serve.
	for _, url := range []string{s.RecorderURL() + "/health/readiness", strings.TrimSuffix(s.MetricsURL(), "/metrics") + "/health/readiness"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("%s after the sweep: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s after the sweep: %d", url, resp.StatusCode)
		}
	}
	if code, body := do(t, signed("pull_request", prPayload)); code != http.StatusAccepted {
		t.Fatalf("a valid delivery after the sweep answered %d: %s", code, body)
	}
}
