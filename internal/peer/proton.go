package peer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Qpid Proton, the AMQP 1.0 reference implementation, in two bindings:
//
//   - Python (Debian python3-qpid-proton): testdata/proton/client.py and
//     broker.py, written for these tests, print one JSON line per event.
//   - C (Debian libqpid-proton11-dev + libqpid-proton11-dev-examples): the
//     upstream examples, built on first use by ProtonC.
//
// PN_TRACE_FRM=1 in a peer's environment prints every frame on its stderr.

const (
	pythonPath       = "/usr/bin/python3"
	protonPythonDeb  = "the Debian package python3-qpid-proton (with /usr/bin/python3)"
	protonCExamples  = "/usr/share/proton/examples/c"
	protonCDebs      = "the Debian packages libqpid-proton11-dev, libqpid-proton11-dev-examples, gcc and pkg-config"
	peerReadyTimeout = 20 * time.Second
)

var protonPython struct {
	once sync.Once
	err  error
}

// ProtonPython returns /usr/bin/python3 after checking that it can import
// proton. Debian's python3-qpid-proton installs into the system Python, not
// into a pyenv or venv python3 that may come first on PATH, so the path is
// fixed.
func ProtonPython(t testing.TB) string {
	t.Helper()
	protonPython.once.Do(func() {
		out, err := exec.Command(pythonPath, "-c", "import proton, proton.reactor, proton.handlers").CombinedOutput()
		if err != nil {
			protonPython.err = fmt.Errorf("%s cannot import proton: %v: %s", pythonPath, err, strings.TrimSpace(string(out)))
		}
	})
	if protonPython.err != nil {
		t.Logf("peer: %v", protonPython.err)
		Missing(t, "Qpid Proton for Python", protonPythonDeb)
	}
	return pythonPath
}

func protonScript(name string) string {
	return filepath.Join(RepoRoot(), "testdata", "proton", name)
}

// StartProtonBroker starts testdata/proton/broker.py, an in-memory queue
// broker (one queue per address, dynamic reply queues, anonymous relay,
// rcv-second, drain) on 127.0.0.1 with a port it picks itself, and returns
// once it listens. Addr is its host:port.
func StartProtonBroker(t testing.TB, args ...string) *Proc {
	t.Helper()
	py := ProtonPython(t)
	cmd := exec.Command(py, append([]string{protonScript("broker.py"), "--host", "127.0.0.1", "--port", "0"}, args...)...)
	p := Start(t, "proton-python broker", cmd)
	ev, err := p.WaitEvent(peerReadyTimeout, "listening")
	if err != nil {
		t.Fatalf("peer: %v\n%s", err, p.Output())
	}
	p.Addr = fmt.Sprintf("127.0.0.1:%v", jsonInt(ev["port"]))
	return p
}

// RunProtonClient runs testdata/proton/client.py with args (see its
// docstring: send|receive|request|serve, --url, --address, --count, settle
// modes, --credit, --drain, SASL, --idle-timeout, --max-frame-size,
// --durable, --property ...) and returns its JSON events, the last being
// the summary. A non-zero exit is returned as an error along with the events.
func RunProtonClient(t testing.TB, args ...string) ([]map[string]any, error) {
	t.Helper()
	py := ProtonPython(t)
	return runClient(t, "proton-python client", exec.Command(py, append([]string{protonScript("client.py")}, args...)...))
}

// StartProtonClient starts client.py in the background, for a receiver or
// a server that must be running before something else happens: wait for
// its "attached" event, act, then p.Wait and p.Events.
func StartProtonClient(t testing.TB, args ...string) *Proc {
	t.Helper()
	py := ProtonPython(t)
	return Start(t, "proton-python client", exec.Command(py, append([]string{protonScript("client.py")}, args...)...))
}

// The Proton C examples, as shipped in /usr/share/proton/examples/c and
// built by ProtonC. All take positional arguments; a missing one takes the
// default shown. Output is plain text, not JSON.
//
//	send HOST PORT ADDRESS COUNT      defaults "" amqp examples 10
//	    Sends COUNT messages whose body is the map {"sequence": N}, N from 1,
//	    unsettled; prints "COUNT messages sent and acknowledged" once every
//	    one is accepted; exit 1 on any other outcome or a transport error.
//	receive HOST PORT ADDRESS COUNT   defaults "" amqp examples 10
//	    Receives COUNT messages (0: forever), printing each body as
//	    pn_inspect shows it ({"sequence"=1}), accepts and settles each, then
//	    prints "COUNT messages received". Credit is granted in one go.
//	send-abort HOST PORT ADDRESS COUNT
//	    Starts COUNT large messages and aborts each one mid-transfer
//	    (transfer with aborted=true, AMQP 1.0 §2.6.14); prints
//	    "COUNT messages started and aborted".
//	broker HOST PORT                  defaults "" amqp
//	    Multi-threaded (4 threads) in-memory queue broker; PORT 0 binds a
//	    free port and prints "listening on PORT". ANONYMOUS SASL only; it
//	    loads ssl-certs/ relative to its working directory for optional TLS.
//	direct HOST PORT ADDRESS COUNT
//	    Listens itself (no broker) and receives COUNT messages from a sender
//	    or sends them to a receiver that connects to it.
var protonCBuilds sync.Map // name -> *protonCBuild

type protonCBuild struct {
	once sync.Once
	path string
	err  error
	// missing is set when the failure is an absent package rather than a
	// compile error, so the test skips instead of failing.
	missing bool
}

// ProtonC returns the path of the Proton C example name ("send",
// "receive", "broker", "send-abort", "direct"), compiling
// /usr/share/proton/examples/c/NAME.c on first use in this test binary. The
// executable is cached in os.UserCacheDir()/isthmus-peers/proton-c under a
// hash of its source and build flags, so later runs skip the compiler.
func ProtonC(t testing.TB, name string) string {
	t.Helper()
	v, _ := protonCBuilds.LoadOrStore(name, &protonCBuild{})
	b := v.(*protonCBuild)
	b.once.Do(func() { b.path, b.missing, b.err = buildProtonC(name) })
	if b.missing {
		t.Logf("peer: %v", b.err)
		Missing(t, "Qpid Proton C example "+name, protonCDebs)
	}
	if b.err != nil {
		t.Fatalf("peer: %v", b.err)
	}
	return b.path
}

func buildProtonC(name string) (path string, missing bool, err error) {
	src := filepath.Join(protonCExamples, name+".c")
	source, err := os.ReadFile(src)
	if err != nil {
		return "", true, err
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", true, err
	}
	flags, err := protonCFlags()
	if err != nil {
		return "", true, err
	}
	// thread.h is the examples' own pthread shim (broker.c includes it).
	flags = append([]string{"-I" + protonCExamples}, flags...)
	flags = append(flags, "-lpthread")

	h := sha256.New()
	h.Write(source)
	if th, err := os.ReadFile(filepath.Join(protonCExamples, "thread.h")); err == nil {
		h.Write(th)
	}
	fmt.Fprintf(h, "\x00%s\x00%s", gcc, strings.Join(flags, " "))
	key := hex.EncodeToString(h.Sum(nil))[:16]

	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "isthmus-peers", "proton-c")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("proton C cache: %w", err)
	}
	exe := filepath.Join(dir, name+"-"+key)
	if st, err := os.Stat(exe); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return exe, false, nil
	}
	// Build beside the target and rename: concurrent test binaries (go test
	// ./... runs packages in parallel) never see a half-written file.
	tmp, err := os.CreateTemp(dir, name+".build-*")
	if err != nil {
		return "", false, fmt.Errorf("proton C cache: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := append([]string{"-O1", "-o", tmp.Name(), src}, flags...)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("build Proton C example %s: gcc %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp.Name(), exe); err != nil {
		return "", false, fmt.Errorf("proton C cache: %w", err)
	}
	return exe, false, nil
}

// protonCFlags asks pkg-config for Proton's flags. Upstream ships
// libqpid-proton-core.pc and libqpid-proton-proactor.pc; Debian's
// libqpid-proton11-dev (0.37) ships only libqpid-proton.pc, whose single
// library also holds the proactor, so try the split names first.
func protonCFlags() ([]string, error) {
	pc, err := exec.LookPath("pkg-config")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, mods := range [][]string{{"libqpid-proton-core", "libqpid-proton-proactor"}, {"libqpid-proton"}} {
		out, err := exec.Command(pc, append([]string{"--cflags", "--libs"}, mods...)...).CombinedOutput()
		if err == nil {
			return strings.Fields(string(out)), nil
		}
		lastErr = fmt.Errorf("pkg-config %s: %v: %s", strings.Join(mods, " "), err, strings.TrimSpace(string(out)))
	}
	return nil, lastErr
}

var protonCListening = regexp.MustCompile(`^listening on (\d+)$`)

// StartProtonCBroker builds and starts the Proton C example broker on
// 127.0.0.1 with a port it picks itself, and returns once it listens.
func StartProtonCBroker(t testing.TB) *Proc {
	t.Helper()
	exe := ProtonC(t, "broker")
	cmd := exec.Command(exe, "127.0.0.1", "0")
	// broker.c loads ssl-certs/ from its working directory; with the
	// certificates found it offers TLS, otherwise it prints a warning.
	// Plain AMQP works either way.
	cmd.Dir = protonCExamples
	p := Start(t, "proton-c broker", cmd)
	line, err := p.WaitLine(peerReadyTimeout, protonCListening.MatchString)
	if err != nil {
		t.Fatalf("peer: %v\n%s", err, p.Output())
	}
	p.Addr = "127.0.0.1:" + protonCListening.FindStringSubmatch(line)[1]
	return p
}

// RunProtonC builds (once) and runs the Proton C example name with args to
// completion, and returns its stdout. The error is non-nil on a non-zero
// exit or after clientTimeout.
func RunProtonC(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	exe := ProtonC(t, name)
	p := Start(t, "proton-c "+name, exec.Command(exe, args...))
	err := p.Wait(clientTimeout)
	if err != nil && !isExitError(err) {
		p.Stop()
	}
	if err != nil {
		return p.Stdout(), fmt.Errorf("proton-c %s %s: %w\nstderr:\n%s", name, strings.Join(args, " "), err, tail(p.Stderr(), 30))
	}
	return p.Stdout(), nil
}

// jsonInt reads a JSON number decoded as float64 as an int.
func jsonInt(v any) int {
	f, _ := v.(float64)
	return int(f)
}
