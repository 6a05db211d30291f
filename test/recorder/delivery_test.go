package recorder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/octokit"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

const (
	helloWorld = "Codertocat/Hello-World"
	addReadme  = "feature/add-readme"
)

// withPush rewrites the hand-made push payload: a new head and push time.
func withPush(t *testing.T, head string, pushedAt int64) []byte {
	t.Helper()
	p := decode(t, readTestdata(t, "push-branch.json"))
	p["after"] = head
	p["repository"].(map[string]any)["pushed_at"] = pushedAt
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withoutPushedAt is a hand-made create or delete payload without
// repository.pushed_at, as GitHub may send for refs changed without a push.
func withoutPushedAt(t *testing.T, file string) []byte {
	t.Helper()
	p := decode(t, readTestdata(t, file))
	delete(p["repository"].(map[string]any), "pushed_at")
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecorder_RedeliveryWritesOneEventAndChangesNothing(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	id, body := newDeliveryID(t), readTestdata(t, "push-branch.json")
	h.deliver(t, binary, "push", id, body, http.StatusOK)
	first := getBranch(t, h, helloWorld, addReadme)
	for _, m := range modes {
		h.deliver(t, m, "push", id, body, http.StatusOK)
	}
	again := getBranch(t, h, helloWorld, addReadme)
	if again.ResourceVersion != first.ResourceVersion || again.Spec.PushCount != 1 {
		t.Errorf("redelivery changed the branch: resourceVersion %s -> %s, pushCount %d",
			first.ResourceVersion, again.ResourceVersion, again.Spec.PushCount)
	}
	if evs := h.events(t); len(evs) != 1 {
		t.Errorf("%d Events, want 1", len(evs))
	}
	if n := strings.Count(h.logs.String(), `"outcome":"duplicate"`); n != 3 {
		t.Errorf("%d deliveries logged as duplicate, want 3\n%s", n, h.logs)
	}
}

func TestRecorder_ConcurrentRedeliveryWritesOneEvent(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	id, body := newDeliveryID(t), readTestdata(t, "push-branch.json")
	const copies = 12
	codes := make(chan int, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- h.send(t, modes[i%len(modes)], adapterEvent(t, "push", id, body))
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Errorf("a copy answered %d\n%s", code, h.logs)
		}
	}
	if b := getBranch(t, h, helloWorld, addReadme); b.Spec.PushCount != 1 {
		t.Errorf("pushCount = %d after %d copies of one delivery, want 1", b.Spec.PushCount, copies)
	}
	if evs := h.events(t); len(evs) != 1 {
		t.Errorf("%d Events, want 1", len(evs))
	}
}

// TestRecorder_RedeliveryAfterItsEventExpiredIsNotCountedTwice: GitHub
// lets a delivery be redelivered for days, Events live an hour. A push
// redelivered two days later — its Event expired (deleted here, as the API
// server's TTL would), 25 later pushes to the same branch in between — is
// a no-op: the branch remembers the delivery by age, and a delivery it
// applied longer ago than the Event TTL gets no second Event.
func TestRecorder_RedeliveryAfterItsEventExpiredIsNotCountedTwice(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	first, firstBody := newDeliveryID(t), withPush(t, fmt.Sprintf("%040x", 0), base)
	h.deliver(t, binary, "push", first, firstBody, http.StatusOK)
	for i := 1; i <= 25; i++ {
		h.deliver(t, binary, "push", newDeliveryID(t), withPush(t, fmt.Sprintf("%040x", i), base+int64(i)), http.StatusOK)
	}
	before := getBranch(t, h, helloWorld, addReadme)
	if err := env.Kube.CoreV1().Events(h.ns).Delete(context.Background(), naming.EventName(first), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	later := startRecorder(t, env, func(o *recorder.Options) {
		o.Namespace = h.ns
		o.Now = func() time.Time { return time.Now().Add(49 * time.Hour) }
	})
	later.ns = h.ns
	later.deliver(t, structured, "push", first, firstBody, http.StatusOK)

	after := getBranch(t, h, helloWorld, addReadme)
	var m mismatch
	m.eq("pushCount", after.Spec.PushCount, 26)
	m.eq("resourceVersion", after.ResourceVersion, before.ResourceVersion)
	m.eq("Events", len(h.events(t)), 25)
	m.eq("logged as duplicate", strings.Contains(later.logs.String(), `"outcome":"duplicate"`), true)
	m.report(t, "after the late redelivery")
}

// TestRecorder_TwoReplicasDecideOnTheLiveObject: each replica starts from
// the object as it last wrote it, which another replica's writes make
// stale. Replicas taking turns on one branch — created, pushed to, deleted,
// created again (twice, once by a replica that writes a "create" without a
// read and finds the object), pushed to — end exact: every push counted
// once, the newest state and head, one Event per delivery.
func TestRecorder_TwoReplicasDecideOnTheLiveObject(t *testing.T) {
	env := testenv.Get(t)
	a := startRecorder(t, env)
	b := startRecorder(t, env, func(o *recorder.Options) { o.Namespace = a.ns; o.Instance = "recorder-test-1" })
	b.ns = a.ns
	// A third replica that has written nothing: its create is written
	// without a read and answers AlreadyExists.
	fresh := startRecorder(t, env, func(o *recorder.Options) { o.Namespace = a.ns; o.Instance = "recorder-test-2" })
	fresh.ns = a.ns
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ref := func(at time.Time, sender string) ghwebhook.Ref {
		return ghwebhook.Ref{Repo: helloWorld, Ref: addReadme, Sender: sender, At: at}
	}
	steps := []struct {
		h         *harness
		eventType string
		body      []byte
	}{
		{a, "create", ref(base, "u").CreatePayload()},
		{b, "push", withPush(t, fmt.Sprintf("%040x", 1), base.Unix()+1)},
		{a, "push", withPush(t, fmt.Sprintf("%040x", 2), base.Unix()+2)},
		{b, "delete", ref(base.Add(3*time.Second), "u").DeletePayload()},
		{a, "create", ref(base.Add(4*time.Second), "u").CreatePayload()},
		// Another create (not byte-identical: that would be a replay).
		{fresh, "create", ref(base.Add(4*time.Second), "v").CreatePayload()},
		{a, "push", withPush(t, fmt.Sprintf("%040x", 5), base.Unix()+5)},
		{b, "push", withPush(t, fmt.Sprintf("%040x", 6), base.Unix()+6)},
	}
	for _, s := range steps {
		s.h.deliver(t, binary, s.eventType, newDeliveryID(t), s.body, http.StatusOK)
	}
	got := getBranch(t, a, helloWorld, addReadme)
	var m mismatch
	m.eq("state", got.Spec.State, string(stablev1.BranchCreated))
	m.eq("pushCount", got.Spec.PushCount, 4)
	m.eq("headSHA", got.Spec.HeadSHA, fmt.Sprintf("%040x", 6))
	m.eq("objects", a.objectCount(t), 1)
	m.eq("Events", len(a.events(t)), len(steps))
	m.report(t, "after two replicas took turns")
}

// TestRecorder_OutOfOrderDeliveriesNeverMoveObjectsBackwards delivers
// sequences in the wrong order. Every delivery still gets its Event; the
// object ends where the newest delivery (by GitHub's time) put it.
func TestRecorder_OutOfOrderDeliveriesNeverMoveObjectsBackwards(t *testing.T) {
	env := testenv.Get(t)
	examples := octokit.Examples(t)
	byAction := map[string][]byte{}
	for _, raw := range examples["pull_request"] {
		if a := decode(t, raw).str("action"); byAction[a] == nil {
			byAction[a] = raw
		}
	}
	type delivery struct {
		eventType string
		body      []byte
		ceTime    string // for create/delete
	}
	tests := []struct {
		name   string
		in     []delivery
		winner int // index of the delivery the object must reflect
		check  func(t *testing.T, h *harness)
	}{{
		name:   "closed before opened",
		in:     []delivery{{"pull_request", byAction["closed"], ""}, {"pull_request", byAction["opened"], ""}},
		winner: 0,
		check: func(t *testing.T, h *harness) {
			expectPullRequest(t, h, binary, decode(t, byAction["closed"]), "")
		},
	}, {
		name: "old synchronize after merge",
		in: []delivery{{"pull_request", byAction["opened"], ""}, {"pull_request", readTestdata(t, "pull_request-merged.json"), ""},
			{"pull_request", readTestdata(t, "pull_request-synchronize.json"), ""}},
		winner: 1,
		check: func(t *testing.T, h *harness) {
			expectPullRequest(t, h, binary, decode(t, readTestdata(t, "pull_request-merged.json")), "")
		},
	}, {
		name:   "older push after a forced push",
		in:     []delivery{{"push", readTestdata(t, "push-branch-forced.json"), ""}, {"push", readTestdata(t, "push-branch.json"), ""}},
		winner: 0,
		check: func(t *testing.T, h *harness) {
			expectBranch(t, h, decode(t, readTestdata(t, "push-branch-forced.json")), "", 2)
		},
	}, {
		name: "create arriving after delete",
		in: []delivery{{"delete", readTestdata(t, "delete-branch.json"), "2019-05-15T15:21:21Z"},
			{"create", readTestdata(t, "create-branch.json"), "2019-05-15T15:20:56Z"}},
		winner: 0,
		check: func(t *testing.T, h *harness) {
			b := getBranch(t, h, helloWorld, addReadme)
			if b.Spec.State != "deleted" || fmtTime(b.Spec.DeletedAt) != "2019-05-15T15:21:21Z" {
				t.Errorf("state %s deletedAt %s, want deleted at 15:21:21", b.Spec.State, fmtTime(b.Spec.DeletedAt))
			}
		},
	}, {
		name: "create arriving after delete, without pushed_at: by the CloudEvent time",
		in: []delivery{{"delete", withoutPushedAt(t, "delete-branch.json"), "2026-01-01T10:00:05Z"},
			{"create", withoutPushedAt(t, "create-branch.json"), "2026-01-01T10:00:00Z"}},
		winner: 0,
		check: func(t *testing.T, h *harness) {
			b := getBranch(t, h, helloWorld, addReadme)
			if b.Spec.State != "deleted" || fmtTime(b.Spec.DeletedAt) != "2026-01-01T10:00:05Z" {
				t.Errorf("state %s deletedAt %s, want deleted at 10:00:05", b.Spec.State, fmtTime(b.Spec.DeletedAt))
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startRecorder(t, env)
			ids := make([]string, len(tt.in))
			for i, d := range tt.in {
				ids[i] = newDeliveryID(t)
				if d.ceTime != "" {
					atTime(t, h, modes[i%len(modes)], d.eventType, ids[i], d.body, d.ceTime, http.StatusOK)
				} else {
					h.deliver(t, modes[i%len(modes)], d.eventType, ids[i], d.body, http.StatusOK)
				}
			}
			tt.check(t, h)
			for _, id := range ids {
				h.event(t, naming.EventName(id)) // every delivery has its Event
			}
			if n := len(h.events(t)); n != len(tt.in) {
				t.Errorf("%d Events, want %d", n, len(tt.in))
			}
			if !strings.Contains(h.logs.String(), `"outcome":"stale"`) {
				t.Errorf("no delivery logged as stale\n%s", h.logs)
			}
			// The status names the delivery that put the object where it is.
			want := ids[tt.winner]
			var got string
			if tt.in[0].eventType == "pull_request" {
				prs, err := env.Gitpulse.StableV1().PullRequests(h.ns).List(context.Background(), metav1.ListOptions{})
				if err != nil || len(prs.Items) != 1 {
					t.Fatalf("pull requests: %v %v", prs, err)
				}
				got = prs.Items[0].Status.LastDeliveryID
			} else {
				got = getBranch(t, h, helloWorld, addReadme).Status.LastDeliveryID
			}
			if got != want {
				t.Errorf("status.lastDeliveryID = %s, want %s", got, want)
			}
		})
	}
}

// TestRecorder_ConcurrentPushesToOneBranchConverge sends many distinct
// pushes to one branch at once: every one counts, the newest sets the head,
// and the status matches the final generation.
func TestRecorder_ConcurrentPushesToOneBranchConverge(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	const pushes = 20
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	ids := make([]string, pushes)
	var wg sync.WaitGroup
	for i := range pushes {
		ids[i] = newDeliveryID(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := withPush(t, fmt.Sprintf("%040x", i), base+int64(i))
			e := adapterEvent(t, "push", ids[i], body)
			// 503 (conflicts still exhausted on a loaded machine) asks for a
			// retry: send again as the Broker would; exactly-once must hold.
			code := h.send(t, modes[i%len(modes)], e)
			for attempt := 0; code == http.StatusServiceUnavailable && attempt < 5; attempt++ {
				time.Sleep(time.Duration(100*(attempt+1)) * time.Millisecond)
				code = h.send(t, modes[i%len(modes)], e)
			}
			if code != http.StatusOK {
				t.Errorf("push %d answered %d", i, code)
			}
		}()
	}
	wg.Wait()
	b := getBranch(t, h, helloWorld, addReadme)
	var m mismatch
	m.eq("pushCount", b.Spec.PushCount, pushes)
	m.eq("headSHA", b.Spec.HeadSHA, fmt.Sprintf("%040x", pushes-1))
	m.eq("lastPushAt", fmtTime(b.Spec.LastPushAt), time.Unix(base+pushes-1, 0).UTC().Format(time.RFC3339))
	m.eq("status.lastDeliveryID", b.Status.LastDeliveryID, ids[pushes-1])
	m.eq("Events", len(h.events(t)), pushes)
	m.report(t, "after concurrent pushes")
}

// TestRecorder_RefusesWhatCanNeverSucceed: every 4xx, each logged with the
// delivery id and the reason, and nothing written.
func TestRecorder_RefusesWhatCanNeverSucceed(t *testing.T) {
	env := testenv.Get(t)
	const limit = 64 << 10
	h := startRecorder(t, env, func(o *recorder.Options) { o.MaxBodyBytes = limit })
	huge := decode(t, readTestdata(t, "pull_request-edited.json"))
	huge["pull_request"].(map[string]any)["body"] = strings.Repeat("x", limit)
	hugeBody, err := json.Marshal(huge)
	if err != nil {
		t.Fatal(err)
	}
	noRepo := decode(t, readTestdata(t, "push-branch.json"))
	delete(noRepo, "repository")
	noRepoBody, _ := json.Marshal(noRepo)

	tests := []struct {
		name      string
		eventType string
		body      []byte
		mutate    func(e *eventMutation)
		want      int
		reason    string
	}{
		{"malformed JSON", "push", []byte(`{"ref":"refs/heads/x","repository":`), nil, http.StatusBadRequest, "malformed payload"},
		{"payload of another type", "pull_request", readTestdata(t, "push-branch.json"), nil, http.StatusBadRequest, "does not match its event type"},
		{"missing repository", "push", noRepoBody, nil, http.StatusBadRequest, "names no repository"},
		{"not a GitHub event type", "push", readTestdata(t, "push-branch.json"), func(e *eventMutation) { e.typ = "com.example.push" }, http.StatusBadRequest, "not a GitHub event type"},
		{"data that is not JSON", "push", []byte(`ref=refs/heads/x`), func(e *eventMutation) { e.contentType = "text/plain" }, http.StatusBadRequest, "is not JSON"},
		{"data over the limit", "pull_request", hugeBody, nil, http.StatusRequestEntityTooLarge, "over the 65536 byte limit"},
	}
	// The adapter itself refuses these (400 to GitHub: broken JSON, and a
	// push body does not fit its pull_request struct), so they reach the
	// recorder only in GitHub's raw shape, from another source.
	rawOnly := map[string]bool{"malformed JSON": true, "data that is not JSON": true, "payload of another type": true}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newDeliveryID(t)
			m := modes[i%2]
			if rawOnly[tt.name] {
				m = rawModes[i%2]
			}
			e := m.event(t, tt.eventType, id, tt.body)
			if tt.mutate != nil {
				mut := eventMutation{typ: e.Type(), contentType: e.DataContentType()}
				tt.mutate(&mut)
				e.SetType(mut.typ)
				if err := e.SetData(mut.contentType, tt.body); err != nil {
					t.Fatal(err)
				}
			}
			if got := h.send(t, m, e); got != tt.want {
				t.Fatalf("answered %d, want %d\n%s", got, tt.want, h.logs)
			}
			var logged bool
			for _, line := range strings.Split(h.logs.String(), "\n") {
				if strings.Contains(line, `"delivery refused"`) && strings.Contains(line, id) &&
					strings.Contains(line, fmt.Sprintf(`"code":%d`, tt.want)) && strings.Contains(line, tt.reason) {
					logged = true
				}
			}
			if !logged {
				t.Errorf("no log line refusing %s with %d and %q\n%s", id, tt.want, tt.reason, h.logs)
			}
		})
	}
	if evs := h.events(t); len(evs) != 0 {
		t.Errorf("refused deliveries wrote %d Events", len(evs))
	}
	brs, _ := env.Gitpulse.StableV1().Branches(h.ns).List(context.Background(), metav1.ListOptions{})
	prs, _ := env.Gitpulse.StableV1().PullRequests(h.ns).List(context.Background(), metav1.ListOptions{})
	if len(brs.Items)+len(prs.Items) != 0 {
		t.Errorf("refused deliveries wrote objects")
	}
}

type eventMutation struct{ typ, contentType string }

// TestRecorder_AnswersServiceUnavailableWhileTheAPIServerIsDown kills a
// private API server: deliveries answer 503 (the Broker retries), and the
// same deliveries succeed once it is back.
func TestRecorder_AnswersServiceUnavailableWhileTheAPIServerIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	private, err := testenv.Start(ctx, controlplane.Options{})
	if err != nil {
		t.Fatalf("private control plane: %v", err)
	}
	t.Cleanup(private.ControlPlane.Stop)
	// A namespace of its own: after a SIGKILL the restarted API server's
	// repair controllers may record Events of their own in "default".
	ns := private.Namespace(t)
	h := startRecorder(t, private, func(o *recorder.Options) {
		o.Namespace = ns
	})
	h.ns = ns
	h.deliver(t, binary, "push", newDeliveryID(t), withPush(t, "a", 1767225600), http.StatusOK)

	private.ControlPlane.Kill()
	down := newDeliveryID(t)
	downBody := withPush(t, "b", 1767225660)
	start := time.Now()
	h.deliver(t, structured, "push", down, downBody, http.StatusServiceUnavailable)
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the 503 took %s", took)
	}
	if !strings.Contains(h.logs.String(), down) {
		t.Errorf("the 503 was not logged with its delivery id\n%s", h.logs)
	}

	if err := private.ControlPlane.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	h.deliver(t, structured, "push", down, downBody, http.StatusOK)
	b := getBranch(t, h, helloWorld, addReadme)
	if b.Spec.PushCount != 2 || b.Spec.HeadSHA != "b" {
		t.Errorf("after recovery: pushCount %d head %s, want 2 b", b.Spec.PushCount, b.Spec.HeadSHA)
	}
	if evs := h.events(t); len(evs) != 2 {
		t.Errorf("%d Events, want 2:%s", len(evs), describeEvents(evs))
	}
}

// TestRecorder_RetryFinishesAHalfRecordedDelivery makes the Event write
// fail (RBAC denies it) after the object write (change, delivery id and
// status in one) succeeded: the retry of the same delivery writes the
// missing Event and never applies the change twice. The user has the
// recorder's verbs on the objects (get, list for a lookup by spec, create,
// update) and may not write Events.
func TestRecorder_RetryFinishesAHalfRecordedDelivery(t *testing.T) {
	env := testenv.Get(t)
	ns := env.Namespace(t)
	const user = "gitpulse-test-recorder"
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{stablev1.GroupName}, Resources: []string{"branches", "pullrequests"}, Verbs: []string{"get", "list", "create", "update"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"get"}},
	}
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "recorder", Namespace: ns}, Rules: rules}
	if _, err := env.Kube.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "recorder", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "recorder"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := env.Kube.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grant := func(rule rbacv1.PolicyRule) {
		t.Helper()
		role.Rules = append(role.Rules, rule)
		if _, err := env.Kube.RbacV1().Roles(ns).Update(ctx, role, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the authorizer's informer catches up
	}
	cfg := rest.CopyConfig(env.Config())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	h := startRecorder(t, env, func(o *recorder.Options) {
		o.Kube = kubernetes.NewForConfigOrDie(cfg)
		o.Gitpulse = versioned.NewForConfigOrDie(cfg)
		o.Namespace = ns
	})
	h.ns = ns

	id, body := newDeliveryID(t), readTestdata(t, "push-branch.json")
	h.deliver(t, binary, "push", id, body, http.StatusInternalServerError) // Event write forbidden
	b := getBranch(t, h, helloWorld, addReadme)
	if b.Spec.PushCount != 1 || b.Status.LastDeliveryID != id {
		t.Fatalf("after the first attempt: pushCount %d, status %+v", b.Spec.PushCount, b.Status)
	}
	h.deliver(t, structured, "push", id, body, http.StatusInternalServerError) // still forbidden
	if b = getBranch(t, h, helloWorld, addReadme); b.Spec.PushCount != 1 {
		t.Fatalf("after the second attempt: pushCount %d", b.Spec.PushCount)
	}
	if n := len(h.events(t)); n != 0 {
		t.Fatalf("%d Events before events/create was granted", n)
	}

	grant(rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}})
	h.deliver(t, base64Mode, "push", id, body, http.StatusOK)
	b = expectBranch(t, h, decode(t, body), id, 1)
	expectEvent(t, h, id, "Branch", &b.ObjectMeta, "pushed", stablev1.ReasonBranchPushed, addReadme)
	if !strings.Contains(h.logs.String(), `"outcome":"completed"`) {
		t.Errorf("the last attempt was not logged as completing the delivery\n%s", h.logs)
	}
}

// TestRecorder_AcknowledgesGitHubEventsItDoesNotRecord: GitHub event types
// the recorder has no object for (and ones go-github does not know yet) are
// answered 2xx, logged at debug, and change nothing.
func TestRecorder_AcknowledgesGitHubEventsItDoesNotRecord(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	repo := `"repository":{"full_name":"Codertocat/Hello-World"}`
	for i, d := range []struct{ eventType, body string }{
		{"issues", `{"action":"opened","issue":{"number":1},` + repo + `}`},
		{"watch", `{"action":"started",` + repo + `}`},
		{"a_future_event", `{"action":"happened",` + repo + `}`},
		{"ping", `{"zen":"Keep it logically awesome.","hook_id":1}`},
	} {
		id := newDeliveryID(t)
		// a_future_event only arrives raw: the adapter answers GitHub 404
		// for types outside its ValidEvents.
		m := []mode{binary, rawStructured, rawBase64, structured}[i]
		h.deliver(t, m, d.eventType, id, []byte(d.body), http.StatusOK)
		if !strings.Contains(h.logs.String(), id) || !strings.Contains(h.logs.String(), `"level":"DEBUG","msg":"delivery ignored"`) {
			t.Errorf("%s was not logged as ignored\n%s", d.eventType, h.logs)
		}
	}
	if n := len(h.events(t)); n != 0 {
		t.Errorf("%d Events for ignored deliveries", n)
	}
}
