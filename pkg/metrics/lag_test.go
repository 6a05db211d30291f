package metrics

import (
	"testing"
	"time"
)

func TestLagHistogram_ObservesEachLagInItsBucketOnce(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		// written is the Event's eventTime, relative to now (nil: none).
		written *time.Duration
		// wantLE is the smallest bucket bound that counts it; 0 when it
		// is not observed at all, -1 for +Inf only.
		wantLE  float64
		wantSum float64
	}{
		{"a millisecond behind", ago(time.Millisecond), 0.005, 0.001},
		{"exactly on a bound", ago(10 * time.Millisecond), 0.01, 0.01},
		{"just above a bound", ago(10*time.Millisecond + time.Microsecond), 0.025, 0.010001},
		{"seconds behind", ago(3 * time.Second), 5, 3},
		{"past the last bound", ago(2 * time.Minute), -1, 120},
		{"the recorder's clock ahead: zero", ago(-2 * time.Second), 0.005, 0},
		{"no eventTime: not observed", nil, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newLagHistogram(func() time.Time { return now })
			var written int64
			if tc.written != nil {
				written = now.Add(-*tc.written).UnixNano()
			}
			h.observe(written)
			s := h.snapshot()
			wantCount := uint64(1)
			if tc.wantLE == 0 {
				wantCount = 0
			}
			if s.count != wantCount || s.sum < tc.wantSum-1e-9 || s.sum > tc.wantSum+1e-9 {
				t.Fatalf("count %d sum %v, want %d and %v", s.count, s.sum, wantCount, tc.wantSum)
			}
			for _, le := range eventLagBuckets {
				want := uint64(0)
				if tc.wantLE > 0 && le >= tc.wantLE {
					want = 1
				}
				if s.buckets[le] != want {
					t.Errorf("bucket le=%v holds %d, want %d (%v)", le, s.buckets[le], want, s.buckets)
				}
			}
		})
	}
}

func ago(d time.Duration) *time.Duration { return &d }
