package eventcount

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
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

// ev is a countable Event at resourceVersion rv.
func ev(rv uint64, key Key) Event {
	return Event{ResourceVersion: rv, UID: uuidFor(int(rv)), Key: key}
}

func TestCounter_CountsEachEventOnceAcrossReplaysAndProcesses(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	first := newCounter(t, client)
	// The initial list, in key order (not resourceVersion order), at rv 10.
	if n := first.ObserveList(slices.Values([]Event{ev(7, opened), ev(3, opened), ev(5, pushed)}), 10); n != 3 {
		t.Fatalf("list counted %d, want 3", n)
	}
	// The watch goes on from 10.
	for _, e := range []Event{ev(11, opened), ev(12, pushed)} {
		if !first.Observe(e) {
			t.Fatalf("watch ADDED %d not counted", e.ResourceVersion)
		}
	}
	// A re-list (410 Gone) at 14 replays all of them and brings one new.
	if n := first.ObserveList(slices.Values([]Event{ev(12, pushed), ev(3, opened), ev(13, opened), ev(7, opened), ev(11, opened), ev(5, pushed)}), 14); n != 1 {
		t.Fatalf("re-list counted %d, want only the new one", n)
	}
	// A reconnected watch replays an ADDED it already delivered.
	if first.Observe(ev(13, opened)) {
		t.Fatal("a replayed ADDED was counted again")
	}
	if got := first.Counts(); got[opened] != 4 || got[pushed] != 2 {
		t.Fatalf("counts = %v, want opened 4, pushed 2", got)
	}
	must(t, first.Flush(ctx))
	if first.Pending() != 0 {
		t.Fatalf("pending after flush = %d", first.Pending())
	}

	// A new process lists the same Events (a stale cache may even list at
	// an older resourceVersion) plus a new one.
	second := newCounter(t, client)
	if n := second.ObserveList(slices.Values([]Event{ev(3, opened), ev(5, pushed), ev(7, opened), ev(11, opened), ev(12, pushed), ev(13, opened), ev(15, opened)}), 15); n != 1 {
		t.Fatalf("new process counted %d, want 1", n)
	}
	if got := second.Counts(); got[opened] != 5 || got[pushed] != 2 {
		t.Fatalf("counts = %v, want opened 5, pushed 2", got)
	}
	stale := newCounter(t, client)
	if n := stale.ObserveList(slices.Values([]Event{ev(3, opened), ev(5, pushed)}), 6); n != 0 {
		t.Fatalf("a list older than the watermark counted %d", n)
	}
	if stale.Observe(ev(11, opened)) || !stale.Observe(ev(15, opened)) {
		t.Fatal("a watch from an old list must skip up to the watermark and count after it")
	}
}

func TestCounter_ModificationsAndDeletionsCountNothing(t *testing.T) {
	c := newCounter(t, fake.NewSimpleClientset())
	c.ObserveList(slices.Values([]Event{ev(1, opened)}), 1)
	c.Advance(2) // MODIFIED of Event 1
	c.Advance(3) // DELETED
	if c.Observe(ev(2, opened)) {
		t.Fatal("an Event at or below the frontier was counted")
	}
	if got := c.Counts()[opened]; got != 1 {
		t.Fatalf("opened = %d, want 1", got)
	}
}

func TestCounter_CrashLosesOnlyWhatTheNextProcessRecounts(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	first := newCounter(t, client)
	first.ObserveList(slices.Values([]Event{ev(1, opened)}), 1)
	must(t, first.Flush(ctx))
	first.Observe(ev(2, opened)) // never flushed: the process dies

	second := newCounter(t, client)
	second.ObserveList(slices.Values([]Event{ev(1, opened), ev(2, opened)}), 2) // still alive, so listed again
	if got := second.Counts()[opened]; got != 2 {
		t.Fatalf("opened = %d, want 2", got)
	}
}

// TestCounter_OverlappingWritersMergeWithoutDoubleCounting: two processes
// count the same Events and flush in turn; each merges what the other
// wrote, whichever is ahead.
func TestCounter_OverlappingWritersMergeWithoutDoubleCounting(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset()
	a, b := newCounter(t, client), newCounter(t, client)
	a.ObserveList(slices.Values([]Event{ev(1, opened), ev(2, opened)}), 2)
	b.ObserveList(slices.Values([]Event{ev(1, opened)}), 1) // b's list is older
	must(t, b.Flush(ctx))                                   // watermark 1, 1 counted
	a.Observe(ev(3, opened))
	must(t, a.Flush(ctx)) // conflict, re-read, merges 2 and 3: watermark 3
	b.Observe(ev(2, opened))
	b.Observe(ev(3, opened))
	b.Observe(ev(4, opened))
	must(t, b.Flush(ctx)) // only 4 is new to the checkpoint
	for name, c := range map[string]*Counter{"a": a, "b": b, "fresh": newCounter(t, client)} {
		must(t, c.Load(ctx))
		if got := c.Counts()[opened]; got != 4 {
			t.Errorf("%s: opened = %d, want 4", name, got)
		}
	}
	cm, err := client.CoreV1().ConfigMaps("ns").Get(ctx, "checkpoint", metav1.GetOptions{})
	must(t, err)
	sum, err := Inspect(cm)
	must(t, err)
	if sum.Version != 3 || sum.Watermark != 4 || len(sum.CountedUIDs) != 0 {
		t.Fatalf("checkpoint = %+v, want version 3, watermark 4, no UIDs", sum)
	}
}

// TestCheckpoint_SizeDoesNotGrowWithEvents: an hour at 100 deliveries/s
// (360,000 Events alive, flushed every 5 s) leaves a checkpoint of the
// counter values alone, the same size as after one Event.
func TestCheckpoint_SizeDoesNotGrowWithEvents(t *testing.T) {
	ctx := context.Background()
	size := func(events, perFlush int) int {
		client := fake.NewSimpleClientset()
		c := newCounter(t, client)
		key := func(i int) Key {
			return Key{Kind: "PullRequest", Namespace: "ns", Repository: "acme/repo-" + itoa(i%100), Action: "opened"}
		}
		c.ObserveList(slices.Values([]Event(nil)), 1)
		for i := range events {
			c.Observe(ev(uint64(i+2), key(i)))
			if (i+1)%perFlush == 0 {
				must(t, c.Flush(ctx))
			}
		}
		must(t, c.Flush(ctx))
		cm, err := client.CoreV1().ConfigMaps("ns").Get(ctx, "checkpoint", metav1.GetOptions{})
		must(t, err)
		sum, err := Inspect(cm)
		must(t, err)
		var total uint64
		for _, v := range sum.Counts {
			total += v
		}
		if total != uint64(events) {
			t.Fatalf("%d Events: checkpoint counts %d", events, total)
		}
		return sum.Bytes
	}
	// 100 repositories, so both runs have the same 100 counters; ten
	// times the Events adds one digit to each value and to the watermark.
	small, large := size(36_000, 500), size(360_000, 500)
	t.Logf("checkpoint: %d bytes for 36,000 Events, %d bytes for 360,000", small, large)
	if large > small+100+1 {
		t.Fatalf("checkpoint grew with the Events: %d bytes, then %d", small, large)
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
		"trailing bytes after a group":  {`{"version":3}`, append(group(1, 1), 0)},
		"version 1 with binary UIDs":    {`{"version":1}`, group(1, 1)},
		"binary UIDs without JSON data": {"", group(1, 1)},
		"watermark not an integer":      {`{"version":3,"watermark":"abc"}`, nil},
		"watermark with a leading zero": {`{"version":3,"watermark":"012"}`, nil},
		"version 2 with a watermark":    {`{"version":2,"watermark":"12"}`, nil},
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
	client := fake.NewSimpleClientset()
	c := newCounter(t, client)
	// About 100 bytes of JSON per counter: 12,000 are more than 1 MiB.
	var evs []Event
	for i := range 12000 {
		evs = append(evs, ev(uint64(i+1), Key{Kind: "PullRequest", Namespace: "ns", Repository: "acme/repository-" + itoa(i), Action: "review_request_removed"}))
	}
	c.ObserveList(slices.Values(evs), 12000)
	if err := c.Flush(context.Background()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Flush = %v, want ErrTooLarge", err)
	}
	if got := len(c.Counts()); got != 12000 {
		t.Fatalf("in-memory counts lost on a failed flush: %d", got)
	}
}

// TestCounter_MigratesVersion1And2Checkpoints: a checkpoint written by an
// earlier version (counted UIDs, no watermark) loads; its UIDs stay counted
// whatever their Events' resourceVersions; the first flush after a list
// writes version 3 with the watermark and keeps the UIDs, which are dropped
// once LegacyRetention has passed.
func TestCounter_MigratesVersion1And2Checkpoints(t *testing.T) {
	const (
		canonical1 = types.UID("0f8fad5b-d9cb-469f-a165-70867728950e")
		canonical2 = types.UID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
		text       = types.UID("legacy-uid")
	)
	counts := `"counts":[{"kind":"Branch","namespace":"ns","repository":"acme/api","action":"pushed","value":1},` +
		`{"kind":"PullRequest","namespace":"ns","repository":"acme/api","action":"opened","value":2}]`
	v2UIDs := binary.BigEndian.AppendUint64(nil, 1_800_000_000)
	v2UIDs = binary.BigEndian.AppendUint32(v2UIDs, 2)
	r1, _ := parseUUID(canonical1)
	r2, _ := parseUUID(canonical2)
	v2UIDs = append(append(v2UIDs, r1[:]...), r2[:]...)
	cases := map[string]*corev1.ConfigMap{
		"version 1": {Data: map[string]string{DataKey: `{"version":1,` + counts +
			`,"counted":{"0f8fad5b-d9cb-469f-a165-70867728950e":1800000000,"7c9e6679-7425-40de-944b-e07fc1f90ae7":1800000000,"legacy-uid":1800000000}}`}},
		"version 2": {Data: map[string]string{DataKey: `{"version":2,` + counts + `,"counted":{"legacy-uid":1800000000}}`},
			BinaryData: map[string][]byte{UIDsKey: v2UIDs}},
	}
	for name, cm := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cm.ObjectMeta = metav1.ObjectMeta{Name: "checkpoint", Namespace: "ns"}
			client := fake.NewSimpleClientset(cm)
			now := time.Unix(1_800_000_100, 0)
			load := func() *Counter {
				c := New(Options{ConfigMaps: client.CoreV1().ConfigMaps("ns"), Name: "checkpoint", Now: func() time.Time { return now }})
				must(t, c.Load(ctx))
				return c
			}
			c := load()
			// The three counted Events are still alive (with any
			// resourceVersion); one new Event.
			listed := []Event{
				{ResourceVersion: 40, UID: canonical1, Key: opened},
				{ResourceVersion: 20, UID: text, Key: opened},
				{ResourceVersion: 30, UID: canonical2, Key: pushed},
				{ResourceVersion: 35, UID: uuidFor(99), Key: opened},
			}
			if n := c.ObserveList(slices.Values(listed), 41); n != 1 {
				t.Fatalf("counted %d of the listed Events after the upgrade, want 1", n)
			}
			must(t, c.Flush(ctx))
			got, err := client.CoreV1().ConfigMaps("ns").Get(ctx, "checkpoint", metav1.GetOptions{})
			must(t, err)
			sum, err := Inspect(got)
			must(t, err)
			if sum.Version != 3 || sum.Watermark != 41 || len(sum.CountedUIDs) != 3 || sum.Counts[opened] != 3 || sum.Counts[pushed] != 1 {
				t.Fatalf("after the first flush: %+v", sum)
			}
			// A process after the upgrade still skips them (a re-list
			// from a stale cache could show them above the watermark
			// only in theory; the UIDs are kept regardless).
			again := load()
			if again.Observe(Event{ResourceVersion: 50, UID: canonical1, Key: opened}) {
				t.Fatal("an Event counted before the upgrade was counted again")
			}
			// Past the retention the UIDs go; the counts stay.
			now = now.Add(DefaultLegacyRetention)
			again.Observe(ev(51, opened))
			must(t, again.Flush(ctx))
			got, err = client.CoreV1().ConfigMaps("ns").Get(ctx, "checkpoint", metav1.GetOptions{})
			must(t, err)
			if sum, err = Inspect(got); err != nil || len(sum.CountedUIDs) != 0 || len(got.BinaryData) != 0 || sum.Counts[opened] != 4 || sum.Watermark != 51 {
				t.Fatalf("after the retention: %+v, binaryData %d keys, %v", sum, len(got.BinaryData), err)
			}
		})
	}
}

// TestCounter_FlushBeforeAnyListKeepsALegacyCheckpoint: stopping before the
// first list completes must not drop the counted UIDs of a version 1-2
// checkpoint (no watermark can replace them yet).
func TestCounter_FlushBeforeAnyListKeepsALegacyCheckpoint(t *testing.T) {
	ctx := context.Background()
	client := fake.NewSimpleClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "checkpoint", Namespace: "ns"},
		Data: map[string]string{DataKey: `{"version":1,"counts":[{"kind":"PullRequest","namespace":"ns","repository":"acme/api","action":"opened","value":1}],` +
			`"counted":{"u1":` + itoa(int(time.Now().Unix())) + `}}`},
	})
	c := newCounter(t, client)
	must(t, c.Flush(ctx))
	again := newCounter(t, client)
	if again.Observe(Event{ResourceVersion: 9, UID: "u1", Key: opened}) || again.Counts()[opened] != 1 {
		t.Fatalf("the legacy UID was lost: counts %v", again.Counts())
	}
}

func TestParseResourceVersion_AcceptsOnlyTheAPIServersIntegers(t *testing.T) {
	for rv, want := range map[string]uint64{"1": 1, "123456789": 123456789, "18446744073709551615": 1<<64 - 1,
		"": 0, "0": 0, "012": 0, "-1": 0, "1a": 0, " 1": 0, "18446744073709551616": 0} {
		got, ok := ParseResourceVersion(rv)
		if got != want || ok != (want != 0) {
			t.Errorf("ParseResourceVersion(%q) = %d, %v; want %d", rv, got, ok, want)
		}
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
	cp.Watermark = 12345
	a, au, err := cp.encode()
	must(t, err)
	b, bu, err := cp.encode()
	must(t, err)
	if string(a) != string(b) || !bytes.Equal(au, bu) {
		t.Fatal("encoding is not deterministic")
	}
	back, err := decode(a, au)
	must(t, err)
	if !maps.Equal(back.Counts, cp.Counts) || !maps.Equal(back.Counted, cp.Counted) || back.Watermark != cp.Watermark {
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
	cp.Watermark = 77
	seed, seedUIDs, _ := cp.encode()
	f.Add(seed, seedUIDs)
	f.Add([]byte(`{"version":3,"watermark":"5","counts":[]}`), []byte(nil))
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
		if back.Watermark != got.Watermark {
			t.Fatalf("watermark %d then %d", got.Watermark, back.Watermark)
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
	ev := func(rv uint64, k Key) Event { return Event{ResourceVersion: rv, Key: k} }
	first := newCounter(t, client)
	first.Observe(ev(10, opened))
	first.Observe(ev(11, stray))
	must(t, first.Flush(ctx))

	first.Observe(ev(12, stray)) // pending when dropped
	first.DropRepository("stray/x")
	if got := first.Counts(); got[stray] != 0 || got[opened] != 1 {
		t.Fatalf("counts after drop = %v, want stray/x gone and acme/api kept", got)
	}
	first.Observe(ev(13, opened))
	must(t, first.Flush(ctx))
	// (A second instance's stale copy is re-read on its write conflict; the
	// fake clientset does not check resourceVersions, so that is left to
	// the API server tests.)
	restarted := newCounter(t, client)
	if got := restarted.Counts(); got[stray] != 0 || got[opened] != 2 {
		t.Fatalf("counts after restart = %v, want stray/x gone, acme/api 2", got)
	}
	for _, rv := range []uint64{11, 12} {
		if restarted.Observe(ev(rv, stray)) {
			t.Errorf("Event at %d of the dropped repository counted again", rv)
		}
	}
	// The repository comes back with a new delivery: it counts afresh.
	if !restarted.Observe(ev(14, stray)) || restarted.Counts()[stray] != 1 {
		t.Errorf("a new Event after the drop: counts %v, want stray/x 1", restarted.Counts())
	}
}
