package recorder_test

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/client/clientset/versioned"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

// A repository renamed (or transferred) on GitHub keeps its id: the same
// pull request (with its reviews), branch and deployment delivered before
// and after the rename is one object each, which keeps the name it was
// created under and follows the new name (spec, labels, annotations) with
// one Renamed Event that is not a delivery; a redelivery from before the
// rename is recorded once and never names the object back; a delivery
// without the repository id (hand-made) still lands on the object by its
// (new) name.
func TestRecorder_ARenamedRepositorysObjectsFollowIt(t *testing.T) {
	for _, tt := range []struct {
		name     string
		from, to string
		m        mode
	}{
		{"renamed, adapter shape", "acme/old-name", "acme/new-name", binary},
		{"transferred, raw shape", "acme/moving", "other-org/moving", rawStructured},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := testenv.Get(t)
			h := startRecorder(t, env)
			ctx := context.Background()
			old := ghwebhook.Repo(tt.from)
			id := old.ID()
			t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

			pr := ghwebhook.PullRequest{Repo: old, Number: 1, Action: "opened", User: "u", Title: "t", Head: "feature",
				HeadSHA: "a1", CreatedAt: t0, UpdatedAt: t0}
			dep := ghwebhook.Deployment{Repo: old, ID: 77, Environment: "production", Ref: "main", SHA: "a1", Creator: "u", CreatedAt: t0}
			before := []struct {
				event string
				id    string
				body  []byte
			}{
				{"pull_request", newDeliveryID(t), pr.Payload()},
				{"create", newDeliveryID(t), ghwebhook.Ref{Repo: old, Ref: "feature", Sender: "u", At: t0}.CreatePayload()},
				{"push", newDeliveryID(t), ghwebhook.Push{Repo: old, Branch: "feature", After: "a1", Pusher: "u", At: t0.Add(time.Second)}.Payload()},
				{"deployment", newDeliveryID(t), dep.Payload()},
				{"pull_request_review", newDeliveryID(t), ghwebhook.Review{PullRequest: pr, Action: "submitted", ID: 501, Reviewer: "r",
					State: "commented", SubmittedAt: t0.Add(time.Minute)}.Payload()},
			}
			for _, d := range before {
				h.deliver(t, tt.m, d.event, d.id, d.body, http.StatusOK)
			}
			prObj, err := findPullRequest(h, tt.from, 1)
			if err != nil {
				t.Fatal(err)
			}

			renamed := old.RenamedTo(tt.to)
			later := t0.Add(10 * time.Minute)
			prAfter := pr
			prAfter.Repo, prAfter.Action, prAfter.UpdatedAt, prAfter.HeadSHA = renamed, "synchronize", later, "b2"
			depAfter := dep
			depAfter.Repo = renamed
			after := []struct {
				event string
				body  []byte
			}{
				{"pull_request", prAfter.Payload()},
				{"pull_request_review", ghwebhook.Review{PullRequest: prAfter, Action: "submitted", ID: 502, Reviewer: "r",
					State: "approved", SubmittedAt: later.Add(time.Minute)}.Payload()},
				{"push", ghwebhook.Push{Repo: renamed, Branch: "feature", After: "b2", Pusher: "u", At: later}.Payload()},
				{"deployment_status", depAfter.Status(9001, "success", later.Add(2*time.Minute))},
			}
			for _, d := range after {
				h.deliver(t, tt.m, d.event, newDeliveryID(t), d.body, http.StatusOK)
			}
			// A redelivery from before the rename: recorded once (it was),
			// and it does not name the objects back.
			for _, d := range before {
				h.deliver(t, tt.m, d.event, d.id, d.body, http.StatusOK)
			}
			// A late delivery from before the rename under a new id: applied
			// (its push counts), but older than the name the object has.
			h.deliver(t, tt.m, "push", newDeliveryID(t),
				ghwebhook.Push{Repo: old, Branch: "feature", After: "a0", Pusher: "u", At: t0.Add(2 * time.Second)}.Payload(), http.StatusOK)
			// A hand-made delivery without the repository id, under the new name.
			h.deliver(t, tt.m, "push", newDeliveryID(t), []byte(`{"ref":"refs/heads/feature","after":"c3","pusher":{"name":"u"},`+
				`"repository":{"full_name":"`+tt.to+`","name":"x","owner":{"login":"x"},"pushed_at":`+
				strconv.FormatInt(later.Add(time.Minute).Unix(), 10)+`}}`), http.StatusOK)

			gp := env.Gitpulse.StableV1()
			prs, err := gp.PullRequests(h.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			brs, err := gp.Branches(h.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			deps, err := gp.GitHubDeployments(h.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(prs.Items) != 1 || len(brs.Items) != 1 || len(deps.Items) != 1 {
				t.Fatalf("%d pull requests, %d branches, %d deployments; want one of each", len(prs.Items), len(brs.Items), len(deps.Items))
			}
			type followed struct {
				kind string
				meta metav1.ObjectMeta
				repo string
				id   int64
			}
			p, b, d := prs.Items[0], brs.Items[0], deps.Items[0]
			for _, o := range []followed{
				{"PullRequest", p.ObjectMeta, p.Spec.Repository, p.Spec.RepositoryID},
				{"Branch", b.ObjectMeta, b.Spec.Repository, b.Spec.RepositoryID},
				{"GitHubDeployment", d.ObjectMeta, d.Spec.Repository, d.Spec.RepositoryID},
			} {
				var m mismatch
				m.eq("spec.repository", o.repo, tt.to)
				m.eq("spec.repositoryID", o.id, id)
				m.lean(&o.meta)
				// Names are immutable: the prefix it was created with.
				m.eq("name keeps its prefix", strings.HasPrefix(o.meta.Name, strings.ReplaceAll(strings.ReplaceAll(tt.from, "/", "-"), "_", "-")), true)
				m.report(t, o.kind+" "+o.meta.Name)
			}
			var m mismatch
			m.eq("pull request name", p.Name, prObj.Name)
			m.eq("pull request githubID", p.Spec.GitHubID, int64(1_000_001))
			m.eq("pull request head", p.Spec.HeadSHA, "b2")
			m.eq("reviews", p.Spec.ReviewCount, int64(2))
			m.eq("approvals", p.Spec.ApprovalCount, int64(1))
			m.eq("branch pushes", b.Spec.PushCount, int64(4)) // before, after, the late one, the hand-made one
			m.eq("branch head", b.Spec.HeadSHA, "c3")
			m.eq("deployment state", d.Spec.State, "success")
			m.report(t, "after the rename")

			renamedEvents := map[string]int{}
			deliveries := 0
			for _, ev := range h.events(t) {
				switch ev.Reason {
				case stablev1.ReasonRenamed:
					renamedEvents[ev.InvolvedObject.Kind]++
					if ev.ReportingController == stablev1.ReportingController || ev.Annotations[stablev1.AnnotationRepository] != tt.to ||
						!strings.Contains(ev.Message, tt.from) {
						t.Errorf("Renamed Event %s: controller %q repository %q message %q", ev.Name, ev.ReportingController,
							ev.Annotations[stablev1.AnnotationRepository], ev.Message)
					}
				default:
					if ev.ReportingController == stablev1.ReportingController {
						deliveries++
					}
				}
			}
			if want := map[string]int{"PullRequest": 1, "Branch": 1, "GitHubDeployment": 1}; !maps.Equal(renamedEvents, want) {
				t.Errorf("Renamed Events %v, want %v:%s", renamedEvents, want, describeEvents(h.events(t)))
			}
			if want := len(before) + len(after) + 2; deliveries != want {
				t.Errorf("%d delivery Events, want %d (one per distinct delivery):%s", deliveries, want, describeEvents(h.events(t)))
			}
		})
	}
}

// countingTransport counts the API requests a recorder makes.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

// What a rename costs in API requests: the common path stays two requests
// per delivery (object write, Event create); the first delivery after a
// rename that the replica does not remember costs a read under the new name
// (404) and one list by spec, then writes the object and two Events (the
// delivery's and Renamed); the next delivery takes the common path again.
func TestRecorder_ARenameCostsOneLookupThenTheCommonPath(t *testing.T) {
	env := testenv.Get(t)
	counter := &countingTransport{}
	cfg := rest.CopyConfig(env.Config())
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter }
	h := startRecorder(t, env, func(o *recorder.Options) {
		o.Kube = kubernetes.NewForConfigOrDie(cfg)
		o.Gitpulse = versioned.NewForConfigOrDie(cfg)
	})
	old := ghwebhook.Repo("costs/before")
	renamed := old.RenamedTo("costs/after")
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	pr := func(repo ghwebhook.Repo, action string, at time.Time) []byte {
		return ghwebhook.PullRequest{Repo: repo, Number: 3, Action: action, User: "u", Title: "t", Head: "h", HeadSHA: "a",
			CreatedAt: t0, UpdatedAt: at}.Payload()
	}
	steps := []struct {
		name string
		body []byte
		want []string
	}{
		{"opened: created first", pr(old, "opened", t0), []string{"POST pullrequests", "POST events"}},
		{"synchronize: from the replica's own write", pr(old, "synchronize", t0.Add(time.Minute)), []string{"PUT pullrequests", "POST events"}},
		{"the first after the rename: read, lookup by spec, write, two Events", pr(renamed, "synchronize", t0.Add(2*time.Minute)),
			[]string{"GET pullrequests", "GET pullrequests", "PUT pullrequests", "POST events", "POST events"}},
		{"the next: the common path", pr(renamed, "edited", t0.Add(3*time.Minute)), []string{"PUT pullrequests", "POST events"}},
	}
	for _, s := range steps {
		counter.take()
		h.deliver(t, binary, "pull_request", newDeliveryID(t), s.body, http.StatusOK)
		var got []string
		for _, r := range counter.take() {
			parts := strings.Split(r, "/")
			resource := parts[len(parts)-1]
			if strings.Count(r, "/") > 0 && len(parts) >= 2 && (parts[len(parts)-2] == "pullrequests" || parts[len(parts)-2] == "events") {
				resource = parts[len(parts)-2] // a named object
			}
			got = append(got, strings.SplitN(r, " ", 2)[0]+" "+resource)
		}
		if strings.Join(got, ", ") != strings.Join(s.want, ", ") {
			t.Errorf("%s: requests %v, want %v", s.name, got, s.want)
		}
	}
}

// A branch deleted before its repository was renamed and created again
// after it: a replica that has made an object of the repository follow the
// rename no longer creates first for that repository, so it finds the
// branch's object under its former name instead of making a second one.
// (A replica that has not seen the rename still creates first: the window
// docs/object-names.md describes.)
func TestRecorder_ABranchCreatedAgainAfterARenameIsOneObject(t *testing.T) {
	env := testenv.Get(t)
	h := startRecorder(t, env)
	old := ghwebhook.Repo("recreate/before")
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	h.deliver(t, binary, "create", newDeliveryID(t), ghwebhook.Ref{Repo: old, Ref: "hotfix", Sender: "u", At: t0}.CreatePayload(), http.StatusOK)
	h.deliver(t, binary, "create", newDeliveryID(t), ghwebhook.Ref{Repo: old, Ref: "main", Sender: "u", At: t0}.CreatePayload(), http.StatusOK)
	h.deliver(t, binary, "delete", newDeliveryID(t), ghwebhook.Ref{Repo: old, Ref: "hotfix", Sender: "u", At: t0.Add(time.Minute)}.DeletePayload(), http.StatusOK)
	renamed := old.RenamedTo("recreate/after")
	// The replica sees the rename (main follows it)...
	h.deliver(t, binary, "push", newDeliveryID(t), ghwebhook.Push{Repo: renamed, Branch: "main", After: "m1", Pusher: "u", At: t0.Add(2 * time.Minute)}.Payload(), http.StatusOK)
	// ...then hotfix is created again.
	h.deliver(t, binary, "create", newDeliveryID(t), ghwebhook.Ref{Repo: renamed, Ref: "hotfix", Sender: "u", At: t0.Add(3 * time.Minute)}.CreatePayload(), http.StatusOK)

	brs, err := env.Gitpulse.StableV1().Branches(h.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(brs.Items) != 2 {
		t.Fatalf("%d branches, want 2 (main, hotfix)", len(brs.Items))
	}
	b, err := findBranch(h, "recreate/after", "hotfix")
	if err != nil {
		t.Fatal(err)
	}
	if b.Spec.State != string(stablev1.BranchCreated) || !strings.HasPrefix(b.Name, "recreate-before-hotfix-") {
		t.Errorf("hotfix: %s %s, want created under its first name", b.Name, b.Spec.State)
	}
}
