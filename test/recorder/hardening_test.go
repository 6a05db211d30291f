package recorder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/githubevent"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// post sends e in structured mode and returns the answer code and text, so
// tests can check what a webhook sender learns.
func (h *harness) post(t *testing.T, eventType, id string, payload []byte) (int, string) {
	t.Helper()
	// The adapter's source is the GitHubSource's owner/repository, not the
	// payload's (which may be hostile here).
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(id)
	e.SetType(githubevent.TypePrefix + eventType)
	e.SetSource("https://github.com/acme")
	e.SetTime(time.Now())
	if err := e.SetData("application/json", payload); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

func (h *harness) objectCount(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	brs, err := h.env.Gitpulse.StableV1().Branches(h.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prs, err := h.env.Gitpulse.StableV1().PullRequests(h.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(brs.Items) + len(prs.Items)
}

// These two branches once had one object (their legacy names collided);
// deleting "fix" in acme/api-gateway marked acme/api's "gateway-fix" deleted.
func TestRecorder_BranchesThatReadAlikeInTwoRepositoriesStaySeparate(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	api := ghwebhook.Ref{Repo: "acme/api", Ref: "gateway-fix", Sender: "u", At: at}
	gateway := ghwebhook.Ref{Repo: "acme/api-gateway", Ref: "fix", Sender: "u", At: at}
	h.deliver(t, binary, "create", newDeliveryID(t), api.CreatePayload(), http.StatusOK)
	h.deliver(t, binary, "create", newDeliveryID(t), gateway.CreatePayload(), http.StatusOK)
	gateway.At = at.Add(time.Minute)
	h.deliver(t, binary, "delete", newDeliveryID(t), gateway.DeletePayload(), http.StatusOK)

	tests := []struct {
		repo, branch, state string
	}{
		{"acme/api", "gateway-fix", "created"},
		{"acme/api-gateway", "fix", "deleted"},
	}
	for _, tt := range tests {
		b := getBranch(t, h, tt.repo, tt.branch)
		if b.Spec.Repository != tt.repo || b.Spec.Name != tt.branch || b.Spec.State != tt.state {
			t.Errorf("%s %s: spec %s %s %s, want %s", tt.repo, tt.branch, b.Spec.Repository, b.Spec.Name, b.Spec.State, tt.state)
		}
	}
	if n := h.objectCount(t); n != 2 {
		t.Errorf("%d objects, want 2", n)
	}
}

// Item 1: an object under the name derived from a delivery that is about
// another identity is never overwritten: 500 (a bug, the Broker retries
// while an operator looks), a loud log line, nothing written, no detail in
// the answer.
func TestRecorder_RefusesToOverwriteAnObjectOfAnotherIdentity(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	ctx := context.Background()
	squatter := &stablev1.Branch{
		ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName("acme/api", ghwebhook.Repo("acme/api").ID(), "main")},
		Spec:       stablev1.BranchSpec{Name: "main", State: "created", Repository: "acme/other", PushCount: 7},
	}
	if _, err := env.Gitpulse.StableV1().Branches(h.ns).Create(ctx, squatter, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	id := newDeliveryID(t)
	code, text := h.post(t, "push", id, ghwebhook.Push{Repo: "acme/api", Branch: "main", After: "abc", Pusher: "u", At: time.Now().Add(-time.Minute)}.Payload())
	if code != http.StatusInternalServerError {
		t.Fatalf("answered %d %q, want 500\n%s", code, text, h.logs)
	}
	if strings.Contains(text, squatter.Name) || strings.Contains(text, "acme/other") {
		t.Errorf("the answer %q names internal objects", text)
	}
	if !strings.Contains(h.logs.String(), "BUG") || !strings.Contains(h.logs.String(), id) {
		t.Errorf("no loud log line for %s:\n%s", id, h.logs)
	}
	got, err := env.Gitpulse.StableV1().Branches(h.ns).Get(ctx, squatter.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Repository != "acme/other" || got.Spec.PushCount != 7 {
		t.Errorf("the object of another identity was written: %+v", got.Spec)
	}
	if evs := h.events(t); len(evs) != 0 {
		t.Errorf("%d Events written", len(evs))
	}
}

// An object recorded from a delivery without the repository id (hand-made,
// as the tests' own are) is the same object for a delivery with it: found
// by its spec (repository name and key), it learns the id and keeps its
// name; a branch of another repository that reads alike stays apart.
func TestRecorder_AnObjectRecordedWithoutTheRepositoryIDLearnsIt(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	ctx := context.Background()
	byName := &stablev1.Branch{
		ObjectMeta: metav1.ObjectMeta{Name: naming.BranchName("acme/api", 0, "gateway-fix")},
		Spec:       stablev1.BranchSpec{Name: "gateway-fix", State: "created", Repository: "acme/api", PushCount: 3},
	}
	if _, err := env.Gitpulse.StableV1().Branches(h.ns).Create(ctx, byName, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	// Pushes to the branch recorded by name, and to one that reads alike.
	h.deliver(t, binary, "push", newDeliveryID(t), ghwebhook.Push{Repo: "acme/api", Branch: "gateway-fix", After: "a1", Pusher: "u", At: at}.Payload(), http.StatusOK)
	h.deliver(t, binary, "push", newDeliveryID(t), ghwebhook.Push{Repo: "acme/api-gateway", Branch: "fix", After: "b1", Pusher: "u", At: at}.Payload(), http.StatusOK)

	adopted, err := env.Gitpulse.StableV1().Branches(h.ns).Get(ctx, byName.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if adopted.Spec.PushCount != 4 || adopted.Spec.HeadSHA != "a1" || adopted.Spec.RepositoryID != ghwebhook.Repo("acme/api").ID() {
		t.Errorf("the object recorded by name was not the delivery's: %+v", adopted.Spec)
	}
	other, err := findBranch(h, "acme/api-gateway", "fix")
	if err != nil {
		t.Fatal(err)
	}
	if other.Spec.PushCount != 1 || other.Spec.HeadSHA != "b1" {
		t.Errorf("acme/api-gateway fix: %+v", other.Spec)
	}
	if n := h.objectCount(t); n != 2 {
		t.Errorf("%d objects, want 2", n)
	}
}

// Item 2: names GitHub never sends are refused with 400 and write nothing.
func TestRecorder_RefusesControlCharactersAndWhitespaceInNames(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	at := time.Now().Add(-time.Minute)
	tests := []struct {
		name, repo, branch string
	}{
		{"NUL in the repository", "acme/api\x00", "main"},
		{"CR LF in the repository", "acme/api\r\nx", "main"},
		{"tab in the repository", "acme/a\tb", "main"},
		{"space in the repository", "acme/a b", "main"},
		{"DEL in the repository", "acme/a\x7f", "main"},
		{"NUL in the branch", "acme/api", "a\x00b"},
		{"LF in the branch", "acme/api", "a\nb"},
		{"space in the branch", "acme/api", "a b"},
		{"dot dot in the branch", "acme/api", "a..b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ghwebhook.Ref{Repo: ghwebhook.Repo(tt.repo), Ref: tt.branch, Sender: "u", At: at}.CreatePayload()
			if code, text := h.post(t, "create", newDeliveryID(t), body); code != http.StatusBadRequest {
				t.Fatalf("answered %d %q, want 400", code, text)
			}
		})
	}
	if n := h.objectCount(t); n != 0 {
		t.Errorf("%d objects written", n)
	}
	if evs := h.events(t); len(evs) != 0 {
		t.Errorf("%d Events written", len(evs))
	}
}

// Item 3: one forged "updated_at: 2099" used to leave a pull request merged
// for ever. It is refused (400, nothing written) and real deliveries keep
// moving the object.
func TestRecorder_AFutureTimestampCannotFreezeAPullRequest(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env, func(o *recorder.Options) { o.MaxClockSkew = 10 * time.Minute })
	now := time.Now().UTC().Truncate(time.Second)
	pr := ghwebhook.PullRequest{Repo: "acme/api", Number: 7, Action: "opened", User: "u", Title: "t", Head: "x",
		HeadSHA: "a1", CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour)}
	h.deliver(t, binary, "pull_request", newDeliveryID(t), pr.Payload(), http.StatusOK)

	forged := pr
	forged.Action, forged.Merged, forged.UpdatedAt = "closed", true, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	within := pr
	within.Action, within.UpdatedAt = "edited", now.Add(5*time.Minute)
	tests := []struct {
		name string
		pr   ghwebhook.PullRequest
		want int
	}{
		{"forged merge in 2099", forged, http.StatusBadRequest},
		{"an hour beyond the skew", func() ghwebhook.PullRequest { p := forged; p.UpdatedAt = now.Add(70 * time.Minute); return p }(), http.StatusBadRequest},
		{"within the skew", within, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newDeliveryID(t)
			if code, text := h.post(t, "pull_request", id, tt.pr.Payload()); code != tt.want {
				t.Fatalf("answered %d %q, want %d", code, text, tt.want)
			}
			if tt.want != http.StatusOK {
				if _, err := env.Kube.CoreV1().Events(h.ns).Get(context.Background(), naming.EventName(id), metav1.GetOptions{}); err == nil {
					t.Errorf("a refused delivery wrote its Event")
				}
			}
		})
	}
	got, err := findPullRequest(h, "acme/api", 7)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Merged || got.Spec.Status != "open" {
		t.Errorf("pull request %s merged=%v, want open", got.Spec.Status, got.Spec.Merged)
	}
	// A real close six minutes from now is still applied: the object did not freeze.
	closed := pr
	closed.Action, closed.UpdatedAt = "closed", now.Add(6*time.Minute)
	h.deliver(t, binary, "pull_request", newDeliveryID(t), closed.Payload(), http.StatusOK)
	got, _ = findPullRequest(h, "acme/api", 7)
	if got.Spec.Status != "closed" {
		t.Errorf("after a real close the pull request is %s", got.Spec.Status)
	}
}

// Item 5: etcd refuses a 1.6 MB title ("request is too large"); that is
// never retryable, so 413, and the answer says nothing internal.
func TestRecorder_ObjectTooLargeForEtcdAnswers413WithoutInternals(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	now := time.Now().UTC().Truncate(time.Second)
	pr := ghwebhook.PullRequest{Repo: "acme/api", Number: 9, Action: "opened", User: "u", Title: strings.Repeat("t", 1600<<10),
		Head: "x", HeadSHA: "a1", CreatedAt: now, UpdatedAt: now}
	id := newDeliveryID(t)
	code, text := h.post(t, "pull_request", id, pr.Payload())
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("answered %d %q, want 413\n%s", code, text, h.logs)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(env.ControlPlane.Config().Host, "https://"), "http://")
	for _, secret := range []string{"etcd", host, naming.PullRequestName("acme/api", ghwebhook.Repo("acme/api").ID(), 9), h.ns} {
		if strings.Contains(text, secret) {
			t.Errorf("the answer %q contains %q", text, secret)
		}
	}
	if !strings.Contains(h.logs.String(), "request is too large") || !strings.Contains(h.logs.String(), id) {
		t.Errorf("the log does not say why:\n%s", h.logs)
	}
}

// Item 6: with GITPULSE_ALLOWED_OWNERS, deliveries for other owners are
// acknowledged (so nothing retries them) and not recorded.
func TestRecorder_DeliveriesForOwnersNotAllowedAreAcknowledgedAndNotRecorded(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env, func(o *recorder.Options) { o.AllowedOwners = []string{"acme"} })
	at := time.Now().Add(-time.Minute)
	tests := []struct {
		repo     ghwebhook.Repo
		recorded bool
	}{
		{"acme/api", true},
		{"ACME/web", true},
		{"stray/api", false},
		{"acme-evil/api", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.repo), func(t *testing.T) {
			id := newDeliveryID(t)
			h.deliver(t, binary, "create", id, ghwebhook.Ref{Repo: tt.repo, Ref: "main", Sender: "u", At: at}.CreatePayload(), http.StatusOK)
			_, err := env.Kube.CoreV1().Events(h.ns).Get(context.Background(), naming.EventName(id), metav1.GetOptions{})
			if (err == nil) != tt.recorded {
				t.Errorf("recorded = %v, want %v", err == nil, tt.recorded)
			}
		})
	}
	if n := h.objectCount(t); n != 2 {
		t.Errorf("%d objects, want 2", n)
	}
}

// Item 8: the webhook signature does not cover X-GitHub-Delivery, so a
// captured body can be sent again under a fresh id. A payload identical to
// one of the object's recent deliveries is acknowledged and writes nothing:
// no second push counted, no Event for the metrics to count, no state
// change. A genuinely new push (new head) is recorded.
func TestRecorder_APayloadReplayedUnderANewDeliveryIDWritesNothing(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	at := time.Now().Add(-time.Minute)
	push := ghwebhook.Push{Repo: "acme/api", Branch: "main", Before: "a0", After: "a1", Pusher: "u", At: at}.Payload()
	h.deliver(t, binary, "push", newDeliveryID(t), push, http.StatusOK)
	tests := []struct {
		name      string
		body      []byte
		wantCount int64
		wantEvent bool
	}{
		{"the same payload under a new id", push, 1, false},
		{"again, in structured mode", push, 1, false},
		{"a new push", ghwebhook.Push{Repo: "acme/api", Branch: "main", Before: "a1", After: "a2", Pusher: "u", At: at.Add(time.Second)}.Payload(), 2, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newDeliveryID(t)
			h.deliver(t, modes[i%2], "push", id, tt.body, http.StatusOK)
			b := getBranch(t, h, "acme/api", "main")
			if b.Spec.PushCount != tt.wantCount {
				t.Errorf("pushCount %d, want %d", b.Spec.PushCount, tt.wantCount)
			}
			_, err := env.Kube.CoreV1().Events(h.ns).Get(context.Background(), naming.EventName(id), metav1.GetOptions{})
			if (err == nil) != tt.wantEvent {
				t.Errorf("Event written = %v, want %v", err == nil, tt.wantEvent)
			}
		})
	}
	if !strings.Contains(h.logs.String(), "delivery replayed") {
		t.Errorf("replays not logged:\n%s", h.logs)
	}
}

// Item 8, the other side: identical bytes are not always a replay. A branch
// created, deleted and created again within one second of pushed_at sends
// the first create's payload again; the state moved in between, so it is
// applied (and counted).
func TestRecorder_TheSamePayloadAfterTheStateMovedIsNotAReplay(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	ref := ghwebhook.Ref{Repo: "acme/api", Ref: "ci-tmp", Sender: "u", At: time.Now().Add(-time.Minute).Truncate(time.Second)}
	steps := []struct {
		event, state string
		body         []byte
	}{
		{"create", "created", ref.CreatePayload()},
		{"delete", "deleted", ref.DeletePayload()},
		{"create", "created", ref.CreatePayload()},
	}
	for i, s := range steps {
		id := newDeliveryID(t)
		h.deliver(t, binary, s.event, id, s.body, http.StatusOK)
		if got := getBranch(t, h, "acme/api", "ci-tmp").Spec.State; got != s.state {
			t.Fatalf("step %d (%s): state %s, want %s\n%s", i, s.event, got, s.state, h.logs)
		}
		h.event(t, naming.EventName(id))
	}
}
