package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// errNoField: /proc/PID/status has no such field.
var errNoField = errors.New("no such field")

// procStatus reads one "kB" field (VmRSS, VmHWM) of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, field, errNoField)
}

// vmRSS reads a process's resident set size in bytes; it skips t where
// there is no /proc.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	v, err := procStatus(pid, "VmRSS")
	switch {
	case errors.Is(err, errNoField):
		t.Fatal(err)
	case err != nil:
		t.Skipf("no /proc: %v", err)
	}
	return v
}

// TestIdleMemory measures the real binary: RSS at idle and per idle MQTT
// connection (SPEC §9 targets: under 20 MiB idle, under 20 KiB a connection).
// It asserts loose bounds that catch regressions, and logs the figures.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cfg := "auth: {anonymous: true}\nlimits: {connect_rate: 0}\nmqtt: {listen: \"127.0.0.1:0\", connect_timeout: 30s}\nadmin: {listen: \"\"}\n"
	cfgFile := filepath.Join(t.TempDir(), "isthmus.yaml")
	writeFile(t, cfgFile, cfg)
	g := runGateway(t, "--log-format", "json", "-c", cfgFile) // no command: run
	addr := strings.TrimPrefix(g.listening(t, "mqtt.listen")["mqtt.listen"], "mqtt://")
	if addr == "" {
		t.Fatal("no listening line")
	}
	time.Sleep(500 * time.Millisecond)
	idle := vmRSS(t, g.cmd.Process.Pid)

	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		conns = append(conns, mqttDial(t, addr, mqttConnect(4, fmt.Sprintf("idle-%04d", i), 120, "", "")))
	}
	time.Sleep(time.Second)
	busy := vmRSS(t, g.cmd.Process.Pid)
	per := (busy - idle) / n
	t.Logf("idle RSS %.1f MiB; with %d idle MQTT connections %.1f MiB: %d bytes per connection",
		float64(idle)/(1<<20), n, float64(busy)/(1<<20), per)
	if idle > 40<<20 {
		t.Errorf("idle RSS %d MiB (target 20 MiB)", idle>>20)
	}
	if per > 48<<10 {
		t.Errorf("%d bytes per idle connection (target 20 KiB)", per)
	}
}
