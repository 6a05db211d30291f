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
			kube := kubefake.NewSimpleClientset()
			listing, release := make(chan int, 1), make(chan struct{})
			kube.PrependReactor("list", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
				select {
				case listing <- currentGCPercent():
				default:
				}
				<-release
				return false, nil, nil
			})
			svc, err := New(Options{Config: Config{Namespace: "ns"}, OwnsProcess: tc.ownsProcess,
				Clients: typedClients(kube, gpfake.NewSimpleClientset(), "ns")})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := svc.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = svc.Stop(ctx) }()
			select {
			case got := <-listing:
				if got != tc.wantDuring {
					t.Errorf("GOGC during the first lists = %d, want %d", got, tc.wantDuring)
				}
			case <-ctx.Done():
				t.Fatal("the Events were never listed")
			}
			close(release)
			if err := svc.WaitReady(ctx); err != nil {
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
	kube := kubefake.NewSimpleClientset()
	listing, release := make(chan struct{}, 1), make(chan struct{})
	kube.PrependReactor("list", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		select {
		case listing <- struct{}{}:
		default:
		}
		<-release
		return false, nil, nil
	})
	pr := recordedPullRequest(1)
	pr.Namespace = "ns"
	svc, err := New(Options{Config: Config{Namespace: "ns"},
		Clients: typedClients(kube, gpfake.NewSimpleClientset(pr), "ns")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop(ctx) }()
	var released sync.Once
	releaseEvents := func() { released.Do(func() { close(release) }) }
	defer releaseEvents() // before Stop, which waits for the list
	<-listing
	err = wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(context.Context) (bool, error) {
		return svc.objects.Load() != nil, nil
	})
	if err != nil {
		t.Fatal("no aggregate of the objects while the Events were listed")
	}
	if n := len(svc.objects.Load().pullRequestStates.keys); n != 1 {
		t.Errorf("the aggregate holds the pull requests of %d repositories, want 1", n)
	}
	if ready, _ := svc.Ready(ctx); ready {
		t.Error("Ready while the Events were still listed")
	}
	releaseEvents()
	if err := svc.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}
