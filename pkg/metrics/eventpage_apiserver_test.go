package metrics

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/liatrio/gitpulse/internal/controlplane"
	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
)

// startAPIServer starts a real API server for the test, stopped (and its
// context, of three minutes, cancelled) when the test ends, and creates a
// namespace ns of the test's own. The tests list every Event of their
// namespace, and in "default" one run listed an Event the test had not
// written, and failed.
func startAPIServer(t *testing.T) (ctx context.Context, cp *controlplane.ControlPlane, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cp, err := controlplane.Start(ctx, controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	ns = "gitpulse-events"
	_, err = kubernetes.NewForConfigOrDie(cp.Config()).CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, cp, ns
}

// TestEventLister_DecodesTheRealAPIServersPagesFast: a real API server's
// pages of Events take the fast read, which gives client-go's Events
// slimmed; the lister pages them, and an API error comes back as the API
// server's Status (a continue token the API server refuses is 400 or 410,
// not a decoding error).
func TestEventLister_DecodesTheRealAPIServersPagesFast(t *testing.T) {
	ctx, cp, ns := startAPIServer(t)
	kube := kubernetes.NewForConfigOrDie(cp.Config())
	for i := range 5 {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("delivery-%d", i), Namespace: ns,
			Annotations: map[string]string{stablev1.AnnotationRepository: "acme/api", stablev1.AnnotationEnvironment: "production"}},
			InvolvedObject: corev1.ObjectReference{Kind: "PullRequest", Namespace: ns, Name: "acme-api-pr-1"},
			Reason:         "Opened", Message: "opened", Type: corev1.EventTypeNormal, Action: "opened",
			EventTime:           metav1.NewMicroTime(time.Now()),
			ReportingController: stablev1.ReportingController, ReportingInstance: "recorder-1"}
		if _, err := kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clients, err := NewClients(cp.Config(), ns)
	if err != nil {
		t.Fatal(err)
	}
	lister := clients.ListEvents.(eventLister)

	// The raw page, as the lister asks for it.
	body, err := lister.rc.Get().Namespace(ns).Resource("events").SetHeader("Accept", "application/vnd.kubernetes.protobuf, application/json").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !pagesAlike(t, body) {
		t.Fatalf("the fast decode declined the API server's page (%d bytes)", len(body))
	}

	// Paged through the lister: every Event once, slimmed as client-go's.
	want, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []runtime.Object
	o := metav1.ListOptions{Limit: 2}
	for {
		page, err := lister.listSlim(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Items...)
		if page.Continue == "" {
			break
		}
		o.Continue = page.Continue
	}
	if w := slimmedEvents(want).Items; len(w) != 5 || !reflect.DeepEqual(got, w) {
		t.Errorf("listed %s, want %s", eventsText(got), eventsText(w))
	}

	_, err = lister.listSlim(ctx, metav1.ListOptions{Limit: 2, Continue: "not-a-token"})
	if !apierrors.IsBadRequest(err) && !apierrors.IsResourceExpired(err) {
		t.Errorf("a refused continue token: %v (%T), want the API server's Status", err, err)
	}
}

// TestEventLister_AnEventWrittenAsProtobufIsCountedInUTF8: the API server
// stores an Event's strings written as protobuf as they came, bytes that
// are not UTF-8 among them (its JSON decoder would have replaced them).
// Listed or watched, such an Event is counted with label values in UTF-8
// only: its environment with a U+FFFD for each such byte (environmentLabel), a
// repository with them not at all (not GitHub's owner/name).
func TestEventLister_AnEventWrittenAsProtobufIsCountedInUTF8(t *testing.T) {
	ctx, cp, ns := startAPIServer(t)
	cfg := cp.Config()
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	kube := kubernetes.NewForConfigOrDie(cfg)
	for name, repo := range map[string]string{"delivery-1": "acme/api", "delivery-2": "acme/\xffapi"} {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Annotations: map[string]string{stablev1.AnnotationRepository: repo, stablev1.AnnotationEnvironment: "prod\xfe\xfe"}},
			InvolvedObject: corev1.ObjectReference{Kind: stablev1.KindGitHubDeployment, Namespace: ns, Name: "acme-api-deployment-1"},
			Reason:         "DeploymentSucceeded", Type: corev1.EventTypeNormal, Action: stablev1.DeploymentStateSuccess,
			EventTime:           metav1.NewMicroTime(time.Now()),
			ReportingController: stablev1.ReportingController, ReportingInstance: "recorder-1"}
		if _, err := kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := kube.CoreV1().Events(ns).Get(ctx, "delivery-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if env := stored.Annotations[stablev1.AnnotationEnvironment]; env != "prod\xfe\xfe" {
		t.Fatalf("the API server stored %q: the premise no longer holds", env)
	}

	clients, err := NewClients(cp.Config(), ns)
	if err != nil {
		t.Fatal(err)
	}
	page, err := clients.ListEvents.(eventLister).listSlim(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	watched, _ := slimEvent(stored)
	for how, obj := range map[string]runtime.Object{"listed": page.Items[0], "watched": watched.(runtime.Object)} {
		key, reason := classify(obj.(*cachedEvent))
		if reason != "" || key.Environment != "prod\uFFFD\uFFFD" {
			t.Errorf("%s: counted as %+v (%q), want the environment %q", how, key, reason, "prod\uFFFD\uFFFD")
		}
	}
	if _, reason := classify(page.Items[1].(*cachedEvent)); reason != reasonInvalidRepository {
		t.Errorf("a repository that is not UTF-8: %q, want %q", reason, reasonInvalidRepository)
	}
}

// eventsText renders listed Events for a failure message (their records
// are pointers).
func eventsText(items []runtime.Object) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprintf("%+v", it)
	}
	return fmt.Sprint(out)
}
