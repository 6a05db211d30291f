package proc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartLogged_WaitReadyCountsOnlyALiveProcess(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		script  string
		ok      bool // what the health check says
		wantErr string
	}{
		{"ready while running", "echo hello; sleep 5", true, ""},
		{"exits before it is ready", "echo bye; exit 3", false, "exited early"},
		{"a health check answered for a dead process does not count", "exit 0", true, "exited early"},
		{"never ready", "sleep 60", false, "deadline"}, // outlives the 5 s wait: killed after
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := filepath.Join(dir, "p"+string(rune('a'+i))+".log")
			p, err := StartLogged("/bin/sh", []string{"-c", tt.script}, nil, nil, log)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			if tt.script == "exit 0" {
				<-p.Done() // the check below runs after it died
			}
			// A process that is ready has started: it has logged (a real
			// health check answers only once the server runs; without this,
			// a loaded machine may kill the shell before its echo).
			ready := func() bool {
				b, _ := os.ReadFile(log)
				return tt.ok && (len(b) > 0 || tt.wantErr != "")
			}
			err = p.WaitReady(context.Background(), 5*time.Second, 20*time.Millisecond, ready)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("WaitReady = %v, want %q", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "deadline") && !strings.Contains(err.Error(), log) {
				t.Errorf("the error does not name the log: %v", err)
			}
			p.Kill()
			if b, _ := os.ReadFile(log); len(b) == 0 && tt.script != "exit 0" && tt.script != "sleep 60" {
				t.Errorf("nothing logged to %s", log)
			}
			if got := Tail(log, 100); !strings.HasPrefix(got, "---- "+filepath.Base(log)) && tt.script != "exit 0" && tt.script != "sleep 60" {
				t.Errorf("Tail = %q", got)
			}
		})
	}
}
