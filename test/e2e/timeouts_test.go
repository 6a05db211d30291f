package e2e

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Bounded resources: a client that sends half its headers and then nothing
// (slowloris) is disconnected by every server of the stack; it used to hold
// a connection and a goroutine for as long as it liked.
func TestServers_DisconnectAClientThatNeverFinishesItsHeaders(t *testing.T) {
	s := stack(t)
	tests := []struct {
		name, url string
		within    time.Duration
	}{
		// Bounds with room for this branch's 10 s and main's 2 s (every
		// server runs with func-go's or the adapter's timeouts, as deployed).
		// The recorder is asked directly: the stack's stand-in for
		// queue-proxy in front of it waits a minute for headers, as
		// queue-proxy does (localrun.startQueue).
		{"receive adapter", s.WebhookURL(), 12 * time.Second},
		{"recorder", s.RecorderProcessURL(), 12 * time.Second},
		{"metrics", s.MetricsURL(), 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host := strings.TrimPrefix(tt.url, "http://")
			host, _, _ = strings.Cut(host, "/")
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = conn.SetReadDeadline(start.Add(tt.within + 5*time.Second))
			_, _ = io.Copy(io.Discard, conn) // returns when the server closes
			if waited := time.Since(start); waited > tt.within {
				t.Fatalf("connection held for %s, want closed within %s", waited.Round(time.Millisecond), tt.within)
			} else {
				t.Logf("closed after %s", waited.Round(time.Millisecond))
			}
		})
	}
}
