package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gatewayURLs are the endpoints of a gateway started by startGateway.
type gatewayURLs struct {
	mqtt, amqp, wsMQTT, wsAMQP string
}

// startGateway runs the binary in local mode's shape (anonymous, the two
// transparent routes of docs/mapping.md) on ephemeral ports and reads the
// URLs from its "listening" log lines. It is stopped with SIGTERM at cleanup.
func startGateway(t testing.TB) gatewayURLs {
	t.Helper()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "isthmus.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`gateway: {shutdown_timeout: 2s, data_dir: %q}
auth: {anonymous: true}
amqp: {listen: "127.0.0.1:0"}
mqtt: {listen: "127.0.0.1:0"}
http: {listen: "127.0.0.1:0"}
admin: {listen: ""}
`, filepath.Join(dir, "data"))+localRoutes)
	urls := runGateway(t, "run", "-c", cfgFile, "--log-format", "json").listening(t, "mqtt.listen", "amqp.listen", "http.listen", "http.amqp_path")
	g := gatewayURLs{mqtt: urls["mqtt.listen"], amqp: urls["amqp.listen"], wsMQTT: urls["http.listen"], wsAMQP: urls["http.amqp_path"]}
	if !strings.HasPrefix(g.mqtt, "mqtt://") || !strings.HasPrefix(g.amqp, "amqp://") ||
		!strings.HasSuffix(g.wsMQTT, "/mqtt") || !strings.HasSuffix(g.wsAMQP, "/amqp") {
		t.Fatalf("listening lines: %v", urls)
	}
	return g
}

// subProc is a running `isthmus sub`.
type subProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr chan string // lines after the ready line
	done   chan struct{}
}

// startSub runs `isthmus sub args...` and returns once it printed that it
// is subscribed, so that a publish after it cannot be missed.
func startSub(t *testing.T, args ...string) *subProc {
	t.Helper()
	p := &subProc{cmd: exec.Command(binary, append([]string{"sub"}, args...)...), stderr: make(chan string, 100), done: make(chan struct{})}
	p.cmd.Stdout = &p.stdout
	errPipe, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(errPipe)
		isReady := false
		for sc.Scan() {
			if !isReady && strings.Contains(sc.Text(), "subscribed to") {
				isReady = true
				close(ready)
				continue
			}
			select {
			case p.stderr <- sc.Text():
			default:
			}
		}
		p.cmd.Wait()
		close(p.done)
	}()
	select {
	case <-ready:
		return p
	case <-p.done:
		t.Fatalf("sub %v ended before subscribing: %s", args, drain(p.stderr))
	case <-time.After(10 * time.Second):
		t.Fatalf("sub %v not subscribed in 10s", args)
	}
	return nil
}

func drain(c chan string) string {
	var lines []string
	for {
		select {
		case l := <-c:
			lines = append(lines, l)
		default:
			return strings.Join(lines, "\n")
		}
	}
}

// wait returns the sub's stdout and exit code once it ended.
func (p *subProc) wait(t *testing.T) (string, int) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("sub did not exit in 10s; stdout so far %q", p.stdout.String())
	}
	return p.stdout.String(), p.cmd.ProcessState.ExitCode()
}

// TestPubSub crosses the bridge both ways with real clients, over TCP and
// over WebSocket: each sub must print exactly what each pub sent.
func TestPubSub(t *testing.T) {
	g := startGateway(t)
	tests := []struct {
		name           string
		subURL, pubURL string
		filter, topic  string
		wantPub        string // outcome printed per message
	}{
		{"mqtt-pub amqp-sub", g.amqp, g.mqtt, "a/+", "a/b", "acknowledged (PUBACK)"},
		{"amqp-pub mqtt-sub", g.mqtt, g.amqp, "x/#", "x/y/z", "accepted"},
		{"ws mqtt-pub amqp-sub", g.wsAMQP, g.wsMQTT, "wa/+", "wa/b", "acknowledged (PUBACK)"},
		{"ws amqp-pub mqtt-sub", g.wsMQTT, g.wsAMQP, "wx/#", "wx/y", "accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := startSub(t, "--url", tt.subURL, "--topic", tt.filter, "--count", "3", "--timeout", "10s")
			out, errOut, code := isthmus(t, "pub", "--url", tt.pubURL, "--topic", tt.topic, "--count", "3", "--qos", "1")
			if code != 0 {
				t.Fatalf("pub exit %d: %s%s", code, out, errOut)
			}
			var want string
			for i := 1; i <= 3; i++ {
				want += fmt.Sprintf("%d %s %s\n", i, tt.topic, tt.wantPub)
			}
			if out != want {
				t.Fatalf("pub printed\n%s\nwant\n%s", out, want)
			}
			got, code := sub.wait(t)
			if code != 0 {
				t.Fatalf("sub exit %d: %s", code, drain(sub.stderr))
			}
			want = fmt.Sprintf("%[1]s hello 1\n%[1]s hello 2\n%[1]s hello 3\n", tt.topic)
			if got != want {
				t.Fatalf("sub printed\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestSubJSON: an AMQP sub with --json shows the gateway's annotations and
// the application properties a pub set.
func TestSubJSON(t *testing.T) {
	g := startGateway(t)
	sub := startSub(t, "--url", g.amqp, "--address", "j/#", "--count", "2", "--json", "--timeout", "10s")
	if out, errOut, code := isthmus(t, "pub", "--url", g.mqtt, "--topic", "j/mqtt", "--message", "from mqtt"); code != 0 {
		t.Fatalf("pub mqtt: exit %d %s%s", code, out, errOut)
	}
	if out, errOut, code := isthmus(t, "pub", "--url", g.amqp, "--address", "j/amqp", "--message", "from amqp", "--property", "k=v", "--content-type", "text/plain"); code != 0 || out != "1 j/amqp accepted\n" {
		t.Fatalf("pub amqp: exit %d %q %s", code, out, errOut)
	}
	got, code := sub.wait(t)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("sub exit %d, output %q", code, got)
	}
	var m1, m2 map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &m2); err != nil {
		t.Fatal(err)
	}
	ann, _ := m1["annotations"].(map[string]any)
	if m1["topic"] != "j/mqtt" || m1["payload"] != "from mqtt" || ann["x-opt-mqtt-topic"] != "j/mqtt" {
		t.Fatalf("message from MQTT: %s", lines[0])
	}
	app, _ := m2["application_properties"].(map[string]any)
	props, _ := m2["properties"].(map[string]any)
	if m2["payload"] != "from amqp" || app["k"] != "v" || props["content-type"] != "text/plain" {
		t.Fatalf("message from AMQP: %s", lines[1])
	}
}

// TestPubSettledAndUnsettled: an unsettled AMQP publish reports the
// gateway's outcome, a pre-settled one says there is none.
func TestPubSettledAndUnsettled(t *testing.T) {
	g := startGateway(t)
	out, errOut, code := isthmus(t, "pub", "--url", g.amqp, "--address", "nobody/listens", "--count", "2")
	if code != 0 || out != "1 nobody/listens accepted\n2 nobody/listens accepted\n" {
		t.Fatalf("unsettled: exit %d %q %s", code, out, errOut)
	}
	out, errOut, code = isthmus(t, "pub", "--url", g.amqp, "--address", "nobody/listens", "--settled")
	if code != 0 || out != "1 nobody/listens sent (pre-settled, no outcome)\n" {
		t.Fatalf("settled: exit %d %q %s", code, out, errOut)
	}
	// A sender to a filter is the user's mistake: caught before connecting.
	_, errOut, code = isthmus(t, "pub", "--url", g.amqp, "--address", "a/#")
	if code != 2 || !strings.Contains(errOut, "wildcards") {
		t.Fatalf("filter: exit %d %q", code, errOut)
	}
}

func TestPubSubBadURL(t *testing.T) {
	for _, args := range [][]string{
		{"pub", "--url", "http://127.0.0.1:1883", "--topic", "a"},
		{"sub", "--url", "tcp://127.0.0.1:1883", "--topic", "a"},
		{"pub", "--url", "ws://127.0.0.1:8080/", "--topic", "a"},
		{"bench", "--mqtt", "mqtt://127.0.0.1:1883", "--amqp", "http://127.0.0.1:5672"},
		{"pub", "--topic", "a"},
	} {
		_, errOut, code := isthmus(t, args...)
		if code != 2 || !strings.Contains(errOut, "mqtt://HOST") || !strings.Contains(errOut, "ws://HOST:PORT/amqp") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 listing the supported URL forms", args, code, errOut)
		}
	}
}

func TestPubSubConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"pub", "--url", "mqtt://" + addr, "--topic", "a"},
		{"pub", "--url", "amqp://" + addr, "--topic", "a"},
		{"sub", "--url", "ws://" + addr + "/amqp", "--topic", "a"},
	} {
		_, errOut, code := isthmus(t, args...)
		if code != 1 || !strings.Contains(errOut, "at "+addr+": connection refused") {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 naming %s", args, code, errOut, addr)
		}
	}
}
