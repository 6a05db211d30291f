package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
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
// input through the real GitHubSource receive adapter and straight at the
// recorder: each gets the code the README documents, nothing is written, and
// both keep serving. The adapter answers what it cannot parse or verify
// (SHA-1 X-Hub-Signature) 400 with an empty body, an event type outside its
// list 404, and forwards everything else whatever its size, content type or
// bytes: what the recorder then refuses (4xx; 413 for a body over 25 MiB) is,
// as in a cluster, acknowledged by the Broker (the adapter answers 202) and
// delivered to the dead-letter sink at once, with the recorder's code in
// knativeerrorcode. So the size and bad-input guarantees are proven where
// they hold in production, at the recorder.
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
	// Over 25 MiB in a field the adapter's struct keeps (pull_request.body;
	// it drops what its struct lacks, such as a ping's zen).
	var pr map[string]any
	if err := json.Unmarshal(prPayload, &pr); err != nil {
		t.Fatal(err)
	}
	pr["pull_request"].(map[string]any)["body"] = strings.Repeat("x", 26<<20)
	oversizePR, err := json.Marshal(pr)
	if err != nil {
		t.Fatal(err)
	}

	invalidUTF8 := []byte("{\"ref\":\"a\xff\xfe\",\"ref_type\":\"branch\",\"repository\":{\"full_name\":\"bad/utf8\",\"name\":\"utf8\",\"owner\":{\"login\":\"bad\"}}}")
	watch := []byte(`{"action":"started","repository":{"full_name":"bad/input"}}`)
	// What GitHub sends for a webhook whose content type is
	// application/x-www-form-urlencoded.
	form := []byte("payload=" + url.QueryEscape(string(prPayload)))

	tests := []struct {
		name string
		req  func() *http.Request
		want int
		// silent: the answer has an empty body (the adapter's answer to
		// what it cannot parse or verify).
		silent bool
	}{
		// Through the receive adapter, as GitHub would send it.
		{name: "adapter: body over 25 MiB is forwarded, the recorder refuses it", req: func() *http.Request { return signed("pull_request", oversizePR) }, want: 202},
		{name: "adapter: truncated JSON", req: func() *http.Request { return signed("pull_request", prPayload[:len(prPayload)/2]) }, want: 400, silent: true},
		{name: "adapter: form-encoded body", req: func() *http.Request {
			r := signed("pull_request", form)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, want: 400, silent: true},
		{name: "adapter: event type the adapter does not accept", req: func() *http.Request {
			return signed("workflow_run", []byte(`{"action":"completed","repository":{"full_name":"bad/input"}}`))
		}, want: 404, silent: true},
		{name: "adapter: missing signature", req: func() *http.Request {
			r := signed("pull_request", prPayload)
			r.Header.Del("X-Hub-Signature")
			r.Header.Del("X-Hub-Signature-256")
			return r
		}, want: 400, silent: true},
		{name: "adapter: forged SHA-1 signature", req: func() *http.Request {
			r := signed("pull_request", prPayload)
			r.Header.Set("X-Hub-Signature", ghwebhook.SignatureSHA1([]byte("not the secret"), prPayload))
			return r
		}, want: 400, silent: true},
		// The adapter checks only X-Hub-Signature (docs/deploy.md, threat
		// model): a forged SHA-256 beside a valid SHA-1 passes.
		{name: "adapter: X-Hub-Signature-256 is not checked", req: func() *http.Request {
			r := signed("watch", watch)
			r.Header.Set("X-Hub-Signature-256", ghwebhook.Signature([]byte("not the secret"), watch))
			return r
		}, want: 202},
		{name: "adapter: push header on a pull_request payload", req: func() *http.Request { return signed("push", prPayload) }, want: 400, silent: true},
		{name: "adapter: create without a repository", req: func() *http.Request {
			return signed("create", []byte(`{"ref":"main","ref_type":"branch"}`))
		}, want: 202},
		// Names git and GitHub refuse (hostile input): the recorder refuses
		// them (400), so the Broker dead-letters them and the adapter answers
		// 202 once the Broker accepted.
		{name: "adapter: branch name with a dot-dot", req: func() *http.Request {
			return signed("create", ghwebhook.Ref{Repo: "bad/names", Ref: "release-1.2.3..rc", Sender: "u", At: now}.CreatePayload())
		}, want: 202},
		{name: "adapter: branch name starting with a dot", req: func() *http.Request {
			return signed("create", ghwebhook.Ref{Repo: "bad/names", Ref: ".hidden", Sender: "u", At: now}.CreatePayload())
		}, want: 202},
		// A line feed cannot even be sent as the adapter's ce-ref header:
		// the adapter answers 400 with its CloudEvents client's error.
		{name: "adapter: LF in a branch name", req: func() *http.Request {
			return signed("create", ghwebhook.Ref{Repo: "bad/names", Ref: "a\nb", Sender: "u", At: now}.CreatePayload())
		}, want: 400},
		{name: "adapter: event type gitpulse does not track is acknowledged", req: func() *http.Request {
			return signed("watch", watch)
		}, want: 202},
		// Straight at the recorder, as a Broker would deliver.
		{name: "recorder: body over 25 MiB", req: func() *http.Request {
			return cloudEvent("application/json", binary("dev.knative.source.github.ping"), oversize)
		}, want: 413},
		{name: "recorder: not a CloudEvent", req: func() *http.Request { return cloudEvent("text/plain", nil, []byte("hello")) }, want: 415},
		// func-go's receiver (sdk-go) answers a broken structured event 500:
		// the Broker retries it, then dead-letters it.
		{name: "recorder: broken structured CloudEvent", req: func() *http.Request {
			return cloudEvent("application/cloudevents+json", nil, []byte(`{"specversion":"1.0","id":`))
		}, want: 500},
		{name: "recorder: type outside dev.knative.source.github", req: func() *http.Request {
			return cloudEvent("application/json", binary("com.example.other"), prPayload)
		}, want: 400},
		{name: "recorder: data that is not JSON", req: func() *http.Request {
			return cloudEvent("text/plain", binary("dev.knative.source.github.pull_request"), []byte("opened"))
		}, want: 400},
		{name: "recorder: invalid UTF-8 in JSON", req: func() *http.Request {
			return cloudEvent("application/json", binary("dev.knative.source.github.create"), invalidUTF8)
		}, want: 400},
	}
	// What the recorder refuses behind the Broker, with the recorder's code,
	// once. (What the adapter itself refuses never reaches the Broker.)
	deadLetter := map[string]int{
		"adapter: body over 25 MiB is forwarded, the recorder refuses it": 413,
		"adapter: create without a repository":                            400,
		"adapter: branch name with a dot-dot":                             400,
		"adapter: branch name starting with a dot":                        400,
	}
	// A 26 MiB event through the in-memory channel: in one run of four
	// here the channel's own delivery to the broker filter failed too, and
	// Knative dead-lettered the event a second time, without a code. The
	// recorder's 413 is what this row proves.
	mayRepeat := map[string]bool{"adapter: body over 25 MiB is forwarded, the recorder refuses it": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := written(t, s)
			req := tt.req()
			code, body := do(t, req)
			if code != tt.want {
				t.Fatalf("answered %d (%s), want %d", code, body, tt.want)
			}
			if tt.silent && body != "" {
				t.Fatalf("answered %d with %q, want an empty body", code, body)
			}
			if want, ok := deadLetter[tt.name]; ok {
				// The ingress answers once the dead-letter sink has it; on a
				// loaded machine a 26 MiB event's delivery may still be in the
				// channel's retries when the adapter answers, so wait for it.
				id := req.Header.Get("X-GitHub-Delivery")
				var got []string
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
					got = got[:0]
					for _, d := range s.DeadLetter().Events() {
						if d.ID == id {
							got = append(got, d.ErrorCode)
						}
					}
					if slices.Contains(got, strconv.Itoa(want)) || time.Now().After(deadline) {
						break
					}
				}
				switch {
				case mayRepeat[tt.name] && slices.Contains(got, strconv.Itoa(want)):
					t.Logf("dead-lettered with knativeerrorcode %v", got)
				case fmt.Sprint(got) != fmt.Sprint([]string{strconv.Itoa(want)}):
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
			name := naming.BranchName("bad/names", ghwebhook.Repo("bad/names").ID(), branch)
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

	// GitHub sends UTF-8 only, and a forged body fails the signature check;
	// a signed one with invalid bytes is accepted by the adapter, whose
	// encoding/json turns them into U+FFFD before the recorder (which
	// refuses invalid UTF-8 itself, above) sees them.
	t.Run("adapter: invalid UTF-8 arrives as U+FFFD", func(t *testing.T) {
		code, body := do(t, signed("create", invalidUTF8))
		if code != http.StatusAccepted {
			t.Fatalf("answered %d (%s), want 202", code, body)
		}
		got, err := gp.StableV1().Branches(s.Namespace()).Get(ctx, naming.BranchName("bad/utf8", 0, "a\uFFFD\uFFFD"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Name != "a\uFFFD\uFFFD" {
			t.Fatalf("branch name %q, want %q", got.Spec.Name, "a\uFFFD\uFFFD")
		}
	})

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
