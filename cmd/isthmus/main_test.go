package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
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
	return runBinary(t, nil, args...)
}

// runBinary runs the built binary to completion with stdin (nil: none) and
// returns what it printed and its exit code.
func runBinary(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "ISTHMUS_CONFIG=")
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// localRoutes are local mode's transparent routes (config/default.yaml,
// docs/mapping.md).
const localRoutes = `routes:
  - name: default-mqtt-to-amqp
    from: {mqtt: "#"}
    to: {amqp: "{topic}"}
  - name: default-amqp-to-mqtt
    from: {amqp: "#", queues: false}
    to: {mqtt: "{address}"}
`

// writeFile replaces a file in one rename, so that the gateway never reads
// it half-written.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// gatewayProc is the binary running as a gateway, its log collected line by
// line.
type gatewayProc struct {
	cmd *exec.Cmd

	mu      sync.Mutex
	lines   []string      // every log line, raw
	changed chan struct{} // closed and replaced on each line
	done    chan struct{} // the log is at EOF and the process waited for
	waitErr error         // what Wait returned, once done is closed
}

// runGateway starts the binary with args (which make it run a gateway and
// log JSON to stderr). At cleanup it is stopped with SIGTERM, and killed
// if it is still running 5s later.
func runGateway(t testing.TB, args ...string) *gatewayProc {
	t.Helper()
	g := &gatewayProc{cmd: exec.Command(binary, args...), changed: make(chan struct{}), done: make(chan struct{})}
	g.cmd.Env = append(os.Environ(), "ISTHMUS_CONFIG=")
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		// A Reader, not a Scanner: mochi's packet dumps can exceed a
		// Scanner's line limit, and a reader that stops would block the
		// gateway on a full pipe.
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				g.mu.Lock()
				g.lines = append(g.lines, strings.TrimRight(line, "\n"))
				close(g.changed)
				g.changed = make(chan struct{})
				g.mu.Unlock()
			}
			if err != nil {
				break
			}
		}
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(5 * time.Second):
			g.cmd.Process.Kill()
			<-g.done
			t.Error("gateway did not stop within 5s of SIGTERM")
		}
	})
	return g
}

// mark is the number of log lines so far, for waitLog to start after.
func (g *gatewayProc) mark() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.lines)
}

// log is the whole log so far.
func (g *gatewayProc) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.lines...)
}

// waitLog waits for a JSON log line from index from on that match accepts.
func (g *gatewayProc) waitLog(t testing.TB, from int, timeout time.Duration, match func(logLine) bool) logLine {
	t.Helper()
	deadline := time.After(timeout)
	for i := from; ; {
		g.mu.Lock()
		lines, changed := g.lines[i:], g.changed
		g.mu.Unlock()
		for _, raw := range lines {
			i++
			var l logLine
			if json.Unmarshal([]byte(raw), &l) == nil && match(l) {
				return l
			}
		}
		select {
		case <-changed:
		case <-g.done:
			if g.mark() == i {
				t.Fatalf("gateway ended before the expected log line; log:\n%s", strings.Join(g.log(), "\n"))
			}
		case <-deadline:
			t.Fatalf("expected log line not seen in %v; log since:\n%s", timeout, strings.Join(g.log()[from:], "\n"))
		}
	}
}

// msgIs matches the log lines whose msg is msg.
func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l["msg"] == msg }
}

// listening waits for the "listening" line of each named listener and
// returns their URLs by name.
func (g *gatewayProc) listening(t testing.TB, names ...string) map[string]string {
	t.Helper()
	urls := map[string]string{}
	for _, name := range names {
		l := g.waitLog(t, 0, 10*time.Second, func(l logLine) bool { return l["msg"] == "listening" && l["listener"] == name })
		urls[name], _ = l["url"].(string)
	}
	return urls
}

// exited waits for the process to end by itself and returns what Wait said.
func (g *gatewayProc) exited(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case <-g.done:
		return g.waitErr
	case <-time.After(within):
		t.Fatalf("gateway still running %v later", within)
		return nil
	}
}

// mqttConnect is an MQTT CONNECT of version (4 = 3.1.1, or 5) with a clean
// session, keep-alive in seconds, and a user name and password unless user
// is "".
func mqttConnect(version byte, clientID string, keepAlive uint16, user, pass string) []byte {
	flags := byte(0x02)
	if user != "" {
		flags |= 0xC0
	}
	body := append(mqttString("MQTT"), version, flags, byte(keepAlive>>8), byte(keepAlive))
	if version == 5 {
		body = append(body, 0) // no properties
	}
	body = append(body, mqttString(clientID)...)
	if user != "" {
		body = append(body, mqttString(user)...)
		body = append(body, mqttString(pass)...)
	}
	return append([]byte{0x10, byte(len(body))}, body...)
}

func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// mqttDial connects to addr and sends connect; it fails t unless a CONNACK
// accepts it. The connection keeps a read deadline 5s after the CONNECT.
func mqttDial(t *testing.T, addr string, connect []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(connect)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	head := make([]byte, 2)
	if _, err := io.ReadFull(c, head); err != nil || head[0] != 0x20 || head[1] >= 0x80 {
		c.Close()
		t.Fatalf("CONNACK header % x %v", head, err)
	}
	rest := make([]byte, head[1])
	if _, err := io.ReadFull(c, rest); err != nil || len(rest) < 2 || rest[1] != 0 {
		c.Close()
		t.Fatalf("CONNACK % x % x %v", head, rest, err)
	}
	return c
}

// matchGolden fails t unless got is what the golden file holds; with update
// (the flag -flagName) it writes got to the file first.
func matchGolden(t *testing.T, golden, got string, update bool, flagName string) {
	t.Helper()
	if update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -%s)", err, flagName)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
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
			matchGolden(t, strings.TrimSuffix(f, ".yaml")+".golden", got, *update, "update")
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
	writeFile(t, cfgFile, good)

	g := runGateway(t, "run", "-c", cfgFile, "--log-format", "json")
	urls := g.listening(t, "mqtt.listen", "http.listen", "admin.listen")
	mqttAddr := strings.TrimPrefix(urls["mqtt.listen"], "mqtt://")
	if !strings.HasPrefix(urls["http.listen"], "ws://127.0.0.1:") || !strings.HasSuffix(urls["http.listen"], "/mqtt") || !strings.HasPrefix(urls["admin.listen"], "http://127.0.0.1:") {
		t.Fatalf("startup lines: %v", urls)
	}

	// An MQTT 5 client stays connected across reloads.
	c := mqttDial(t, mqttAddr, mqttConnect(5, "cli", 60, "", ""))
	defer c.Close()

	writeFile(t, cfgFile, strings.Replace(good, `mqtt: {listen: "127.0.0.1:0"}`, `mqtt: {listen: "127.0.0.1:0", max_conections: 5}`, 1))
	from := g.mark()
	g.cmd.Process.Signal(syscall.SIGHUP)
	if l := g.waitLog(t, from, 10*time.Second, msgIs("config reload refused; keeping the running config")); !strings.Contains(l["problem"].(string), "max_conections") {
		t.Fatalf("reload error does not name the key: %v", l)
	}
	writeFile(t, cfgFile, strings.Replace(good, "3s", "4s", 1))
	from = g.mark()
	g.cmd.Process.Signal(syscall.SIGHUP)
	g.waitLog(t, from, 10*time.Second, msgIs("config reloaded"))

	start := time.Now()
	from = g.mark()
	g.cmd.Process.Signal(syscall.SIGTERM)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	disc, _ := io.ReadAll(c)
	if len(disc) < 3 || disc[0] != 0xE0 || disc[2] != 0x8B {
		t.Fatalf("client got %x at shutdown, want DISCONNECT 0x8B", disc)
	}
	g.waitLog(t, from, 10*time.Second, msgIs("stopped"))
	if err := g.exited(t, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("shutdown took %v, timeout 4s", took)
	}
}
