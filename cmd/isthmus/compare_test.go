package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/internal/peer"
)

// benchResult is what one `isthmus bench` run printed.
type benchResult struct {
	received float64 // msg/s
	p99      string
	lost     int
}

var (
	benchReceived = regexp.MustCompile(`(?m)^received\s+\d+ msg in [\d.]+ s = (\d+) msg/s`)
	benchP99      = regexp.MustCompile(`(?m)^latency\s+p50 \S+\s+p99 (\S+)`)
	benchLost     = regexp.MustCompile(`(?m)^lost\s+(\d+)`)
)

// runBench runs `isthmus bench args...` and parses its result table.
func runBench(tb testing.TB, args ...string) benchResult {
	tb.Helper()
	// bench exits 1 when messages were lost; its table is still the result.
	out, err := exec.Command(binary, append([]string{"bench"}, args...)...).Output()
	if err != nil && !benchLost.Match(out) {
		tb.Fatalf("isthmus bench %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var r benchResult
	if m := benchReceived.FindSubmatch(out); m != nil {
		r.received, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := benchP99.FindSubmatch(out); m != nil {
		r.p99 = string(m[1])
	}
	m := benchLost.FindSubmatch(out)
	if m == nil {
		tb.Fatalf("isthmus bench %s: no result table:\n%s", strings.Join(args, " "), out)
	}
	r.lost, _ = strconv.Atoi(string(m[1]))
	return r
}

// BenchmarkVsRabbitMQ is SPEC §9's side-by-side run: the same `isthmus bench`
// jobs against the gateway (local mode's shape on ephemeral ports) and
// against a private RabbitMQ 3.10 node with its MQTT and AMQP 1.0 plugins, on
// this machine, one after the other. It reports each side's received msg/s
// and their ratio (received rates: a side that loses messages is not paid for
// them), and fails if the gateway loses a QoS 1 message. One
// iteration is the whole comparison (about a minute):
//
//	go test -run '^$' -bench VsRabbitMQ -benchtime 1x ./cmd/isthmus/
//
// ISTHMUS_BENCH_DURATION (default 5s) is each run's length.
func BenchmarkVsRabbitMQ(b *testing.B) {
	dur := 5 * time.Second
	if v := os.Getenv("ISTHMUS_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("ISTHMUS_BENCH_DURATION: %v", err)
		}
		dur = d
	}
	rmq := peer.StartRabbitMQWith(b, peer.RabbitMQOptions{MQTT: true})
	g := startGateway(b)
	common := []string{"--size", "64", "--duration", dur.String()}
	jobs := []struct {
		mode string
		qos  int
	}{{"mqtt-to-amqp", 0}, {"mqtt-to-amqp", 1}, {"amqp-to-mqtt", 0}, {"amqp-to-mqtt", 1}, {"mqtt-to-mqtt", 0}, {"mqtt-to-mqtt", 1}}
	for range b.N {
		var table strings.Builder
		fmt.Fprintf(&table, "%-14s %-3s %30s %30s %7s\n", "mode", "QoS", "isthmus msg/s (p99, lost)", "RabbitMQ msg/s (p99, lost)", "ratio")
		for _, j := range jobs {
			args := append([]string{"--mode", j.mode, "--qos", strconv.Itoa(j.qos)}, common...)
			ours := runBench(b, append(args, "--mqtt", g.mqtt, "--amqp", g.amqp)...)
			theirs := runBench(b, append(args, "--mqtt", "mqtt://"+rmq.MQTTAddr, "--amqp", rmq.URL(), "--amqp-address", "/topic/{topic}")...)
			if j.qos == 1 && ours.lost > 0 {
				b.Errorf("%s QoS 1: isthmus lost %d messages", j.mode, ours.lost)
			}
			ratio := 0.0
			if theirs.received > 0 {
				ratio = ours.received / theirs.received
			}
			fmt.Fprintf(&table, "%-14s %-3d %30s %30s %6.2fx\n", j.mode, j.qos,
				fmt.Sprintf("%.0f (%s, %d)", ours.received, ours.p99, ours.lost),
				fmt.Sprintf("%.0f (%s, %d)", theirs.received, theirs.p99, theirs.lost), ratio)
			name := j.mode + "-qos" + strconv.Itoa(j.qos)
			b.ReportMetric(ours.received, name+"-isthmus-msg/s")
			b.ReportMetric(theirs.received, name+"-rabbitmq-msg/s")
		}
		b.Logf("one publisher, 64 B, open loop, %v per run, this machine:\n%s", dur, table.String())
	}
}
