// Package peer finds and runs the real protocol peers that tests run against
// (mosquitto clients, Qpid Proton, Node.js with MQTT.js and rhea, RabbitMQ).
// A missing peer skips the test with the package to install; under CI=true it
// fails the test instead, so CI can never pass by skipping.
//
// Launchers start a peer on 127.0.0.1, wait until it is ready, and stop it by
// process group in t.Cleanup; they return a *Proc (Addr, URL, output,
// JSON events):
//
//	StartProtonBroker   testdata/proton/broker.py (Qpid Proton Python)
//	RunProtonClient     testdata/proton/client.py, to completion
//	StartProtonClient   the same, in the background
//	ProtonC             a Proton C example, built once into the user cache
//	StartProtonCBroker  Proton C's example broker
//	RunProtonC          a Proton C example (send, receive, ...), to completion
//	StartRheaServer     testdata/node/rhea_server.js (TCP, optional WebSocket)
//	RunRheaClient       testdata/node/rhea_client.js, to completion
//	StartRheaClient     the same, in the background
//	StartRabbitMQ       a private RabbitMQ 3.10 node with AMQP 1.0, per test
//	SharedRabbitMQ      one such node per test binary (see StopSharedRabbitMQ)
//	Start               any other command, with the same lifecycle
//
// The Proton and rhea clients print one JSON object per line ("connected",
// "attached", "sent", "delivered", "message", "drained", "error", then
// "summary"); Filter and Summary pick them out.
//
// Peer processes run in their own process group, which Stop signals (SIGTERM,
// then SIGKILL after 5 s). On Linux the direct child also gets a
// parent-death SIGKILL, so a test binary that panics or hits -timeout does
// not leave brokers behind.
package peer

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Missing skips t, or fails it when CI=true, saying what to install.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; install %s (under CI=true a missing peer is a failure)", what, install)
	}
	t.Skipf("%s is missing; install %s to run this test", what, install)
}

// Command returns the path of an executable peer, e.g.
// Command(t, "mosquitto_pub", "the Debian package mosquitto-clients").
func Command(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, install)
	}
	return p
}

// RepoRoot is the module root, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// NodeModules returns node and the testdata/node folder whose node_modules
// hold MQTT.js and rhea (installed by `npm ci` in .ci/run).
func NodeModules(t testing.TB, module string) (node, dir string) {
	t.Helper()
	node = Command(t, "node", "the Debian package nodejs")
	dir = filepath.Join(RepoRoot(), "testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", module, "package.json")); err != nil {
		Missing(t, "npm package "+module, "it with `cd testdata/node && npm ci`")
	}
	return node, dir
}
