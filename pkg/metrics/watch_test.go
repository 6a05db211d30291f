package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	stablev1 "github.com/liatrio/gitpulse/pkg/apis/stable/v1"
	"github.com/liatrio/gitpulse/pkg/eventcount"
)

func TestClassify_KeysCountableEventsAndNamesWhyNot(t *testing.T) {
	ev := func(kind, repo, action string) *corev1.Event {
		e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, InvolvedObject: corev1.ObjectReference{Kind: kind}, Action: action}
		if repo != "" {
			e.Annotations = map[string]string{stablev1.AnnotationRepository: repo}
		}
		return e
	}
	cases := []struct {
		name       string
		event      *corev1.Event
		wantKey    eventcount.Key
		wantReason string
	}{
		{"pull request action", ev("PullRequest", "acme/api", "opened"), eventcount.Key{Kind: "PullRequest", Namespace: "ns", Repository: "acme/api", Action: "opened"}, ""},
		{"merged is a pull request action", ev("PullRequest", "acme/api", "merged"), eventcount.Key{Kind: "PullRequest", Namespace: "ns", Repository: "acme/api", Action: "merged"}, ""},
		{"unknown pull request action folds into other", ev("PullRequest", "acme/api", "teleported"), eventcount.Key{Kind: "PullRequest", Namespace: "ns", Repository: "acme/api", Action: "other"}, ""},
		{"branch push", ev("Branch", "acme/api", "pushed"), eventcount.Key{Kind: "Branch", Namespace: "ns", Repository: "acme/api", Action: "pushed"}, ""},
		{"unknown branch action", ev("Branch", "acme/api", "renamed"), eventcount.Key{}, reasonUnknownAction},
		{"no repository", ev("PullRequest", "", "opened"), eventcount.Key{}, reasonMissingRepository},
		{"repository without owner", ev("PullRequest", "api", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with two slashes", ev("PullRequest", "a/b/c", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with a newline", ev("PullRequest", "a/b\n", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with NUL", ev("PullRequest", "a/b\x00", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with CR", ev("PullRequest", "a/b\rc", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with a tab", ev("PullRequest", "a/b\tc", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with DEL", ev("PullRequest", "a/b\x7f", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with a Unicode line separator", ev("PullRequest", "a/b\u2028c", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository with a C1 control", ev("PullRequest", "a/b\u0085c", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"repository that is not UTF-8", ev("PullRequest", "a/b\xff", "opened"), eventcount.Key{}, reasonInvalidRepository},
		{"no action", ev("PullRequest", "acme/api", ""), eventcount.Key{}, reasonMissingAction},
		{"other kind", ev("Issue", "acme/api", "opened"), eventcount.Key{}, reasonUnknownKind},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			slim, err := slimEvent(tc.event)
			if err != nil {
				t.Fatal(err)
			}
			key, reason := classify(slim.(*cachedEvent))
			if key != tc.wantKey || reason != tc.wantReason {
				t.Fatalf("classify = %+v, %q; want %+v, %q", key, reason, tc.wantKey, tc.wantReason)
			}
		})
	}
}

// The informer cache holds the transformed Event only: a big message,
// related objects and managed fields cost nothing per Event.
func TestSlimEvent_KeepsOnlyWhatCountingNeeds(t *testing.T) {
	in := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name: "delivery-1", Namespace: "ns", UID: "u1", ResourceVersion: "7",
			CreationTimestamp: metav1.Unix(1795627324, 0),
			Annotations:       map[string]string{stablev1.AnnotationRepository: "acme/api", stablev1.AnnotationDeliveryID: "1", "other": "x"},
			Labels:            map[string]string{"a": "b"},
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "recorder"}},
		},
		InvolvedObject: corev1.ObjectReference{Kind: "PullRequest", Name: "pr", Namespace: "ns", UID: "o1"},
		Reason:         "PullRequestOpened", Message: string(make([]byte, 4096)), Action: "opened",
		Related: &corev1.ObjectReference{Name: "x"}, ReportingController: stablev1.ReportingController,
	}
	out, err := slimEvent(in)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := out.(*cachedEvent)
	if !ok {
		t.Fatalf("slimEvent = %T, want *cachedEvent", out)
	}
	want := cachedEvent{Name: "delivery-1", UID: "u1", ResourceVersion: "7", Created: 1795627324,
		Namespace: intern("ns"), Kind: intern("PullRequest"), Action: intern("opened"), Repository: intern("acme/api"), Environment: intern("")}
	if *got != want {
		t.Fatalf("slimEvent =\n%+v\nwant\n%+v", *got, want)
	}
	if key, reason := classify(got); reason != "" || key.Action != "opened" || key.Repository != "acme/api" {
		t.Fatalf("the slim Event no longer classifies: %+v %q", key, reason)
	}
	// The informer's store and update handling see it through meta.Accessor.
	m, err := meta.Accessor(got)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetName() != "delivery-1" || m.GetNamespace() != "ns" || m.GetResourceVersion() != "7" || m.GetUID() != "u1" {
		t.Fatalf("meta.Accessor = %+v", m)
	}
	if key, err := cache.MetaNamespaceKeyFunc(got); err != nil || key != "ns/delivery-1" {
		t.Fatalf("key = %q, %v", key, err)
	}
	// Idempotent: a cachedEvent passes through unchanged.
	if again, _ := slimEvent(got); again != got {
		t.Fatalf("slimEvent(slim) = %v, want the same object", again)
	}
	// The same repository, kind and action share one string.
	other, _ := slimEvent(&corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "delivery-2", Namespace: "ns",
		Annotations: map[string]string{stablev1.AnnotationRepository: strings.Clone("acme/api")}},
		InvolvedObject: corev1.ObjectReference{Kind: "PullRequest"}, Action: "opened"})
	if r := other.(*cachedEvent).Repository; r != got.Repository || unsafe.StringData(r.Value()) != unsafe.StringData(got.Repository.Value()) {
		t.Fatal("repository not interned")
	}
}

func TestRepoCap_AdmitsFirstComersAndFoldsTheRest(t *testing.T) {
	c := newRepoCap(2)
	c.seed("acme/old") // from the checkpoint
	steps := []struct{ repo, want string }{
		{"acme/api", "acme/api"},
		{"acme/web", "other"},
		{"acme/old", "acme/old"},
		{"acme/api", "acme/api"},
		{"acme/web", "other"},
		{"acme/cli", "other"},
	}
	for _, s := range steps {
		if got := c.admit(s.repo); got != s.want {
			t.Fatalf("admit(%s) = %s, want %s", s.repo, got, s.want)
		}
	}
	if got := c.droppedTotal(); got != 2 {
		t.Fatalf("dropped = %d, want 2 (acme/web once, acme/cli)", got)
	}
}

func TestRepositoryOf_LeavesOutObjectsWithNamesGitHubNeverGives(t *testing.T) {
	tests := []struct {
		spec, annotation, want string
	}{
		{"acme/api", "", "acme/api"},
		{"", "acme/api", "acme/api"},
		{"acme/a\nb", "", ""},
		{"", "acme/a\x00", ""},
		{"acme/a b", "", ""},
		{"acme/a\u2028", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		got := repositoryOf(tt.spec, map[string]string{"stable.liatr.io/repository": tt.annotation})
		if got != tt.want {
			t.Errorf("repositoryOf(%q, %q) = %q, want %q", tt.spec, tt.annotation, got, tt.want)
		}
	}
}

func TestRepoCap_IdleRepositoriesGiveBackTheirSlots(t *testing.T) {
	c := newRepoCap(2)
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	const idle = time.Hour
	steps := []struct {
		name      string
		admit     []string
		alive     []string
		at        time.Duration
		wantFreed []string
		wantLabel [][2]string // in order: admission is first come
	}{
		{"first sweep starts every clock", []string{"acme/a", "stray/x"}, nil, 0, nil, nil},
		{"the cap is full", []string{"acme/b"}, []string{"acme/a"}, 30 * time.Minute, nil, [][2]string{{"acme/b", OtherRepository}}},
		{"not idle long enough", nil, []string{"acme/a"}, 60 * time.Minute, nil, nil},
		{"idle for longer than the timeout", nil, []string{"acme/a"}, 61 * time.Minute, []string{"stray/x"}, nil},
		{"the freed slot goes to the next comer", nil, []string{"acme/a"}, 62 * time.Minute, nil, [][2]string{{"acme/b", "acme/b"}, {"acme/c", OtherRepository}}},
	}
	for _, s := range steps {
		for _, r := range s.admit {
			c.admit(r)
		}
		alive := map[string]bool{}
		for _, r := range s.alive {
			alive[r] = true
		}
		freed := c.sweep(alive, t0.Add(s.at), idle)
		if fmt.Sprint(freed) != fmt.Sprint(s.wantFreed) {
			t.Fatalf("%s: freed %v, want %v", s.name, freed, s.wantFreed)
		}
		for _, rw := range s.wantLabel {
			if r, want := rw[0], rw[1]; c.admit(r) != want {
				t.Fatalf("%s: admit(%s) is not %s", s.name, r, want)
			}
		}
	}
	if c.releasedTotal() != 1 {
		t.Errorf("released %d, want 1", c.releasedTotal())
	}
}
