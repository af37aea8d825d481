package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmRSS reads a process's resident set size in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestIdleMemory measures the real binary: RSS at idle and per idle MQTT
// connection (SPEC §9 targets: under 20 MiB idle, under 20 KiB a connection).
// It asserts loose bounds that catch regressions, and logs the figures.
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cmd := exec.Command(binary, "--log-format", "json")
	cmd.Env = append(os.Environ(), "ISTHMUS_CONFIG=")
	cfg := "auth: {anonymous: true}\nlimits: {connect_rate: 0}\nmqtt: {listen: \"127.0.0.1:0\", connect_timeout: 30s}\nadmin: {listen: \"\"}\n"
	f, _ := os.CreateTemp(t.TempDir(), "*.yaml")
	f.WriteString(cfg)
	f.Close()
	cmd.Args = append(cmd.Args, "-c", f.Name())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var addr string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "listening" {
			addr = strings.TrimPrefix(l["url"].(string), "mqtt://")
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if addr == "" {
		t.Fatal("no listening line")
	}
	time.Sleep(500 * time.Millisecond)
	idle := vmRSS(t, cmd.Process.Pid)

	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		id := fmt.Sprintf("idle-%04d", i)
		c.Write(append([]byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 120, 0, byte(len(id))}, id...))
		ack := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("CONNACK %d: %x %v", i, ack, err)
		}
	}
	time.Sleep(time.Second)
	busy := vmRSS(t, cmd.Process.Pid)
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
