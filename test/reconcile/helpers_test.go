package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	recorderfn "github.com/liatrio/gitpulse/functions/recorder"
	"github.com/liatrio/gitpulse/internal/controlplane"
	"github.com/liatrio/gitpulse/internal/fakegithub"
	"github.com/liatrio/gitpulse/internal/functest"
	"github.com/liatrio/gitpulse/internal/ghadapter"
	"github.com/liatrio/gitpulse/internal/ghwebhook"
	"github.com/liatrio/gitpulse/internal/intake"
	"github.com/liatrio/gitpulse/internal/testenv"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/naming"
	"github.com/liatrio/gitpulse/pkg/reconcile"
	"github.com/liatrio/gitpulse/pkg/recorder"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	token = "ghp_test-token"
	repo  = "acme/widgets"
)

var secret = []byte("webhook-secret")

var crdOnce sync.Once

// world is one namespace with the whole delivery path: a fake GitHub whose
// hook points at the webhook intake (the GitHubSource adapter's stand-in),
// an outage gate in front of it, the recorder behind it, and a
// GitHubSource naming the fake GitHub.
type world struct {
	t    *testing.T
	env  *testenv.Env
	ns   string
	gh   *fakegithub.Server
	dyn  dynamic.Interface
	rec  *recorder.Recorder
	hook int64
	// outage answers deliveries as the adapter does when the Broker does
	// not acknowledge (400); afterWrite forwards first and then fails
	// (the delivery recorded, GitHub told it failed).
	outage, afterWrite atomic.Bool
	seq                atomic.Int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	env := testenv.Get(t)
	crdOnce.Do(func() {
		// eventing-github's own GitHubSource CRD (`make eventing-github`).
		crds, err := ghadapter.ReadCRDs("")
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = controlplane.InstallCRDs(ctx, env.Config(), crds)
		}
		if err != nil {
			t.Fatalf("installing the GitHubSource CRD: %v", err)
		}
	})
	w := &world{t: t, env: env, ns: env.Namespace(t)}
	w.dyn = dynamic.NewForConfigOrDie(env.Config())
	rec, err := recorder.New(recorder.Options{Kube: env.Kube, Gitpulse: env.Gitpulse, Namespace: w.ns,
		Instance: "recorder-0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.rec = rec
	// Served as the function serves it (answers by pkg/function).
	srv := functest.CloudEvents(t, recorderfn.NewStarted(rec, slog.New(slog.NewTextHandler(io.Discard, nil))), map[string]string{})
	in, err := intake.New(intake.Options{Secret: secret, Target: srv.URL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gate := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case w.outage.Load():
			http.Error(rw, "the Broker did not acknowledge the event: answered 503", http.StatusBadRequest)
		case w.afterWrite.Load():
			in.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(rw, "gateway timeout", http.StatusGatewayTimeout)
		default:
			in.ServeHTTP(rw, r)
		}
	}))
	t.Cleanup(gate.Close)
	w.gh = fakegithub.New(fakegithub.Options{Token: token})
	t.Cleanup(w.gh.Close)
	w.hook = w.gh.AddRepoHook(repo, gate.URL+"/webhook", secret)
	_, err = env.Kube.CoreV1().Secrets(w.ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "gitpulse-github"},
		Data:       map[string][]byte{"accessToken": []byte(token), "secretToken": secret},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// source creates a GitHubSource for ownerAndRepo at the fake GitHub; with
// hookID != 0 its status carries the webhook id, as the source's
// controller sets it once GitHub created the hook.
func (w *world) source(name, ownerAndRepo string, hookID int64, annotations ...map[string]string) {
	w.t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sources.knative.dev/v1alpha1", "kind": "GitHubSource",
		"metadata": map[string]any{"name": name, "namespace": w.ns},
		"spec": map[string]any{
			"ownerAndRepository": ownerAndRepo,
			"eventTypes":         []any{"pull_request", "push", "create", "delete"},
			"githubAPIURL":       w.gh.URL(),
			"accessToken":        map[string]any{"secretKeyRef": map[string]any{"name": "gitpulse-github", "key": "accessToken"}},
			"secretToken":        map[string]any{"secretKeyRef": map[string]any{"name": "gitpulse-github", "key": "secretToken"}},
		},
	}}
	for _, a := range annotations {
		u.SetAnnotations(a)
	}
	ctx := context.Background()
	res := w.dyn.Resource(reconcile.GitHubSources).Namespace(w.ns)
	got, err := res.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if hookID != 0 {
		_ = unstructured.SetNestedField(got.Object, strconv.FormatInt(hookID, 10), "status", "webhookIDKey")
		if _, err := res.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) reconciler(mutate ...func(*reconcile.Options)) *reconcile.Reconciler {
	w.t.Helper()
	opts := reconcile.Options{Kube: w.env.Kube, Dynamic: w.dyn, Recorder: w.rec, Namespace: w.ns,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mutate {
		m(&opts)
	}
	r, err := reconcile.New(opts)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *world) pass(r *reconcile.Reconciler) reconcile.Report {
	w.t.Helper()
	rep, err := r.Pass(context.Background())
	if err != nil {
		w.t.Fatalf("pass: %v", err)
	}
	w.gh.Wait() // the redeliveries GitHub accepted (202) have been made
	return rep
}

// deliverPR makes GitHub deliver a pull_request event and returns its GUID
// and the status code the hook answered.
func (w *world) deliverPR(number int, action string, updated time.Time) (string, int) {
	w.t.Helper()
	id := fmt.Sprintf("%08d-0000-4000-8000-%012d", w.seq.Add(1), number)
	body := ghwebhook.PullRequest{Repo: repo, Number: number, Action: action, User: "octocat",
		Title: fmt.Sprintf("change %d", number), Head: fmt.Sprintf("feature-%d", number), HeadSHA: "abc",
		Merged: action == "closed", CreatedAt: updated.Add(-time.Hour), UpdatedAt: updated}.Payload()
	code := w.gh.Deliver(context.Background(), repo, ghwebhook.Delivery{Event: "pull_request", ID: id, Body: body})
	return id, code
}

// eventsFor counts the Events in the namespace per delivery id and, for
// Reconciled ones, per involved object.
func (w *world) events() (byDelivery map[string]int, reconciled map[string]int) {
	w.t.Helper()
	list, err := w.env.Kube.CoreV1().Events(w.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	byDelivery, reconciled = map[string]int{}, map[string]int{}
	for _, e := range list.Items {
		if e.Reason == stablev1.ReasonReconciled {
			reconciled[e.InvolvedObject.Name]++
			if e.ReportingController != stablev1.ReconcilerController {
				w.t.Errorf("Reconciled Event %s reports as %q", e.Name, e.ReportingController)
			}
			continue
		}
		byDelivery[stablev1.DeliveryID(&e)]++
	}
	return byDelivery, reconciled
}

func (w *world) hasEvent(guid string) bool {
	_, err := w.env.Kube.CoreV1().Events(w.ns).Get(context.Background(), naming.EventName(guid), metav1.GetOptions{})
	return err == nil
}

func (w *world) cursor() *corev1.ConfigMap {
	w.t.Helper()
	list, err := w.env.Kube.CoreV1().ConfigMaps(w.ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: stablev1.LabelReconcileCursor + "=true"})
	if err != nil {
		w.t.Fatal(err)
	}
	if len(list.Items) != 1 {
		w.t.Fatalf("want one cursor ConfigMap, got %d", len(list.Items))
	}
	return &list.Items[0]
}

// apiPR is a pull request as GitHub's API lists it.
func apiPR(number int, state string, merged bool, updated time.Time) *github.PullRequest {
	pr := &github.PullRequest{
		Number: github.Int(number), State: github.String(state), Title: github.String(fmt.Sprintf("change %d", number)),
		User:      &github.User{Login: github.String("octocat")},
		Head:      &github.PullRequestBranch{Ref: github.String(fmt.Sprintf("feature-%d", number)), SHA: github.String("sha" + strconv.Itoa(number))},
		Base:      &github.PullRequestBranch{Ref: github.String("main")},
		HTMLURL:   github.String(fmt.Sprintf("https://github.com/%s/pull/%d", repo, number)),
		Draft:     github.Bool(false),
		CreatedAt: &github.Timestamp{Time: updated.Add(-48 * time.Hour)}, UpdatedAt: &github.Timestamp{Time: updated},
	}
	if state == "closed" {
		pr.ClosedAt = &github.Timestamp{Time: updated}
		if merged {
			pr.MergedAt = &github.Timestamp{Time: updated}
		}
	}
	return pr
}
