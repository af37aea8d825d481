package main

import (
	"regexp"
	"strconv"
	"testing"
)

// TestBenchGateway runs the load generator through the gateway both ways at
// QoS 1 for 2 s: at-least-once must lose nothing and, with clean
// connections, duplicate nothing.
func TestBenchGateway(t *testing.T) {
	g := startGateway(t)
	for _, mode := range []string{"mqtt-to-amqp", "amqp-to-mqtt"} {
		t.Run(mode, func(t *testing.T) {
			out, errOut, code := isthmus(t, "bench", "--mqtt", g.mqtt, "--amqp", g.amqp, "--mode", mode,
				"--qos", "1", "--duration", "2s", "--rate", "1000", "--publishers", "2", "--size", "64", "--wait", "5s")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			num := func(key string) int {
				t.Helper()
				m := regexp.MustCompile(`(?m)^` + key + `\s+(\d+)`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no %q line in\n%s", key, out)
				}
				n, _ := strconv.Atoi(m[1])
				return n
			}
			sent, received := num("sent"), num("received")
			// 1000 msg/s for 2 s; a slow machine may send fewer, never none.
			if sent < 500 || sent > 2100 || received != sent {
				t.Fatalf("sent %d received %d\n%s", sent, received, out)
			}
			if lost, dups, errs := num("lost"), num("duplicates"), num("errors"); lost != 0 || dups != 0 || errs != 0 {
				t.Fatalf("lost %d duplicates %d errors %d\n%s", lost, dups, errs, out)
			}
			if !regexp.MustCompile(`(?m)^latency\s+p50 \S+\s+p99 \S+\s+max \S+$`).MatchString(out) {
				t.Fatalf("no latency line in\n%s", out)
			}
			if !regexp.MustCompile(`(?m)^\s*1\.0s sent \d+ received \d+ \(\d+ msg/s\)$`).MatchString(errOut) {
				t.Fatalf("no progress line on stderr:\n%s", errOut)
			}
		})
	}
}
