package reconcile

import "testing"

func TestTriggers(t *testing.T) {
	for typ, want := range map[string]bool{EventType: true, PingEventType: true,
		"dev.knative.source.github.ping": false, "dev.liatr.gitpulse.reconcile.extra": false} {
		if IsTrigger(typ) != want {
			t.Errorf("IsTrigger(%q) = %v", typ, !want)
		}
	}
}
