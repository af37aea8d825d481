package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

var binary string

// TestMain builds the real binary once: the CLI is tested as a user runs it.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "isthmus-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "isthmus")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func isthmus(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "ISTHMUS_CONFIG=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := isthmus(t, "version")
	if code != 0 || !regexp.MustCompile(`^isthmus \S+ \(commit \S+\) go1\.\d+\S* linux/\w+`).MatchString(out) {
		t.Fatalf("version: exit %d, %q", code, out)
	}
}

func TestConfigDefaultParses(t *testing.T) {
	out, _, code := isthmus(t, "config", "default")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	cfg, err := config.Parse("default", []byte(out), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("printed default config does not parse: %v", err)
	}
	if !strings.HasPrefix(cfg.MQTT.Listen, "127.0.0.1:") || !cfg.Auth.Anonymous {
		t.Fatalf("default config is not local mode: mqtt.listen=%q anonymous=%v", cfg.MQTT.Listen, cfg.Auth.Anonymous)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"config"}, {"check"}, {"--log-level"}} {
		_, stderr, code := isthmus(t, args...)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d stderr %q, want exit 2 with a message", args, code, stderr)
		}
	}
}

// TestCheckGolden: `isthmus check` prints every problem as FILE:LINE:COL:
// key: message and exits 1; a good file prints ok and exits 0.
func TestCheckGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/check/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata/check/*.yaml")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			stdout, stderr, code := isthmus(t, "check", "-c", f)
			got := stdout + stderr
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Fatalf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
			wantCode := 1
			if strings.HasPrefix(filepath.Base(f), "ok") {
				wantCode = 0
			}
			if code != wantCode {
				t.Fatalf("exit %d, want %d", code, wantCode)
			}
		})
	}
}

// logLine is one JSON log record from the running binary.
type logLine map[string]any

// TestRunReloadShutdown runs the binary on a config file: one startup line
// per listener, SIGHUP with a broken file keeps the old config, SIGHUP with a
// good file reloads, SIGTERM sends MQTT 5 DISCONNECT 0x8B and exits 0.
func TestRunReloadShutdown(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "isthmus.yaml")
	good := "gateway: {shutdown_timeout: 3s}\nauth: {anonymous: true}\nmqtt: {listen: \"127.0.0.1:0\"}\nhttp: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\"}\n"
	os.WriteFile(cfgFile, []byte(good), 0o644)

	cmd := exec.Command(binary, "run", "-c", cfgFile, "--log-format", "json")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan logLine, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			} else {
				t.Logf("non-JSON log line: %s", sc.Text())
			}
		}
		close(lines)
	}()
	next := func(msg string) logLine {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("process ended before logging %q", msg)
				}
				if l["msg"] == msg {
					return l
				}
			case <-timeout:
				t.Fatalf("no %q log line in 10s", msg)
			}
		}
	}
	urls := map[string]string{}
	for i := 0; i < 3; i++ {
		l := next("listening")
		urls[l["listener"].(string)] = l["url"].(string)
	}
	mqttAddr := strings.TrimPrefix(urls["mqtt.listen"], "mqtt://")
	if !strings.HasPrefix(urls["http.listen"], "ws://127.0.0.1:") || !strings.HasSuffix(urls["http.listen"], "/mqtt") || !strings.HasPrefix(urls["admin.listen"], "http://127.0.0.1:") {
		t.Fatalf("startup lines: %v", urls)
	}

	// An MQTT 5 client stays connected across reloads.
	c, err := net.Dial("tcp", mqttAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 60, 0, 0, 3, 'c', 'l', 'i'})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	ack := make([]byte, 2)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 {
		t.Fatalf("CONNACK: %x %v", ack, err)
	}
	io.ReadFull(c, make([]byte, ack[1]))

	os.WriteFile(cfgFile, []byte(strings.Replace(good, `mqtt: {listen: "127.0.0.1:0"}`, `mqtt: {listen: "127.0.0.1:0", max_conections: 5}`, 1)), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	if l := next("config reload refused; keeping the running config"); !strings.Contains(l["problem"].(string), "max_conections") {
		t.Fatalf("reload error does not name the key: %v", l)
	}
	os.WriteFile(cfgFile, []byte(strings.Replace(good, "3s", "4s", 1)), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	next("config reloaded")

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	disc, _ := io.ReadAll(c)
	if len(disc) < 3 || disc[0] != 0xE0 || disc[2] != 0x8B {
		t.Fatalf("client got %x at shutdown, want DISCONNECT 0x8B", disc)
	}
	next("stopped")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("shutdown took %v, timeout 4s", took)
	}
}
