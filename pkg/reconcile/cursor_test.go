package reconcile

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func cursorOf(data map[string]string) cursor {
	return cursor{cm: &corev1.ConfigMap{Data: data}}
}

func TestCursor_EmptyValuesAreNotKept(t *testing.T) {
	c := cursor{cm: &corev1.ConfigMap{}} // no Data yet
	c.set(KeyLastResult, ResultOK)
	if c.get(KeyLastResult) != ResultOK {
		t.Fatalf("get = %q after set on a ConfigMap without data", c.get(KeyLastResult))
	}
	c.set(KeyLastResult, "")
	if _, ok := c.cm.Data[KeyLastResult]; ok {
		t.Error("setting an empty value kept the key")
	}
	c.setTime(KeyNotBefore, time.Time{})
	c.add(KeyRedeliveries, 0)
	c.setRequested(nil)
	if len(c.cm.Data) != 0 {
		t.Errorf("zero time, zero count and no claims wrote %v", c.cm.Data)
	}
}

func TestCursor_TimesAreUTCSecondsAndUnreadableOnesAreZero(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	for _, tt := range []struct {
		name   string
		stored string
		want   time.Time
	}{
		{name: "RFC 3339", stored: "2026-11-20T12:30:00Z", want: time.Date(2026, 11, 20, 12, 30, 0, 0, time.UTC)},
		{name: "with an offset", stored: "2026-11-20T13:30:00+01:00", want: time.Date(2026, 11, 20, 12, 30, 0, 0, time.UTC)},
		{name: "absent", stored: ""},
		{name: "edited by hand into something else", stored: "yesterday"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := cursorOf(map[string]string{KeyLowWater: tt.stored}).time(KeyLowWater); !got.Equal(tt.want) {
				t.Errorf("time = %v, want %v", got, tt.want)
			}
		})
	}
	c := cursorOf(nil)
	c.setTime(KeyLowWater, time.Date(2026, 11, 20, 13, 30, 0, 999, zone))
	if got := c.get(KeyLowWater); got != "2026-11-20T12:30:00Z" {
		t.Errorf("stored %q, want UTC to the second", got)
	}
}

func TestCursor_CountsAdd(t *testing.T) {
	for _, tt := range []struct {
		name   string
		stored string
		add    int64
		want   string
	}{
		{name: "first", add: 2, want: "2"},
		{name: "onto a count", stored: "40", add: 2, want: "42"},
		{name: "nothing to add changes nothing", stored: "40", add: 0, want: "40"},
		{name: "an unreadable count starts again", stored: "x", add: 1, want: "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cursorOf(map[string]string{})
			c.set(KeyPassesPrefix+ResultOK, tt.stored)
			c.add(KeyPassesPrefix+ResultOK, tt.add)
			if got := c.get(KeyPassesPrefix + ResultOK); got != tt.want {
				t.Errorf("count %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCursor_RedeliveryClaimsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	claims := map[string]time.Time{"guid-a": at, "guid-b": at.Add(-time.Hour)}
	c := cursorOf(nil)
	c.setRequested(claims)
	got := c.requested()
	if len(got) != len(claims) {
		t.Fatalf("requested = %v, want %v", got, claims)
	}
	for id, want := range claims {
		if !got[id].Equal(want) {
			t.Errorf("claim of %s at %v, want %v", id, got[id], want)
		}
	}
	// The last claim given back removes the key.
	c.setRequested(map[string]time.Time{})
	if _, ok := c.cm.Data[KeyRequested]; ok {
		t.Error("no claims left, yet the key stays")
	}
	for _, stored := range []string{"", "not json", `["guid-a"]`} {
		if got := cursorOf(map[string]string{KeyRequested: stored}).requested(); got == nil || len(got) != 0 {
			t.Errorf("requested of %q = %v, want an empty map to add to", stored, got)
		}
	}
}

func TestCursor_NameIsOnePerScopeAndAPIURL(t *testing.T) {
	names := map[string]string{}
	for _, k := range [][2]string{
		{DefaultAPIURL, "acme/api"},
		{DefaultAPIURL, "acme"},
		{"https://github.example.com/api/v3/", "acme/api"},
		// The separator keeps the boundary: these concatenate alike.
		{DefaultAPIURL + "a", "cme/api"},
	} {
		n := cursorName(k[0], k[1])
		if n != cursorName(k[0], k[1]) {
			t.Errorf("%v: the name is not stable", k)
		}
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 || !strings.HasPrefix(n, "gitpulse-reconcile-") {
			t.Errorf("%v: name %q is not a gitpulse ConfigMap name: %v", k, n, errs)
		}
		if prev, ok := names[n]; ok {
			t.Errorf("%v and %s share the cursor %s", k, prev, n)
		}
		names[n] = k[0] + " " + k[1]
	}
}

func TestCursor_OwnedByEachGitHubSourceOnce(t *testing.T) {
	cm := &corev1.ConfigMap{}
	a := Source{Name: "a", UID: "uid-a"}
	for _, tt := range []struct {
		name string
		src  Source
		want bool
	}{
		{name: "first source", src: a, want: true},
		{name: "the same source again", src: a},
		{name: "a second source of the scope", src: Source{Name: "b", UID: "uid-b"}, want: true},
		{name: "a source without a UID (not from the API server)", src: Source{Name: "c"}},
	} {
		if got := ownedBy(cm, tt.src); got != tt.want {
			t.Errorf("%s: ownedBy = %v, want %v", tt.name, got, tt.want)
		}
	}
	want := []metav1.OwnerReference{
		{APIVersion: "sources.knative.dev/v1alpha1", Kind: "GitHubSource", Name: "a", UID: "uid-a"},
		{APIVersion: "sources.knative.dev/v1alpha1", Kind: "GitHubSource", Name: "b", UID: "uid-b"},
	}
	if len(cm.OwnerReferences) != len(want) {
		t.Fatalf("owners %v, want %v", cm.OwnerReferences, want)
	}
	for i := range want {
		if cm.OwnerReferences[i] != want[i] {
			t.Errorf("owner %d = %+v, want %+v", i, cm.OwnerReferences[i], want[i])
		}
	}
}
