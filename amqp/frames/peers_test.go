package frames

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/internal/peer"
)

// requirePeer skips a test whose external peer is missing, naming the Debian package to install,
// and fails instead when CI=true (real peers are mandatory in CI).
func requirePeer(t *testing.T, what, pkg string) {
	t.Helper()
	peer.Missing(t, what, "the Debian package "+pkg)
}

// protonPython returns a python3 that can import proton (python3-qpid-proton), trying PATH first and
// then Debian's /usr/bin/python3 (a pyenv python on PATH may not see Debian's dist-packages).
func protonPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if err := exec.Command(py, "-c", "import proton").Run(); err == nil {
			return py
		}
	}
	requirePeer(t, "python3 module proton", "python3-qpid-proton")
	return ""
}

// protonExamples returns the directory of the Proton Python examples.
func protonExamples(t *testing.T) string {
	t.Helper()
	const dir = "/usr/share/proton/examples/python"
	if _, err := os.Stat(dir + "/broker.py"); err != nil {
		requirePeer(t, "Proton Python examples", "libqpid-proton11-dev-examples")
	}
	return dir
}

// freePort returns a loopback port that was free a moment ago (for peers that cannot report theirs).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// startPeer starts a long-running external process and stops it (by PID) at cleanup.
func startPeer(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s %v output:\n%s", name, args, out.String())
		}
	})
	return cmd
}

// runPeer runs an external client to completion within timeout; a client that does not finish
// in time is killed and reported (some examples, like tx_send without credit, may hang).
func runPeer(t *testing.T, timeout time.Duration, name string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), false
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out), true
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// session is one proxied connection: the bytes each side sent.
type session struct {
	mu       sync.Mutex
	c2s, s2c bytes.Buffer
	conns    [2]net.Conn
}

// transcript is a snapshot of a session's two streams.
type transcript struct{ c2s, s2c []byte }

// recorder is a TCP proxy on 127.0.0.1:0 that forwards to target and records every connection
// byte for byte, in both directions.
type recorder struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	sessions []*session
	wg       sync.WaitGroup
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, target: target}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(r.close)
	return r
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

func (r *recorder) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		sess := &session{conns: [2]net.Conn{c, s}}
		r.mu.Lock()
		r.sessions = append(r.sessions, sess)
		r.mu.Unlock()
		pipe := func(dst, src net.Conn, rec *bytes.Buffer) {
			defer r.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					sess.mu.Lock()
					rec.Write(buf[:n])
					sess.mu.Unlock()
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			// Half-close so the other side sees EOF.
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}
		r.wg.Add(2)
		go pipe(s, c, &sess.c2s)
		go pipe(c, s, &sess.s2c)
	}
}

// take returns snapshots of the sessions recorded since the last call.
func (r *recorder) take() []transcript {
	time.Sleep(300 * time.Millisecond) // let the last bytes of a closing peer through
	r.mu.Lock()
	sessions := r.sessions
	r.sessions = nil
	r.mu.Unlock()
	out := make([]transcript, 0, len(sessions))
	for _, s := range sessions {
		s.mu.Lock()
		out = append(out, transcript{c2s: bytes.Clone(s.c2s.Bytes()), s2c: bytes.Clone(s.s2c.Bytes())})
		s.mu.Unlock()
		s.conns[0].Close()
		s.conns[1].Close()
	}
	return out
}

func (r *recorder) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, s := range r.sessions {
		s.conns[0].Close()
		s.conns[1].Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
