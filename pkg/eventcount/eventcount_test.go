package eventcount

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
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
	group := func(n uint32, uids int) []byte {
		b := binary.BigEndian.AppendUint64(nil, 1_800_000_000)
		b = binary.BigEndian.AppendUint32(b, n)
		return append(b, make([]byte, 16*uids)...)
	}
	cases := map[string]struct {
		data string
		uids []byte
	}{
		"not JSON":                      {"{", nil},
		"unknown version":               {`{"version":99}`, nil},
		"truncated group header":        {`{"version":2}`, group(1, 1)[:7]},
		"group longer than the data":    {`{"version":2}`, group(3, 2)},
		"trailing bytes after a group":  {`{"version":2}`, append(group(1, 1), 0)},
		"version 1 with binary UIDs":    {`{"version":1}`, group(1, 1)},
		"binary UIDs without JSON data": {"", group(1, 1)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			client := fake.NewSimpleClientset(&corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "checkpoint", Namespace: "ns"},
				Data:       map[string]string{DataKey: tc.data},
				BinaryData: map[string][]byte{UIDsKey: tc.uids},
			})
			c := New(Options{ConfigMaps: client.CoreV1().ConfigMaps("ns"), Name: "checkpoint"})
			if err := c.Load(context.Background()); err == nil {
				t.Fatal("Load accepted a corrupt checkpoint (it would reset every counter)")
			}
		})
	}
}

func TestCounter_FlushRefusesACheckpointTooLargeForAConfigMap(t *testing.T) {
	cases := map[string]func(i int) types.UID{
		// 70,000 × 16 bytes is more than 1 MiB.
		"canonical UUIDs": func(i int) types.UID { return uuidFor(i) },
		// Text fallback: about 50 bytes each.
		"non-canonical UIDs": func(i int) types.UID {
			return types.UID(strings.Repeat("x", 30) + string(rune('a'+i%26)) + itoa(i))
		},
	}
	for name, uid := range cases {
		t.Run(name, func(t *testing.T) {
			client := fake.NewSimpleClientset()
			c := newCounter(t, client)
			for i := range 70000 {
				c.Observe(uid(i), opened)
			}
			if err := c.Flush(context.Background()); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Flush = %v, want ErrTooLarge", err)
			}
			if got := c.Counts()[opened]; got != 70000 {
				t.Fatalf("in-memory counts lost on a failed flush: %d", got)
			}
		})
	}
}

// TestCheckpoint_60000EventsFitInOneConfigMap: an hour of Events at ~17/s,
// persisted by a flush every 2 s (one UID group each) across 100
// repositories' counters, fits the API server's ConfigMap limit, and is
// written, read and re-encoded unchanged.
func TestCheckpoint_60000EventsFitInOneConfigMap(t *testing.T) {
	const events, flushes = 60000, 1800
	ctx := context.Background()
	start := int64(1_800_000_000)
	persistedAt := func(i int) int64 { return start + 2*int64(i*flushes/events) }
	cp := emptyCheckpoint()
	for i := range events {
		cp.Counts[Key{Kind: "PullRequest", Namespace: "ns", Repository: "acme/repo-" + itoa(i%100), Action: "opened"}]++
		cp.Counted[uuidFor(i)] = persistedAt(i)
	}
	data, uids, err := cp.encode()
	must(t, err)
	if got, want := len(uids), flushes*uidGroupHeader+events*16; got != want {
		t.Errorf("UIDs take %d bytes, want %d (16 per UID, %d per group)", got, want, uidGroupHeader)
	}
	t.Logf("%d Events: %d bytes of %d (%d JSON, %d binary)", events, len(data)+len(uids), maxCheckpointBytes, len(data), len(uids))

	// Written through the Counter: the size check passes.
	client := fake.NewSimpleClientset()
	c := newCounter(t, client)
	_, err = c.write(ctx, cp, "", false)
	must(t, err)
	cm, err := client.CoreV1().ConfigMaps("ns").Get(ctx, "checkpoint", metav1.GetOptions{})
	must(t, err)
	if string(data) != cm.Data[DataKey] || !bytes.Equal(uids, cm.BinaryData[UIDsKey]) {
		t.Fatal("the ConfigMap does not hold the encoded checkpoint")
	}

	// Read back by a new process: same counts, same UIDs with the same
	// persist times (so pruning happens when it would have), none counted
	// again, and one more still flushes.
	again := newCounter(t, client)
	if !maps.Equal(again.base.Counts, cp.Counts) || !maps.Equal(again.base.Counted, cp.Counted) {
		t.Fatalf("round trip: %d UIDs, %d counts; want %d, %d",
			len(again.base.Counted), len(again.base.Counts), len(cp.Counted), len(cp.Counts))
	}
	for i := range events {
		if again.Observe(uuidFor(i), opened) {
			t.Fatalf("UID %d counted twice", i)
		}
	}
	redata, reuids, err := again.base.encode()
	must(t, err)
	if string(redata) != string(data) || !bytes.Equal(reuids, uids) {
		t.Fatal("re-encoding the decoded checkpoint changed it")
	}
	again.Observe(uuidFor(events), opened)
	must(t, again.Flush(ctx))
}

// TestCounter_LoadsAVersion1Checkpoint: a checkpoint written by the previous
// version (every UID as text in the JSON) loads, its UIDs stay counted, and
// the next flush rewrites it compactly without losing any.
func TestCounter_LoadsAVersion1Checkpoint(t *testing.T) {
	ctx := context.Background()
	const v1 = `{"version":1,"counts":[{"kind":"Branch","namespace":"ns","repository":"acme/api","action":"pushed","value":1},` +
		`{"kind":"PullRequest","namespace":"ns","repository":"acme/api","action":"opened","value":2}],` +
		`"counted":{"0f8fad5b-d9cb-469f-a165-70867728950e":1800000000,"7c9e6679-7425-40de-944b-e07fc1f90ae7":1800000005,"legacy-uid":1800000005}}`
	client := fake.NewSimpleClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "checkpoint", Namespace: "ns"},
		Data:       map[string]string{DataKey: v1},
	})
	c := newCounter(t, client)
	old := map[types.UID]int64{
		"0f8fad5b-d9cb-469f-a165-70867728950e": 1800000000,
		"7c9e6679-7425-40de-944b-e07fc1f90ae7": 1800000005,
		"legacy-uid":                           1800000005,
	}
	for uid := range old {
		if c.Observe(uid, opened) {
			t.Errorf("%s counted again after an upgrade", uid)
		}
	}
	if got := c.Counts(); got[opened] != 2 || got[pushed] != 1 {
		t.Fatalf("counts = %v", got)
	}
	c.Observe("e1b8f2a0-3c4d-4e5f-8a9b-0c1d2e3f4a5b", opened)
	must(t, c.Flush(ctx))

	cm, err := client.CoreV1().ConfigMaps("ns").Get(ctx, "checkpoint", metav1.GetOptions{})
	must(t, err)
	if n := len(cm.BinaryData[UIDsKey]); n != 3*uidGroupHeader+3*16 {
		t.Errorf("binaryData %s: %d bytes, want 3 UIDs in 3 groups (two old persist times, one new)", UIDsKey, n)
	}
	if strings.Contains(cm.Data[DataKey], "0f8fad5b") || !strings.Contains(cm.Data[DataKey], `"counted":{"legacy-uid":1800000005}`) {
		t.Errorf("JSON should hold only the non-canonical UID: %s", cm.Data[DataKey])
	}
	uids, err := CountedUIDs(cm)
	must(t, err)
	if len(uids) != 4 {
		t.Errorf("CountedUIDs = %v, want 4", uids)
	}
	back := newCounter(t, client)
	for uid, at := range old {
		if got := back.base.Counted[uid]; got != at {
			t.Errorf("%s persisted at %d after the rewrite, want %d", uid, got, at)
		}
	}
	if got := back.Counts(); got[opened] != 3 || got[pushed] != 1 || len(back.base.Counted) != 4 {
		t.Fatalf("after rewrite: counts %v, %d UIDs", got, len(back.base.Counted))
	}
}

func TestUUID_OnlyCanonicalTextIsStoredRaw(t *testing.T) {
	for uid, canonical := range map[types.UID]bool{
		"0f8fad5b-d9cb-469f-a165-70867728950e":   true,
		"00000000-0000-0000-0000-000000000000":   true,
		"0F8FAD5B-D9CB-469F-A165-70867728950E":   false, // would not format back identically
		"0f8fad5bd9cb469fa16570867728950e":       false,
		"{0f8fad5b-d9cb-469f-a165-70867728950e}": false,
		"0f8fad5b-d9cb-469f-a165-70867728950":    false,
		"0f8fad5b-d9cb-469f-a165-70867728950g":   false,
		"0f8fad5b+d9cb-469f-a165-70867728950e":   false,
		"":                                       false,
	} {
		raw, ok := parseUUID(uid)
		if ok != canonical {
			t.Errorf("parseUUID(%q) ok = %v", uid, ok)
		}
		if ok && formatUUID(raw[:]) != uid {
			t.Errorf("%q formats back as %q", uid, formatUUID(raw[:]))
		}
	}
}

func TestCheckpoint_EncodesDeterministicallyAndRoundTrips(t *testing.T) {
	cp := emptyCheckpoint()
	cp.Counts[pushed] = 2
	cp.Counts[opened] = 5
	cp.Counted["u1"] = 10
	cp.Counted[uuidFor(1)] = 10
	cp.Counted[uuidFor(2)] = 12
	cp.Counted[uuidFor(3)] = 10
	a, au, err := cp.encode()
	must(t, err)
	b, bu, err := cp.encode()
	must(t, err)
	if string(a) != string(b) || !bytes.Equal(au, bu) {
		t.Fatal("encoding is not deterministic")
	}
	back, err := decode(a, au)
	must(t, err)
	if !maps.Equal(back.Counts, cp.Counts) || !maps.Equal(back.Counted, cp.Counted) {
		t.Fatalf("round trip = %+v", back)
	}
}

// FuzzDecode: whatever is in the ConfigMap, decoding never panics, and what
// decodes re-encodes to something that decodes to the same counts.
func FuzzDecode(f *testing.F) {
	cp := emptyCheckpoint()
	cp.Counts[opened] = 3
	cp.Counted["u"] = 1
	cp.Counted[uuidFor(1)] = 1
	cp.Counted[uuidFor(2)] = 2
	seed, seedUIDs, _ := cp.encode()
	f.Add(seed, seedUIDs)
	f.Add([]byte(`{"version":2,"counts":null}`), []byte{})
	f.Add([]byte(`{"version":2,"counts":[]}`), seedUIDs[:uidGroupHeader+8])
	// The previous version's format.
	f.Add([]byte(`{"version":1,"counts":null,"counted":null}`), []byte(nil))
	f.Add([]byte(`{"version":1,"counts":[{"kind":"a","value":18446744073709551615}]}`), []byte(nil))
	f.Add([]byte(`{"version":1,"counts":[],"counted":{"0f8fad5b-d9cb-469f-a165-70867728950e":5,"x":6}}`), []byte(nil))
	f.Fuzz(func(t *testing.T, data, uids []byte) {
		got, err := decode(data, uids)
		if err != nil {
			return
		}
		again, againUIDs, err := got.encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := decode(again, againUIDs)
		if err != nil {
			t.Fatalf("re-encoded checkpoint does not decode: %v", err)
		}
		if !maps.Equal(back.Counts, got.Counts) {
			t.Fatalf("counts %v then %v", got.Counts, back.Counts)
		}
		if !maps.Equal(back.Counted, got.Counted) {
			t.Fatalf("counted UIDs %v then %v", got.Counted, back.Counted)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// uuidFor is a distinct canonical UUID for each i.
func uuidFor(i int) types.UID {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[8:], uint64(i)*0x9e3779b97f4a7c15)
	binary.BigEndian.PutUint32(raw[0:], uint32(i))
	raw[6] = raw[6]&0x0f | 0x40 // version 4
	raw[8] = raw[8]&0x3f | 0x80 // RFC 4122 variant
	return formatUUID(raw[:])
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

func TestCounter_DroppedRepositoryIsGoneForGoodButItsEventsStayCounted(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	stray := Key{Kind: "PullRequest", Namespace: "ns", Repository: "stray/x", Action: "opened"}
	first := newCounter(t, client)
	first.Observe("a", opened)
	first.Observe("s1", stray)
	must(t, first.Flush(ctx))

	first.Observe("s2", stray) // pending when dropped
	first.DropRepository("stray/x")
	if got := first.Counts(); got[stray] != 0 || got[opened] != 1 {
		t.Fatalf("counts after drop = %v, want stray/x gone and acme/api kept", got)
	}
	first.Observe("b", opened)
	must(t, first.Flush(ctx))
	// (A second instance's stale copy is re-read on its write conflict; the
	// fake clientset does not check resourceVersions, so that is left to
	// the API server tests.)
	restarted := newCounter(t, client)
	if got := restarted.Counts(); got[stray] != 0 || got[opened] != 2 {
		t.Fatalf("counts after restart = %v, want stray/x gone, acme/api 2", got)
	}
	for _, uid := range []types.UID{"s1", "s2"} {
		if restarted.Observe(uid, stray) {
			t.Errorf("Event %s of the dropped repository counted again", uid)
		}
	}
}
