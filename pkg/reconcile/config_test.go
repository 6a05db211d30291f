package reconcile

import (
	"testing"
	"time"
)

func TestOptionsFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		enabled bool
		wantErr bool
		check   func(Options) bool
	}{
		{"defaults", nil, true, false, func(o Options) bool { return o.Budget == 0 && o.Retention == 0 }},
		{"GitHub Enterprise Server keeps 7 days", map[string]string{EnvRetention: "168h"}, true, false,
			func(o Options) bool { return o.Retention == 168*time.Hour }},
		{"off", map[string]string{EnvReconcile: "off"}, false, false, nil},
		{"a budget past func-go's write timeout", map[string]string{EnvBudget: "40s"}, true, true, nil},
		{"not a duration", map[string]string{EnvWindow: "ninety days"}, true, true, nil},
		{"not a number", map[string]string{EnvMaxRequests: "-1"}, true, true, nil},
		{"unknown switch", map[string]string{EnvReconcile: "maybe"}, false, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var o Options
			enabled, err := OptionsFromEnv(tt.env, &o)
			if (err != nil) != tt.wantErr || (!tt.wantErr && enabled != tt.enabled) {
				t.Fatalf("enabled %v, err %v", enabled, err)
			}
			if tt.check != nil && !tt.check(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

func TestTriggers(t *testing.T) {
	for typ, want := range map[string]bool{EventType: true, PingEventType: true,
		"dev.knative.source.github.ping": false, "dev.liatr.gitpulse.reconcile.extra": false} {
		if IsTrigger(typ) != want {
			t.Errorf("IsTrigger(%q) = %v", typ, !want)
		}
	}
}
