// Package peer finds the real protocol peers that tests run against
// (mosquitto clients, Qpid Proton, Node.js with MQTT.js and rhea). A missing
// peer skips the test with the package to install; under CI=true it fails the
// test instead, so CI can never pass by skipping.
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
