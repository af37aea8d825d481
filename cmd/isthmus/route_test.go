package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRouteGolden: `isthmus route` prints which routes a message matches and
// what each makes of it; each case's output is kept in testdata/route.
func TestRouteGolden(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"mqtt-telemetry", []string{"--mqtt", "devices/sensor-42/telemetry/temp", "--qos", "1", "--client-id", "sensor-42"}, 0},
		{"mqtt-qos0", []string{"--mqtt", "devices/s1/telemetry", "--qos", "0"}, 0},
		{"mqtt-unsafe-client-id", []string{"--mqtt", "clients/x/status", "--client-id", "evil/+"}, 0},
		{"amqp-command", []string{"--amqp", "commands/sensor-42"}, 0},
		{"amqp-presettled", []string{"--amqp", "commands/sensor-42", "--settled"}, 0},
		{"no-route", []string{"--mqtt", "other/topic"}, 0},
		{"both-flags", []string{"--mqtt", "a", "--amqp", "b"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := isthmus(t, append([]string{"route", "-c", "testdata/route/routes.yaml"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, c.code, stderr)
			}
			got := stdout
			if c.code != 0 {
				got = strings.SplitN(stderr, "\n", 2)[0] + "\n"
			}
			matchGolden(t, filepath.Join("testdata", "route", c.name+".golden"), got, *update, "update")
		})
	}
}
