package metrics

import (
	"context"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	gpfake "github.com/liatrio/gitpulse/pkg/client/clientset/versioned/fake"
)

// currentGCPercent reads GOGC (SetGCPercent is the runtime's only way).
func currentGCPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// eventsHeld is a Service started on fake clients whose Events' list waits
// until released: listing reports the GOGC in effect when it began.
type eventsHeld struct {
	svc     *Service
	ctx     context.Context
	listing chan int
	release func()
}

// startWithEventsHeld starts a Service in namespace "ns" on fake clients
// holding objects, its Events' list held until release (which the test's
// cleanup calls too, before the Service stops: Stop waits for the list).
func startWithEventsHeld(t *testing.T, ownsProcess bool, objects ...runtime.Object) *eventsHeld {
	t.Helper()
	kube := kubefake.NewSimpleClientset()
	h := &eventsHeld{listing: make(chan int, 1)}
	released := make(chan struct{})
	var once sync.Once
	h.release = func() { once.Do(func() { close(released) }) }
	kube.PrependReactor("list", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		select {
		case h.listing <- currentGCPercent():
		default:
		}
		<-released
		return false, nil, nil
	})
	h.svc, h.ctx = startService(t, Options{Config: Config{Namespace: "ns"}, OwnsProcess: ownsProcess,
		Clients: typedClients(kube, gpfake.NewSimpleClientset(objects...), "ns")})
	// Registered after startService's, so it runs first: the held list
	// ends before the Service stops.
	t.Cleanup(h.release)
	return h
}

// TestService_CollectsRarelyWhileTheFirstListsRun: a Service that owns its
// process runs its first lists at GOGC firstListsGCPercent and is back at
// the GOGC it had once Ready; it leaves GOGC alone when the environment set
// it, when it is higher already or off, and when it does not own the
// process.
func TestService_CollectsRarelyWhileTheFirstListsRun(t *testing.T) {
	tests := []struct {
		name        string
		ownsProcess bool
		env         string // GOGC in the environment
		running     int    // GOGC when the Service starts
		wantDuring  int
	}{
		{"the function's default is raised", true, "", 50, firstListsGCPercent},
		{"Go's default is raised", true, "", 100, firstListsGCPercent},
		{"a higher GOGC stays", true, "", 800, 800},
		{"GOGC off stays off", true, "", -1, -1},
		{"the environment's GOGC stays", true, "50", 50, 50},
		{"a Service in a process it does not own changes nothing", false, "", 50, 50},
	}
	before := currentGCPercent()
	t.Cleanup(func() { debug.SetGCPercent(before) })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			debug.SetGCPercent(tc.running)
			h := startWithEventsHeld(t, tc.ownsProcess)
			select {
			case got := <-h.listing:
				if got != tc.wantDuring {
					t.Errorf("GOGC during the first lists = %d, want %d", got, tc.wantDuring)
				}
			case <-h.ctx.Done():
				t.Fatal("the Events were never listed")
			}
			h.release()
			if err := h.svc.WaitReady(h.ctx); err != nil {
				t.Fatal(err)
			}
			if got := currentGCPercent(); got != tc.running {
				t.Errorf("GOGC once ready = %d, want %d (what it was)", got, tc.running)
			}
		})
	}
}

// TestService_AggregatesTheObjectsWhileTheEventsStillList: the objects'
// aggregate is made once the objects' lists are done, while the Events'
// list still runs, and the Service is Ready only once that one is done too.
func TestService_AggregatesTheObjectsWhileTheEventsStillList(t *testing.T) {
	pr := recordedPullRequest(1)
	pr.Namespace = "ns"
	h := startWithEventsHeld(t, false, pr)
	<-h.listing
	err := wait.PollUntilContextCancel(h.ctx, 5*time.Millisecond, true, func(context.Context) (bool, error) {
		return h.svc.objects.Load() != nil, nil
	})
	if err != nil {
		t.Fatal("no aggregate of the objects while the Events were listed")
	}
	if n := len(h.svc.objects.Load().pullRequestStates.keys); n != 1 {
		t.Errorf("the aggregate holds the pull requests of %d repositories, want 1", n)
	}
	if ready, _ := h.svc.Ready(h.ctx); ready {
		t.Error("Ready while the Events were still listed")
	}
	h.release()
	if err := h.svc.WaitReady(h.ctx); err != nil {
		t.Fatal(err)
	}
}
