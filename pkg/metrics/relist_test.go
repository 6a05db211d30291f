package metrics

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
)

func recorderEvent(ns string, i int) *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("delivery-%03d", i), Namespace: ns, UID: types.UID(fmt.Sprintf("uid-%03d", i)),
			ResourceVersion: fmt.Sprint(i + 1),
			Annotations:     map[string]string{stablev1.AnnotationRepository: "acme/api"},
		},
		InvolvedObject:      corev1.ObjectReference{Kind: "PullRequest"},
		Action:              "opened",
		ReportingController: stablev1.ReportingController,
		EventTime:           metav1.NowMicro(),
	}
}

// startOnFakes starts a Service in namespace ns on kube and an empty
// gitpulse clientset, stopped when the test ends; ctx bounds the test.
func startOnFakes(t *testing.T, kube *kubefake.Clientset, ns string, checkpointInterval time.Duration) (*Service, context.Context) {
	t.Helper()
	return startService(t, Options{
		Config:  Config{Namespace: ns, CheckpointInterval: checkpointInterval},
		Clients: typedClients(kube, gpfake.NewSimpleClientset(), ns),
	})
}

// startService makes and starts a Service of opts, stopped when the test
// ends (after any cleanup the caller registers later); ctx, of 30 seconds,
// bounds the test.
func startService(t *testing.T, opts Options) (*Service, context.Context) {
	t.Helper()
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := svc.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = svc.Stop(ctx)
		cancel()
	})
	return svc, ctx
}

func total(svc *Service) uint64 {
	var n uint64
	for _, v := range svc.Counts() {
		n += v
	}
	return n
}

// TestService_RelistAfterGoneCountsNothingTwice makes the first watches
// answer 410 Gone, so the informer re-lists (replaying every Event) several
// times: each Event is still counted once, and one created between re-lists
// is counted too; the lag histogram observes each Event once too.
func TestService_RelistAfterGoneCountsNothingTwice(t *testing.T) {
	const ns = "gone"
	var objs []runtime.Object
	for i := range 5 {
		objs = append(objs, recorderEvent(ns, i))
	}
	kube := kubefake.NewSimpleClientset(objs...)
	var watches atomic.Int32
	kube.PrependWatchReactor("events", func(clienttesting.Action) (bool, watch.Interface, error) {
		n := watches.Add(1)
		if n == 2 {
			// Between two re-lists, a new Event appears.
			_ = kube.Tracker().Add(recorderEvent(ns, 5))
		}
		if n <= 2 {
			return true, nil, apierrors.NewResourceExpired("too old resource version")
		}
		return false, nil, nil
	})
	svc, ctx := startOnFakes(t, kube, ns, 10*time.Millisecond)
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		return watches.Load() > 2 && total(svc) == 6, nil
	})
	if err != nil {
		t.Fatalf("after %d watches: counted %d, want 6", watches.Load(), total(svc))
	}
	v := svc.scrapeView()
	if v.watchErrors["events"] < 2 {
		t.Errorf("watch errors = %d, want >= 2", v.watchErrors["events"])
	}
	time.Sleep(100 * time.Millisecond)
	if got := total(svc); got != 6 {
		t.Fatalf("counted %d after settling, want 6", got)
	}
	if lag := svc.scrapeView().eventLag; lag.count != 6 || lag.buckets[eventLagBuckets[len(eventLagBuckets)-1]] != 6 {
		t.Errorf("event lag: %d observations (%v), want 6, each within the last bucket", lag.count, lag.buckets)
	}
}
