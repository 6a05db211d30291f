package reconcile

import (
	"testing"
	"time"
)

func TestScan_BandAfterAPass(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 20, h, 0, 0, 0, time.UTC) }
	since := at(0)
	for _, tt := range []struct {
		name         string
		from, downTo time.Time // loaded band
		read         []int     // hours of the items this pass read, newest first
		cut          bool
		wantFrom     time.Time
		wantDownTo   time.Time
	}{
		{name: "first pass cut: what it read", read: []int{20, 18, 15}, cut: true, wantFrom: at(20), wantDownTo: at(15)},
		{name: "first pass cut before reading", cut: true},
		{name: "read to the end: down to since", read: []int{20, 18}, wantFrom: at(20), wantDownTo: since},
		{name: "nothing listed", wantFrom: since, wantDownTo: since},
		{name: "continued below the band, cut", from: at(20), downTo: at(15), read: []int{21, 14, 12}, cut: true,
			wantFrom: at(21), wantDownTo: at(12)},
		{name: "cut above the band: the band stands", from: at(20), downTo: at(15), read: []int{22}, cut: true,
			wantFrom: at(20), wantDownTo: at(15)},
		{name: "continued to the end", from: at(20), downTo: at(15), read: []int{14, 3}, wantFrom: at(20), wantDownTo: since},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := &scan{from: tt.from, downTo: tt.downTo}
			for _, h := range tt.read {
				if sc.skip(at(h)) {
					t.Fatalf("item at %d:00 is in the band it was read past", h)
				}
				sc.processed(at(h))
			}
			from, downTo := sc.next(tt.cut, since)
			if !from.Equal(tt.wantFrom) || !downTo.Equal(tt.wantDownTo) {
				t.Errorf("band [%v, %v], want [%v, %v]", downTo, from, tt.wantDownTo, tt.wantFrom)
			}
		})
	}
	band := &scan{from: at(20), downTo: at(15)}
	for h, want := range map[int]bool{21: false, 20: true, 16: true, 15: false, 14: false} {
		if band.skip(at(h)) != want {
			t.Errorf("skip(%d:00) = %v, want %v", h, !want, want)
		}
	}
	var none *scan
	if none.skip(at(16)) {
		t.Error("a pass that is not full skips nothing")
	}
}

func TestScan_BandFromTheCursor(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 20, h, 0, 0, 0, time.UTC) }
	for _, tt := range []struct {
		name             string
		stored           string
		wantFrom, wantTo time.Time
	}{
		{name: "a band", stored: "2026-11-20T20:00:00Z/2026-11-20T15:00:00Z", wantFrom: at(20), wantTo: at(15)},
		{name: "an empty band (read to the end, nothing listed)", stored: "2026-11-20T15:00:00Z/2026-11-20T15:00:00Z",
			wantFrom: at(15), wantTo: at(15)},
		{name: "none yet"},
		{name: "no separator", stored: "2026-11-20T20:00:00Z"},
		{name: "an unreadable time", stored: "2026-11-20T20:00:00Z/yesterday"},
		{name: "upside down: read again", stored: "2026-11-20T15:00:00Z/2026-11-20T20:00:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := loadScan(cursorOf(map[string]string{KeyPullsScan: tt.stored}), KeyPullsScan)
			if sc.key != KeyPullsScan || !sc.from.Equal(tt.wantFrom) || !sc.downTo.Equal(tt.wantTo) {
				t.Errorf("band %s [%v, %v], want %s [%v, %v]", sc.key, sc.downTo, sc.from, KeyPullsScan, tt.wantTo, tt.wantFrom)
			}
		})
	}
}
