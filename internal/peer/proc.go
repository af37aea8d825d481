package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proc is a peer process started by a launcher in this package. It runs in
// its own process group, so stopping it also stops whatever it spawned
// (RabbitMQ's beam and its port programs, a shell's children).
//
// Every launcher registers t.Cleanup(p.Stop); Stop is idempotent and safe to
// call earlier.
type Proc struct {
	// Name says what the process is, for messages ("proton-python broker").
	Name string
	// Addr is host:port of the AMQP listener, on 127.0.0.1; empty for clients.
	Addr string
	// WSAddr is host:port of the AMQP-over-WebSocket listener, when the
	// peer has one (StartRheaServer with WebSocket on).
	WSAddr string
	// NodeName is the Erlang node name (StartRabbitMQ only), for rabbitmqctl -n.
	NodeName string
	// MQTTAddr is host:port of the MQTT listener (StartRabbitMQWith and MQTT only).
	MQTTAddr string

	cmd    *exec.Cmd
	stdout *lineLog
	stderr *lineLog
	done   chan struct{} // closed once the process exited and its output is read
	err    error         // from cmd.Wait; read after done

	stopOnce   sync.Once
	beforeTerm []func() // graceful steps (rabbitmqctl stop) before signals
	afterStop  []func() // extra cleanup once the group is gone (epmd)

	rabbit *rabbitNode // set for RabbitMQ nodes only
}

// lineLog collects a stream's output as lines and wakes waiters on each one.
type lineLog struct {
	mu      sync.Mutex
	lines   []string
	partial []byte
	changed chan struct{} // closed and replaced whenever a line is added
	closed  bool          // the stream hit EOF (process gone)
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

// Write implements io.Writer for exec.Cmd's copying goroutine.
func (l *lineLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, strings.TrimRight(string(l.partial[:i]), "\r"))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		l.notifyLocked()
	}
	return len(b), nil
}

func (l *lineLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// finish flushes an unterminated last line and marks the stream ended.
func (l *lineLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.lines = append(l.lines, string(l.partial))
		l.partial = nil
	}
	l.closed = true
	l.notifyLocked()
}

func (l *lineLog) snapshot() (lines []string, changed <-chan struct{}, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...), l.changed, l.closed
}

func (l *lineLog) String() string {
	lines, _, _ := l.snapshot()
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// Start runs cmd as a peer process in its own process group, with its
// output captured, and registers t.Cleanup(p.Stop). It does not wait for
// readiness: use WaitLine or WaitEvent. The launchers below build on it;
// tests may use it for other peers (mosquitto_sub, a built Proton C example).
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p, err := startProc(name, cmd)
	if err != nil {
		t.Fatalf("peer: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("peer %s (pid %d) output:\n%s", p.Name, p.PID(), tail(p.Output(), 60))
		}
	})
	return p
}

// startProc starts cmd without tying it to a test; the caller owns Stop.
func startProc(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Name: name, cmd: cmd, stdout: newLineLog(), stderr: newLineLog(), done: make(chan struct{})}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	setProcessGroup(cmd)
	// Output pipes stay open while any group member lives; do not let Wait
	// hang on a straggler once the leader is gone.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		p.stdout.finish()
		p.stderr.finish()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id, which is also its process group id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// URL is "amqp://" + Addr.
func (p *Proc) URL() string { return "amqp://" + p.Addr }

// Port is the port of Addr.
func (p *Proc) Port() int {
	_, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

// Stdout is everything the process printed on stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr is everything the process printed on stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Output is stdout then stderr, for failure messages.
func (p *Proc) Output() string {
	out := p.Stdout()
	if errOut := p.Stderr(); errOut != "" {
		out += "--- stderr ---\n" + errOut
	}
	return out
}

// Events parses the JSON-object lines of stdout (the clients and servers in
// testdata print one per event); other lines are skipped.
func (p *Proc) Events() []map[string]any { return ParseEvents(p.Stdout()) }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit by itself. It returns the exit error
// (an *exec.ExitError for a non-zero status), or a timeout error after
// which the process is still running (Stop it, or let Cleanup do it).
func (p *Proc) Wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		return fmt.Errorf("peer %s (pid %d) still running after %v", p.Name, p.PID(), timeout)
	}
}

// WaitLine waits until a stdout line satisfies match and returns it. It
// fails when the process exits first or timeout passes.
func (p *Proc) WaitLine(timeout time.Duration, match func(line string) bool) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	seen := 0
	for {
		lines, changed, closed := p.stdout.snapshot()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen], nil
			}
		}
		if closed {
			return "", fmt.Errorf("peer %s (pid %d) exited (%v) before the expected line", p.Name, p.PID(), p.exitErr())
		}
		select {
		case <-changed:
		case <-timer.C:
			return "", fmt.Errorf("peer %s (pid %d): expected line not seen within %v", p.Name, p.PID(), timeout)
		}
	}
}

// WaitEvent waits for a JSON line whose "event" field is event and returns it.
func (p *Proc) WaitEvent(timeout time.Duration, event string) (map[string]any, error) {
	var ev map[string]any
	_, err := p.WaitLine(timeout, func(line string) bool {
		m, ok := parseEvent(line)
		if ok && m["event"] == event {
			ev = m
			return true
		}
		return false
	})
	return ev, err
}

func (p *Proc) exitErr() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// stopGrace is how long a peer gets to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Stop ends the process and everything in its process group: the graceful
// steps a launcher registered (rabbitmqctl stop), then SIGTERM, then
// SIGKILL after stopGrace, and waits for it. Safe to call more than once.
func (p *Proc) Stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
		default:
			for _, f := range p.beforeTerm {
				f()
			}
		}
		pid := p.PID()
		signalGroup(pid, false)
		timer := time.NewTimer(stopGrace)
		select {
		case <-p.done:
		case <-timer.C:
		}
		timer.Stop()
		// Also when the leader exited on SIGTERM: children that ignored it
		// would otherwise outlive the test.
		signalGroup(pid, true)
		<-p.done
		for _, f := range p.afterStop {
			f()
		}
	})
}

// ParseEvents parses every line of out that is a JSON object.
func ParseEvents(out string) []map[string]any {
	var evs []map[string]any
	for _, line := range strings.Split(out, "\n") {
		if m, ok := parseEvent(line); ok {
			evs = append(evs, m)
		}
	}
	return evs
}

func parseEvent(line string) (map[string]any, bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "{") {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return nil, false
	}
	return m, true
}

// Filter returns the events whose "event" field is name, in order.
func Filter(events []map[string]any, name string) []map[string]any {
	var out []map[string]any
	for _, ev := range events {
		if ev["event"] == name {
			out = append(out, ev)
		}
	}
	return out
}

// Summary returns the last "summary" event, or nil.
func Summary(events []map[string]any) map[string]any {
	s := Filter(events, "summary")
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// peers that cannot report the port they bound. Another process may take it
// before the peer binds it; launchers that can, let the peer pick (port 0)
// and read the port back instead.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peer: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// clientTimeout bounds one client run; the scripts stop themselves after
// their own --timeout (30 s by default), this only catches a hung one.
const clientTimeout = 90 * time.Second

// runClient runs a client to completion and returns its JSON events. The
// error is non-nil when it exited non-zero (the events are returned too, so
// tests can look at the "error" events) or did not finish in clientTimeout.
func runClient(t testing.TB, name string, cmd *exec.Cmd) ([]map[string]any, error) {
	t.Helper()
	p := Start(t, name, cmd)
	err := p.Wait(clientTimeout)
	if err != nil && !isExitError(err) {
		p.Stop()
	}
	evs := p.Events()
	if err != nil {
		return evs, fmt.Errorf("%s %s: %w\nstderr:\n%s", name, strings.Join(cmd.Args[1:], " "), err, tail(p.Stderr(), 30))
	}
	return evs, nil
}

func isExitError(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

// tail keeps the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
