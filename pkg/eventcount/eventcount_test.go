package eventcount

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

var (
	opened = Key{Kind: "PullRequest", Namespace: "ns", Repository: "acme/api", Action: "opened"}
	pushed = Key{Kind: "Branch", Namespace: "ns", Repository: "acme/api", Action: "pushed"}
)

func newCounter(t *testing.T, client *fake.Clientset) *Counter {
	t.Helper()
	c := New(Options{ConfigMaps: client.CoreV1().ConfigMaps("ns"), Name: "checkpoint"})
	if err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCounter_CountsEachUIDOnceAcrossReplaysAndProcesses(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	first := newCounter(t, client)
	for _, uid := range []types.UID{"a", "b", "a", "c", "b"} { // replays
		first.Observe(uid, opened)
	}
	first.Observe("d", pushed)
	if got := first.Counts(); got[opened] != 3 || got[pushed] != 1 {
		t.Fatalf("counts = %v, want opened 3, pushed 1", got)
	}
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if first.Pending() != 0 {
		t.Fatalf("pending after flush = %d", first.Pending())
	}

	// A new process re-lists the same Events plus a new one.
	second := newCounter(t, client)
	for _, uid := range []types.UID{"a", "b", "c", "e"} {
		if counted := second.Observe(uid, opened); counted != (uid == "e") {
			t.Errorf("Observe(%s) counted = %v", uid, counted)
		}
	}
	if got := second.Counts(); got[opened] != 4 || got[pushed] != 1 {
		t.Fatalf("counts = %v, want opened 4, pushed 1", got)
	}
}

func TestCounter_CrashLosesOnlyWhatTheNextProcessRecounts(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	first := newCounter(t, client)
	first.Observe("a", opened)
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	first.Observe("b", opened) // never flushed: the process dies

	second := newCounter(t, client)
	second.Observe("a", opened)
	second.Observe("b", opened) // still alive, so listed again
	if got := second.Counts()[opened]; got != 2 {
		t.Fatalf("opened = %d, want 2", got)
	}
}

func TestCounter_PrunesGoneUIDsOnlyAfterGraceAndSync(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	now := time.Unix(1_800_000_000, 0)
	c := New(Options{ConfigMaps: client.CoreV1().ConfigMaps("ns"), Name: "checkpoint", Grace: time.Minute,
		Now: func() time.Time { return now }})
	if err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c.Observe("a", opened)
	c.Observe("b", opened)
	must(t, c.Flush(ctx))
	c.Forget("a")
	now = now.Add(time.Hour)
	must(t, c.Flush(ctx))
	if n := len(c.base.Counted); n != 2 {
		t.Fatalf("pruned before the informer synced: %d UIDs", n)
	}
	c.MarkSynced()
	must(t, c.Flush(ctx))
	if _, ok := c.base.Counted["a"]; ok || len(c.base.Counted) != 1 {
		t.Fatalf("counted = %v, want only b", c.base.Counted)
	}
	if got := c.Counts()[opened]; got != 2 {
		t.Fatalf("pruning changed the count: %d", got)
	}
}

func TestCounter_LoadRefusesACorruptCheckpoint(t *testing.T) {
	cases := map[string]string{
		"not JSON":        "{",
		"unknown version": `{"version":99}`,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			client := fake.NewSimpleClientset(&corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "checkpoint", Namespace: "ns"},
				Data:       map[string]string{DataKey: data},
			})
			c := New(Options{ConfigMaps: client.CoreV1().ConfigMaps("ns"), Name: "checkpoint"})
			if err := c.Load(context.Background()); err == nil {
				t.Fatal("Load accepted a corrupt checkpoint (it would reset every counter)")
			}
		})
	}
}

func TestCounter_FlushRefusesACheckpointTooLargeForAConfigMap(t *testing.T) {
	client := fake.NewSimpleClientset()
	c := newCounter(t, client)
	for i := range 20000 {
		c.Observe(types.UID(strings.Repeat("x", 30)+string(rune('a'+i%26))+itoa(i)), opened)
	}
	if err := c.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Fatalf("Flush = %v, want ErrTooLarge", err)
	}
	if got := c.Counts()[opened]; got != 20000 {
		t.Fatalf("in-memory counts lost on a failed flush: %d", got)
	}
}

func TestCheckpoint_EncodesDeterministicallyAndRoundTrips(t *testing.T) {
	cp := emptyCheckpoint()
	cp.Counts[pushed] = 2
	cp.Counts[opened] = 5
	cp.Counted["u1"] = 10
	a, err := cp.encode()
	must(t, err)
	b, err := cp.encode()
	must(t, err)
	if string(a) != string(b) {
		t.Fatal("encoding is not deterministic")
	}
	back, err := decode(a)
	must(t, err)
	if back.Counts[opened] != 5 || back.Counts[pushed] != 2 || back.Counted["u1"] != 10 {
		t.Fatalf("round trip = %+v", back)
	}
}

// FuzzDecode: whatever is in the ConfigMap, decoding never panics, and what
// decodes re-encodes to something that decodes to the same counts.
func FuzzDecode(f *testing.F) {
	cp := emptyCheckpoint()
	cp.Counts[opened] = 3
	cp.Counted["u"] = 1
	seed, _ := cp.encode()
	f.Add(seed)
	f.Add([]byte(`{"version":1,"counts":null,"counted":null}`))
	f.Add([]byte(`{"version":1,"counts":[{"kind":"a","value":18446744073709551615}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decode(data)
		if err != nil {
			return
		}
		again, err := got.encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := decode(again)
		if err != nil {
			t.Fatalf("re-encoded checkpoint does not decode: %v", err)
		}
		for k, v := range got.Counts {
			if back.Counts[k] != v {
				t.Fatalf("count %+v: %d then %d", k, v, back.Counts[k])
			}
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}
