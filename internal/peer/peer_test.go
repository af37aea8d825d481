package peer

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"
)

// These tests prove the harness against the real peers alone, without the
// project's AMQP engine: every peer here talks to another real peer.

func TestMain(m *testing.M) {
	code := m.Run()
	StopSharedRabbitMQ() // see SharedRabbitMQ
	os.Exit(code)
}

// TestStopEndsProcessGroup: Stop must end the children a peer spawned, not
// only the process it started.
func TestStopEndsProcessGroup(t *testing.T) {
	sh := Command(t, "sh", "the Debian package dash")
	// The child ignores SIGTERM, so only the group SIGKILL can end it.
	p := Start(t, "sh", exec.Command(sh, "-c", `(trap "" TERM; exec sleep 300) & echo "child $!"; wait`))
	line, err := p.WaitLine(10*time.Second, func(l string) bool { return strings.HasPrefix(l, "child ") })
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimPrefix(line, "child "))
	if err != nil {
		t.Fatalf("bad line %q", line)
	}
	if !alive(child) {
		t.Fatalf("child %d not running before Stop", child)
	}
	start := time.Now()
	p.Stop()
	if took := time.Since(start); took > stopGrace+3*time.Second {
		t.Errorf("Stop took %v", took)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	waitGone(t, child)
	p.Stop() // idempotent
}

func TestProtonPythonClientBroker(t *testing.T) {
	b := StartProtonBroker(t)
	if !strings.HasPrefix(b.Addr, "127.0.0.1:") || b.Port() == 0 {
		t.Fatalf("Addr = %q", b.Addr)
	}

	evs, err := RunProtonClient(t, "send", "--url", b.URL(), "--address", "smoke", "--count", "10",
		"--durable", "--property", "k=v", "--property", "n=7", "--annotation", "x-opt-a=1", "--subject", "s")
	if err != nil {
		t.Fatal(err)
	}
	sum := Summary(evs)
	if sum["ok"] != true || sum["sent"] != 10.0 || outcome(sum, "accepted") != 10 {
		t.Fatalf("send summary %v", sum)
	}
	if got := len(Filter(evs, "delivered")); got != 10 {
		t.Fatalf("%d delivered events, want 10", got)
	}

	evs, err = RunProtonClient(t, "receive", "--url", b.URL(), "--address", "smoke", "--count", "10")
	if err != nil {
		t.Fatal(err)
	}
	msgs := Filter(evs, "message")
	if len(msgs) != 10 {
		t.Fatalf("%d messages, want 10: %v", len(msgs), evs)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("message-%d", i); m["body"] != want {
			t.Errorf("message %d body %v, want %q", i, m["body"], want)
		}
		ap, _ := m["application_properties"].(map[string]any)
		if ap["k"] != "v" || ap["n"] != 7.0 {
			t.Errorf("message %d application_properties %v", i, ap)
		}
		ann, _ := m["annotations"].(map[string]any)
		hdr, _ := m["header"].(map[string]any)
		props, _ := m["properties"].(map[string]any)
		if ann["x-opt-a"] != 1.0 || hdr["durable"] != true || props["subject"] != "s" {
			t.Errorf("message %d annotations %v header %v properties %v", i, ann, hdr, props)
		}
	}

	t.Run("settle modes", func(t *testing.T) {
		// mixed: odd deliveries go pre-settled, even ones get outcomes.
		evs, err := RunProtonClient(t, "send", "--url", b.URL(), "--address", "modes", "--count", "4",
			"--snd-settle-mode", "mixed", "--binary", "--size", "100")
		if err != nil {
			t.Fatal(err)
		}
		if s := Summary(evs); s["settled_sent"] != 2.0 || outcome(s, "accepted") != 2 {
			t.Fatalf("mixed send summary %v", s)
		}
		// rcv-second with credit 1: the broker must settle after our
		// outcome, or the client never finishes.
		evs, err = RunProtonClient(t, "receive", "--url", b.URL(), "--address", "modes", "--count", "4",
			"--rcv-settle-mode", "second", "--credit", "1", "--timeout", "15")
		if err != nil {
			t.Fatal(err)
		}
		msgs := Filter(evs, "message")
		if len(msgs) != 4 {
			t.Fatalf("%d messages, want 4", len(msgs))
		}
		body, _ := msgs[0]["body"].(map[string]any)
		raw, _ := base64.StdEncoding.DecodeString(fmt.Sprint(body["$binary"]))
		if msgs[0]["body_type"] != "binary" || len(raw) != 100 || !strings.HasPrefix(string(raw), "message-0-xx") {
			t.Errorf("binary body %v (%d bytes)", msgs[0]["body"], len(raw))
		}
		if att := Filter(evs, "attached"); len(att) != 1 || att[0]["rcv_settle_mode"] != 1.0 {
			t.Errorf("broker's attach did not mirror rcv-second: %v", att)
		}
	})

	t.Run("drain", func(t *testing.T) {
		if _, err := RunProtonClient(t, "send", "--url", b.URL(), "--address", "drain", "--count", "3"); err != nil {
			t.Fatal(err)
		}
		evs, err := RunProtonClient(t, "receive", "--url", b.URL(), "--address", "drain", "--count", "0",
			"--drain", "--credit", "10", "--timeout", "15")
		if err != nil {
			t.Fatal(err)
		}
		if d := Filter(evs, "drained"); len(d) != 1 || d[0]["received"] != 3.0 {
			t.Fatalf("drained events %v", d)
		}
	})

	t.Run("request-reply", func(t *testing.T) {
		srv := StartProtonClient(t, "serve", "--url", b.URL(), "--address", "svc", "--count", "3", "--timeout", "20")
		if _, err := srv.WaitEvent(10*time.Second, "attached"); err != nil {
			t.Fatal(err)
		}
		evs, err := RunProtonClient(t, "request", "--url", b.URL(), "--address", "svc", "--count", "3", "--timeout", "20")
		if err != nil {
			t.Fatal(err)
		}
		msgs := Filter(evs, "message")
		if len(msgs) != 3 {
			t.Fatalf("%d replies, want 3", len(msgs))
		}
		for i, m := range msgs {
			props, _ := m["properties"].(map[string]any)
			if props["correlation_id"] != fmt.Sprintf("req-%d", i) || m["body"] != fmt.Sprintf("message-%d", i) {
				t.Errorf("reply %d: %v %v", i, props, m["body"])
			}
		}
		if err := srv.Wait(20 * time.Second); err != nil {
			t.Fatalf("server: %v\n%s", err, srv.Output())
		}
		if s := Summary(srv.Events()); s["replied"] != 3.0 {
			t.Fatalf("server summary %v", s)
		}
	})
}

func TestProtonCSendBrokerReceive(t *testing.T) {
	b := StartProtonCBroker(t)
	host, port, _ := net.SplitHostPort(b.Addr)
	out, err := RunProtonC(t, "send", host, port, "smoke", "10")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "10 messages sent and acknowledged") {
		t.Fatalf("send output:\n%s", out)
	}
	out, err = RunProtonC(t, "receive", host, port, "smoke", "10")
	if err != nil {
		t.Fatal(err)
	}
	seq := regexp.MustCompile(`^\{"sequence"=(\d+)\}$`)
	var got []int
	for _, line := range strings.Split(out, "\n") {
		if m := seq.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			got = append(got, n)
		}
	}
	if len(got) != 10 || !strings.Contains(out, "10 messages received") {
		t.Fatalf("receive output:\n%s", out)
	}
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("sequence %v, want 1..10 in order", got)
		}
	}
	// A second ProtonC call in the same binary reuses the build.
	if a, b := ProtonC(t, "send"), ProtonC(t, "send"); a != b || !strings.Contains(a, "isthmus-peers") {
		t.Errorf("ProtonC paths %q, %q", a, b)
	}
}

func TestRheaClientServer(t *testing.T) {
	srv := StartRheaServer(t, "--ws-port", "0", "--users", "alice:secret")
	if srv.WSAddr == "" || srv.Port() == 0 {
		t.Fatalf("Addr %q WSAddr %q", srv.Addr, srv.WSAddr)
	}
	evs, err := RunRheaClient(t, "send", "--url", srv.URL(), "--address", "smoke", "--count", "10",
		"--durable", "--property", "k=v", "--snd-settle-mode", "unsettled")
	if err != nil {
		t.Fatal(err)
	}
	if s := Summary(evs); s["ok"] != true || outcome(s, "accepted") != 10 {
		t.Fatalf("send summary %v", s)
	}
	evs, err = RunRheaClient(t, "receive", "--url", srv.URL(), "--address", "smoke", "--count", "10", "--rcv-settle-mode", "second")
	if err != nil {
		t.Fatal(err)
	}
	msgs := Filter(evs, "message")
	if len(msgs) != 10 {
		t.Fatalf("%d messages, want 10", len(msgs))
	}
	for i, m := range msgs {
		ap, _ := m["application_properties"].(map[string]any)
		hdr, _ := m["header"].(map[string]any)
		if m["body"] != fmt.Sprintf("message-%d", i) || ap["k"] != "v" || hdr["durable"] != true {
			t.Errorf("message %d: %v", i, m)
		}
	}

	t.Run("websocket and SASL PLAIN", func(t *testing.T) {
		evs, err := RunRheaClient(t, "send", "--url", "ws://"+srv.WSAddr+"/amqp", "--address", "ws", "--count", "3",
			"--user", "alice", "--password", "secret", "--snd-settle-mode", "settled")
		if err != nil {
			t.Fatal(err)
		}
		if s := Summary(evs); s["settled_sent"] != 3.0 {
			t.Fatalf("ws send summary %v", s)
		}
		// Pre-settled messages have no outcome to wait for; read them back
		// over TCP, so both transports reach the same queue.
		evs, err = RunRheaClient(t, "receive", "--url", srv.URL(), "--address", "ws", "--count", "3")
		if err != nil {
			t.Fatal(err)
		}
		if s := Summary(evs); fmt.Sprint(s["bodies"]) != "[message-0 message-1 message-2]" {
			t.Fatalf("bodies %v", s["bodies"])
		}
		evs, err = RunRheaClient(t, "send", "--url", srv.URL(), "--address", "ws", "--count", "1",
			"--user", "alice", "--password", "wrong", "--timeout", "10")
		if err == nil {
			t.Fatalf("wrong password accepted: %v", evs)
		}
		if e := Filter(evs, "error"); len(e) == 0 || e[0]["condition"] != "amqp:unauthorized-access" {
			t.Fatalf("error events %v", e)
		}
	})
}

func TestRabbitMQGoAMQP(t *testing.T) {
	r := SharedRabbitMQ(t)
	t.Logf("RabbitMQ node %s on %s started in %v", r.NodeName, r.Addr, r.StartupTime())
	queue := "/queue/smoke-" + strconv.Itoa(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, err := amqp.Dial(ctx, r.URL(), &amqp.ConnOptions{SASLType: amqp.SASLTypePlain("guest", "guest")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(ctx, queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := snd.Send(ctx, amqp.NewMessage([]byte(fmt.Sprintf("go-amqp %d", i))), nil); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	rcv, err := sess.NewReceiver(ctx, queue, &amqp.ReceiverOptions{Credit: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		msg, err := rcv.Receive(ctx, nil)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if got, want := string(msg.GetData()), fmt.Sprintf("go-amqp %d", i); got != want {
			t.Errorf("message %d = %q, want %q", i, got, want)
		}
		if err := rcv.AcceptMessage(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if out := r.Ctl(t, "list_queues", "name", "messages"); !regexp.MustCompile(`(?m)^smoke-\d+\s+0$`).MatchString(out) {
		t.Errorf("queue not empty after receiving everything:\n%s", out)
	}
}

func TestRabbitMQProtonPython(t *testing.T) {
	ProtonPython(t)
	r := SharedRabbitMQ(t)
	queue := "/queue/proton-" + strconv.Itoa(os.Getpid())
	evs, err := RunProtonClient(t, "send", "--url", r.URL(), "--address", queue, "--count", "5",
		"--user", "guest", "--password", "guest", "--mechs", "PLAIN", "--durable", "--property", "k=v")
	if err != nil {
		t.Fatal(err)
	}
	if s := Summary(evs); outcome(s, "accepted") != 5 {
		t.Fatalf("send summary %v", s)
	}
	if c := Filter(evs, "connected"); len(c) != 1 || c[0]["user"] != "guest" {
		t.Errorf("connected %v", c)
	}
	// ANONYMOUS: the plugin maps it to amqp1_0.default_user (guest).
	evs, err = RunProtonClient(t, "receive", "--url", r.URL(), "--address", queue, "--count", "5")
	if err != nil {
		t.Fatal(err)
	}
	msgs := Filter(evs, "message")
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 5", len(msgs))
	}
	for i, m := range msgs {
		ap, _ := m["application_properties"].(map[string]any)
		if m["body"] != fmt.Sprintf("message-%d", i) || ap["k"] != "v" {
			t.Errorf("message %d: %v", i, m)
		}
	}
	// 3.10 does not know RabbitMQ 4's /queues/NAME address form.
	evs, err = RunProtonClient(t, "send", "--url", r.URL(), "--address", "/queues/x", "--count", "1", "--timeout", "10")
	if err == nil || !strings.Contains(fmt.Sprint(Filter(evs, "error")), "unknown_destination") {
		t.Errorf("/queues/x: err %v, events %v", err, evs)
	}
}

// TestRabbitMQPrivateNode checks what makes a node private and clean: it
// listens on loopback only, and Stop leaves no process and no port behind.
func TestRabbitMQPrivateNode(t *testing.T) {
	r := StartRabbitMQ(t)
	t.Logf("private node %s on %s started in %v", r.NodeName, r.Addr, r.StartupTime())
	if !strings.Contains(r.Ctl(t, "status"), r.NodeName) {
		t.Fatal("rabbitmqctl status does not name the node")
	}
	// The VM must be our direct child (the script execs it), or the
	// parent-death signal would not reach it.
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", r.PID())); strings.TrimSpace(string(comm)) != "beam.smp" {
		t.Errorf("direct child is %q, want beam.smp", comm)
	}
	pids := append(descendants(t, r.PID()), r.rabbit.epmd.PID())
	listens := listeningAddrs(t, pids)
	t.Logf("node and epmd listen on %v", listens)
	if len(listens) < 2 { // AMQP and distribution at least
		t.Fatalf("node listens on %v, want AMQP and distribution", listens)
	}
	for _, a := range listens {
		if !a.Addr().IsLoopback() {
			t.Errorf("node listens on %v, not loopback", a)
		}
		if a.Port() == 15672 || a.Port() == 25672 || a.Port() == 4369 {
			t.Errorf("node listens on a default port: %v", a)
		}
	}

	r.Stop()
	for _, pid := range pids {
		waitGone(t, pid)
	}
	for _, a := range listens {
		if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("%v still accepts after Stop", a)
		}
	}
}

func outcome(summary map[string]any, name string) int {
	o, _ := summary["outcomes"].(map[string]any)
	return jsonInt(o[name])
}

func alive(pid int) bool {
	// A zombie (exited, not reaped by its new parent) counts as gone.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(fields) > 0 && fields[0] != "Z"
	}
	return syscall.Kill(pid, 0) == nil
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// descendants returns pid and every live process below it, from /proc.
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Skip("no /proc here")
	}
	children := map[int][]int{}
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces.
		rest := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(rest) < 2 {
			continue
		}
		child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		ppid, _ := strconv.Atoi(rest[1])
		children[ppid] = append(children[ppid], child)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// listeningAddrs returns the TCP addresses that the processes pids listen
// on, from /proc/PID/fd and /proc/net/tcp{,6}.
func listeningAddrs(t *testing.T, pids []int) []netip.AddrPort {
	t.Helper()
	inodes := map[string]bool{}
	for _, pid := range pids {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	var out []netip.AddrPort
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// local_address is field 1, st field 3 (0A = LISTEN), inode field 9.
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			a, err := parseProcNetAddr(fields[1])
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			out = append(out, a)
		}
		f.Close()
	}
	return out
}

// parseProcNetAddr parses /proc/net/tcp's "0100007F:1F90": the address in
// 32-bit words of host (little-endian) byte order, the port in hex.
func parseProcNetAddr(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(host)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}

// TestRabbitMQWithMQTT: the MQTT plugin of a private node answers an
// anonymous MQTT 3.1.1 CONNECT, and a QoS 0 message published over MQTT
// reaches an AMQP 1.0 receiver of /topic/KEY (MQTT topics are amq.topic
// routing keys with '/' turned into '.').
func TestRabbitMQWithMQTT(t *testing.T) {
	r := StartRabbitMQWith(t, RabbitMQOptions{MQTT: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, r.URL(), &amqp.ConnOptions{SASLType: amqp.SASLTypeAnonymous()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := sess.NewReceiver(ctx, "/topic/peer.smoke", &amqp.ReceiverOptions{Credit: 1})
	if err != nil {
		t.Fatal(err)
	}

	c, err := net.DialTimeout("tcp", r.MQTTAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("MQTT port %s: %v", r.MQTTAddr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	id := "peer-smoke"
	c.Write(append([]byte{0x10, byte(12 + len(id)), 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, byte(len(id))}, id...))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x, %v", ack, err)
	}
	topic, body := "peer/smoke", "over mqtt"
	c.Write(append(append([]byte{0x30, byte(2 + len(topic) + len(body)), 0, byte(len(topic))}, topic...), body...))
	m, err := rcv.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("AMQP receive: %v", err)
	}
	if got := string(m.GetData()); got != body {
		t.Fatalf("got %q", got)
	}
}
