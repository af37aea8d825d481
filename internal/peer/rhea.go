package peer

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// rhea, the Node.js AMQP 1.0 library (npm), from testdata/node, where
// `npm ci` installs rhea and ws (the WebSocket implementation rhea's
// websocket_connect and websocket_accept wrap). DEBUG=rhea:frames in the
// environment prints every frame on stderr.

// RunRheaClient runs testdata/node/rhea_client.js with args (see the comment
// at its top: send|receive, --url amqp://… or ws://host:port/path,
// --address, --count, settle modes, --credit, --drain, --user/--password
// for SASL PLAIN, --durable, --property ...) and returns its JSON events,
// the last being the summary. A non-zero exit is returned as an error along
// with the events.
func RunRheaClient(t testing.TB, args ...string) ([]map[string]any, error) {
	t.Helper()
	node, dir := rheaModules(t)
	cmd := exec.Command(node, append([]string{filepath.Join(dir, "rhea_client.js")}, args...)...)
	cmd.Dir = dir
	return runClient(t, "rhea client", cmd)
}

// StartRheaClient starts rhea_client.js in the background; wait for its
// "attached" event before making it something to receive.
func StartRheaClient(t testing.TB, args ...string) *Proc {
	t.Helper()
	node, dir := rheaModules(t)
	cmd := exec.Command(node, append([]string{filepath.Join(dir, "rhea_client.js")}, args...)...)
	cmd.Dir = dir
	return Start(t, "rhea client", cmd)
}

// StartRheaServer starts testdata/node/rhea_server.js, a rhea container
// acting as an in-memory queue broker, on 127.0.0.1 with a port it picks
// itself, and returns once it listens. Extra args go to the script, e.g.
// "--ws-port", "0" to also accept AMQP over WebSocket (then WSAddr is set;
// any path is accepted unless "--ws-path" says otherwise), or "--users",
// "u:p" to offer SASL PLAIN besides ANONYMOUS.
func StartRheaServer(t testing.TB, args ...string) *Proc {
	t.Helper()
	node, dir := rheaModules(t)
	cmd := exec.Command(node, append([]string{filepath.Join(dir, "rhea_server.js"), "--host", "127.0.0.1", "--port", "0"}, args...)...)
	cmd.Dir = dir
	p := Start(t, "rhea server", cmd)
	ev, err := p.WaitEvent(peerReadyTimeout, "listening")
	if err != nil {
		t.Fatalf("peer: %v\n%s", err, p.Output())
	}
	p.Addr = fmt.Sprintf("127.0.0.1:%d", jsonInt(ev["port"]))
	if ev["ws_port"] != nil {
		p.WSAddr = fmt.Sprintf("127.0.0.1:%d", jsonInt(ev["ws_port"]))
	}
	return p
}

func rheaModules(t testing.TB) (node, dir string) {
	t.Helper()
	node, dir = NodeModules(t, "rhea")
	NodeModules(t, "ws")
	return node, dir
}
