package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RabbitMQ 3.10 (Debian rabbitmq-server) with its rabbitmq_amqp1_0 plugin,
// a real AMQP 1.0 backend for uplink tests.
//
// Each node is private: its own node name, Erlang cookie (HOME), data and
// log directories, config, and its own epmd on a free loopback port, so it
// neither sees nor disturbs a system RabbitMQ or another test binary's node.
// Everything listens on 127.0.0.1 only: AMQP (Addr; with the plugin the same
// port speaks AMQP 0-9-1 and 1.0), Erlang distribution (for rabbitmqctl),
// and epmd. No management plugin, so no 15672.
//
// AMQP 1.0 addresses in 3.10's plugin (tried here, not in 4.x form):
//
//	/queue/NAME            declares queue NAME if needed (non-durable); as a
//	                       target it publishes to it via the default exchange,
//	                       as a source it consumes from it
//	NAME                   (no leading slash) behaves like /queue/NAME
//	/amq/queue/NAME        an existing queue, never declared: sending to a
//	                       missing one is accepted and the message dropped
//	/exchange/X/KEY        publish to exchange X with routing key KEY
//	/topic/KEY             publish to amq.topic with KEY
//	/queues/NAME           RabbitMQ 4's form: 3.10 refuses the attach
//	                       (amqp:invalid-field, unknown_destination)
//
// SASL: PLAIN guest/guest (guest may only connect from loopback, which is
// where tests are) and ANONYMOUS, which the plugin maps to guest
// (amqp1_0.default_user). Startup takes several seconds: use SharedRabbitMQ
// when a test binary has more than one test that needs a node.

const (
	rabbitDeb          = "the Debian package rabbitmq-server"
	rabbitStartTimeout = 90 * time.Second
	rabbitCtlTimeout   = 30 * time.Second
)

// rabbitBins returns the real scripts. Debian's /usr/sbin/rabbitmq-server and
// rabbitmqctl are wrappers that su to the rabbitmq user when run as root,
// which could not read a test's temporary directory.
func rabbitBins(t testing.TB) (server, ctl string) {
	t.Helper()
	server, ctl, err := findRabbitBins()
	if err != nil {
		t.Logf("peer: %v", err)
		Missing(t, "RabbitMQ", rabbitDeb)
	}
	return server, ctl
}

func findRabbitBins() (server, ctl string, err error) {
	for _, dir := range []string{"/usr/lib/rabbitmq/bin", "/usr/lib/rabbitmq/sbin"} {
		s, c := filepath.Join(dir, "rabbitmq-server"), filepath.Join(dir, "rabbitmqctl")
		if isExecutable(s) && isExecutable(c) {
			if _, err := exec.LookPath("epmd"); err != nil {
				return "", "", fmt.Errorf("epmd (Erlang) not found: %w", err)
			}
			return s, c, nil
		}
	}
	return "", "", errors.New("rabbitmq-server not found in /usr/lib/rabbitmq/bin")
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

var rabbitSeq atomic.Int64

// StartRabbitMQ starts a private RabbitMQ node for this test and stops it in
// t.Cleanup. It returns once the AMQP port accepts connections and
// `rabbitmqctl await_startup` succeeded (the AMQP 1.0 plugin is then
// running), or fails the test after 90 s. Addr is the AMQP port and
// NodeName the Erlang node name; Ctl runs rabbitmqctl against it.
func StartRabbitMQ(t testing.TB) *Proc {
	t.Helper()
	return StartRabbitMQWith(t, RabbitMQOptions{})
}

// RabbitMQOptions adds plugins to a private node.
type RabbitMQOptions struct {
	// MQTT enables rabbitmq_mqtt on a free loopback port (Proc.MQTTAddr), with
	// anonymous clients mapped to guest and topics on amq.topic: the setup of
	// the side-by-side benchmarks (SPEC §9).
	MQTT bool
}

// StartRabbitMQWith is StartRabbitMQ with the plugins o asks for.
func StartRabbitMQWith(t testing.TB, o RabbitMQOptions) *Proc {
	t.Helper()
	server, ctl := rabbitBins(t)
	p, err := startRabbitMQ(server, ctl, t.TempDir(), false, o)
	if err != nil {
		t.Fatalf("peer: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("peer %s output:\n%s", p.Name, tail(p.Output(), 80))
		}
	})
	return p
}

var shared struct {
	mu  sync.Mutex
	p   *Proc
	err error
}

// SharedRabbitMQ returns one node shared by every test of this test binary,
// starting it on first use; it saves the several seconds each StartRabbitMQ
// costs. Tests that share it must use their own queue names (derive them
// from t.Name()).
//
// The node is not stopped by any test's cleanup, because the first test to
// ask would otherwise take it down while later ones still need it. Stop it
// from the package's TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		peer.StopSharedRabbitMQ()
//		os.Exit(code)
//	}
//
// Without that hook no process is left behind either: the node and its epmd
// are direct children of the test binary with a parent-death signal, and the
// node halts when its stdin (a pipe from the test binary) closes; only its
// temporary directory would remain.
func SharedRabbitMQ(t testing.TB) *Proc {
	t.Helper()
	server, ctl := rabbitBins(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.p == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "isthmus-rabbitmq-")
		if err == nil {
			shared.p, err = startRabbitMQ(server, ctl, dir, true, RabbitMQOptions{})
		}
		// Remember a failure: every later test would only fail the same
		// way after another 90 s.
		shared.err = err
	}
	if shared.err != nil {
		t.Fatalf("peer: shared RabbitMQ: %v", shared.err)
	}
	select {
	case <-shared.p.Done():
		t.Fatalf("peer: shared RabbitMQ node %s exited: %v\n%s", shared.p.NodeName, shared.p.exitErr(), tail(shared.p.Output(), 40))
	default:
	}
	return shared.p
}

// StopSharedRabbitMQ stops the node SharedRabbitMQ started, if any, and
// removes its directory. Call it from TestMain after m.Run.
func StopSharedRabbitMQ() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.p != nil {
		shared.p.Stop()
	}
	shared.p, shared.err = nil, nil
}

// rabbitConf is the node's rabbitmq.conf (new-style, sysctl format).
const rabbitConf = `# Written by internal/peer for one private test node.
listeners.tcp.default = 127.0.0.1:%[1]d
listeners.ssl = none
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = %[2]d
distribution.listener.port_range.max = %[2]d
# guest/guest, from loopback only (the default, stated for the reader).
loopback_users.guest = true
# AMQP 1.0 SASL ANONYMOUS connects as this user.
amqp1_0.default_user = guest
amqp1_0.default_vhost = /
# Logs on stdout, where Proc collects them; no log files.
log.console = true
log.console.level = info
log.file = false
# A nearly full disk on a CI machine must not block publishers.
disk_free_limit.absolute = 1MB
`

// rabbitMQTTConf is added to rabbitmq.conf with RabbitMQOptions.MQTT.
const rabbitMQTTConf = `mqtt.listeners.tcp.default = 127.0.0.1:%d
mqtt.listeners.ssl = none
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
mqtt.vhost = /
mqtt.exchange = amq.topic
`

func startRabbitMQ(server, ctl, dir string, removeDir bool, o RabbitMQOptions) (*Proc, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	amqpPort, distPort, epmdPort, mqttPort := ports[0], ports[1], ports[2], ports[3]
	node := fmt.Sprintf("isthmus%dn%d@localhost", os.Getpid(), rabbitSeq.Add(1))

	for _, d := range []string{"mnesia", "log", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	plugins, conf := "[rabbitmq_amqp1_0].\n", fmt.Sprintf(rabbitConf, amqpPort, distPort)
	if o.MQTT {
		plugins = "[rabbitmq_amqp1_0,rabbitmq_mqtt].\n"
		conf += fmt.Sprintf(rabbitMQTTConf, mqttPort)
	}
	files := map[string]string{
		// The AMQP 1.0 plugin (and MQTT when asked): no management (15672), no Prometheus.
		"enabled_plugins": plugins,
		"rabbitmq.conf":   conf,
		// Empty, so /etc/rabbitmq/rabbitmq-env.conf is not read.
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	env := rabbitEnv(dir, node, amqpPort, distPort, epmdPort)

	// Our own epmd, on a free loopback port, started first so the node does
	// not start (and leave behind) a daemonised one on 4369.
	epmdPath, err := exec.LookPath("epmd")
	if err != nil {
		return nil, err
	}
	epmd, err := startProc("epmd", exec.Command(epmdPath, "-address", "127.0.0.1", "-port", strconv.Itoa(epmdPort)))
	if err != nil {
		return nil, err
	}
	if err := waitTCP(fmt.Sprintf("127.0.0.1:%d", epmdPort), 10*time.Second, epmd.Done()); err != nil {
		epmd.Stop()
		return nil, fmt.Errorf("epmd: %w\n%s", err, epmd.Output())
	}

	// RABBITMQ_ALLOW_INPUT makes the script exec erl in the foreground
	// instead of running it in the background and waiting: the VM is then
	// our direct child (so the parent-death signal reaches it), and it
	// reads stdin, a pipe we hold open: if the test binary dies, the pipe
	// closes and the Erlang shell halts the node at EOF.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		epmd.Stop()
		return nil, err
	}
	cmd := exec.Command(server)
	cmd.Env = append(env, "RABBITMQ_ALLOW_INPUT=1")
	cmd.Dir = dir
	cmd.Stdin = stdinR
	started := time.Now()
	p, err := startProc("rabbitmq "+node, cmd)
	stdinR.Close()
	if err != nil {
		stdinW.Close()
		epmd.Stop()
		return nil, err
	}
	p.Addr = fmt.Sprintf("127.0.0.1:%d", amqpPort)
	p.NodeName = node
	p.rabbit = &rabbitNode{ctl: ctl, env: env, dir: dir, epmd: epmd}
	p.beforeTerm = append(p.beforeTerm, func() {
		// Graceful first; the group kill in Stop follows either way.
		_, _ = p.rabbit.run(rabbitCtlTimeout, "-n", node, "stop")
	})
	p.afterStop = append(p.afterStop, func() {
		stdinW.Close()
		epmd.Stop()
		if removeDir {
			os.RemoveAll(dir)
		}
	})

	if err := waitTCP(p.Addr, rabbitStartTimeout, p.Done()); err != nil {
		p.Stop()
		return nil, fmt.Errorf("rabbitmq %s: AMQP port: %w\n%s", node, err, tail(p.Output(), 60))
	}
	left := rabbitStartTimeout - time.Since(started)
	if out, err := p.rabbit.run(left, "-n", node, "await_startup", "--timeout", strconv.Itoa(int(left.Seconds()))); err != nil {
		p.Stop()
		return nil, fmt.Errorf("rabbitmq %s: await_startup: %w\n%s\n%s", node, err, out, tail(p.Output(), 60))
	}
	if o.MQTT {
		p.MQTTAddr = fmt.Sprintf("127.0.0.1:%d", mqttPort)
		if err := waitTCP(p.MQTTAddr, 10*time.Second, p.Done()); err != nil {
			p.Stop()
			return nil, fmt.Errorf("rabbitmq %s: MQTT port: %w\n%s", node, err, tail(p.Output(), 60))
		}
	}
	p.rabbit.startup = time.Since(started)
	return p, nil
}

// rabbitNode is what Proc keeps for a RabbitMQ node.
type rabbitNode struct {
	ctl     string
	env     []string
	dir     string
	epmd    *Proc
	startup time.Duration
}

func (r *rabbitNode) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.ctl, args...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	setProcessGroup(cmd)
	// The CLI is an Erlang VM too: on timeout end its whole group.
	cmd.Cancel = func() error {
		signalGroup(cmd.Process.Pid, true)
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Ctl runs rabbitmqctl -n NodeName args... against a node from
// StartRabbitMQ or SharedRabbitMQ, e.g. p.Ctl(t, "list_queues", "name",
// "messages"), and returns its output; a failure fails the test.
func (p *Proc) Ctl(t testing.TB, args ...string) string {
	t.Helper()
	if p.rabbit == nil {
		t.Fatalf("peer: Ctl on %s, which is not a RabbitMQ node", p.Name)
	}
	out, err := p.rabbit.run(rabbitCtlTimeout, append([]string{"-n", p.NodeName}, args...)...)
	if err != nil {
		t.Fatalf("peer: rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// StartupTime is how long the node took from exec to await_startup
// succeeding (zero for other peers).
func (p *Proc) StartupTime() time.Duration {
	if p.rabbit == nil {
		return 0
	}
	return p.rabbit.startup
}

// rabbitEnv is the environment of the node and of rabbitmqctl: the
// caller's, minus any RABBITMQ_*/ERL_* settings, plus the private node's.
func rabbitEnv(dir string, node string, amqpPort, distPort, epmdPort int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RABBITMQ_") || strings.HasPrefix(kv, "ERL_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		// The Erlang cookie lives in $HOME/.erlang.cookie; a private HOME
		// gives the node and its rabbitmqctl calls a private cookie.
		"HOME="+filepath.Join(dir, "home"),
		"RABBITMQ_NODENAME="+node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"), // absent on purpose
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		// rabbitmqctl is a short-lived Erlang node: distribution on
		// loopback, on a port the kernel picks (0..0), not 35672-35682.
		"RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_CTL_DIST_PORT_MIN=0",
		"RABBITMQ_CTL_DIST_PORT_MAX=0",
	)
}

// freePorts returns n distinct ports that were free on 127.0.0.1, holding
// all n listeners at once so the kernel cannot hand out one port twice.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitTCP polls until addr accepts a connection, the process behind it
// exits (exited closes), or timeout passes.
func waitTCP(addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %v: %w", addr, timeout, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited before %s accepted connections", addr)
		case <-ticker.C:
		}
	}
}
