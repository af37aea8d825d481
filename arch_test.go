package isthmus_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/isthmus-iot/isthmus"

// TestImportArrows enforces the package tree of DESIGN.md: arrows point down
// only, amqp and mqtt never see each other, only gateway (and the command that
// assembles it) sees both, mapping stays free of the network, and mochi is
// hidden behind the mqtt adapter.
func TestImportArrows(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[f[0]] = f[1:]
	}
	for _, must := range []string{"/gateway", "/mqtt", "/mqtt/wire", "/ws", "/config", "/cmd/isthmus"} {
		if _, ok := deps[module+must]; !ok {
			t.Fatalf("package %s missing from go list: the arrow checks would be vacuous", module+must)
		}
	}
	under := func(pkg, dir string) bool {
		p := module + "/" + dir
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	for pkg, ds := range deps {
		var seesMQTT, seesAMQP bool
		for _, d := range ds {
			switch {
			case under(d, "mqtt"):
				seesMQTT = true
			case under(d, "amqp"):
				seesAMQP = true
			}
			if under(pkg, "amqp") && (under(d, "mqtt") || under(d, "gateway") || under(d, "ws")) {
				t.Errorf("%s imports %s: the AMQP engine must not know MQTT, WebSocket or the gateway", pkg, d)
			}
			if under(pkg, "mqtt") && (under(d, "amqp") || under(d, "gateway")) {
				t.Errorf("%s imports %s: the MQTT adapter must not know AMQP or the gateway", pkg, d)
			}
			if under(pkg, "mapping") && (d == "net" || strings.HasPrefix(d, "net/")) {
				t.Errorf("%s imports %s: mapping is pure functions, no network", pkg, d)
			}
			if under(pkg, "amqp/encoding") && (d == "net" || strings.HasPrefix(d, "net/")) {
				t.Errorf("%s imports %s: the codec has no network", pkg, d)
			}
			if strings.HasPrefix(d, "github.com/mochi-mqtt/") && pkg != module+"/mqtt" && !under(pkg, "gateway") && pkg != module+"/cmd/isthmus" {
				t.Errorf("%s imports %s: only package mqtt may import mochi", pkg, d)
			}
			for _, low := range []string{"config", "ws", "mapping", "devices", "amqp", "mqtt"} {
				if under(pkg, low) && (under(d, "gateway") || under(d, "cmd")) {
					t.Errorf("%s imports %s: arrows point down only", pkg, d)
				}
			}
		}
		if seesMQTT && seesAMQP && !under(pkg, "gateway") && !under(pkg, "cmd") {
			t.Errorf("%s sees both mqtt and amqp: only gateway may", pkg)
		}
	}
	// mochi must reach gateway only through mqtt: gateway's direct imports.
	direct, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, module+"/gateway", module+"/cmd/isthmus", module+"/mqtt/wire").CombinedOutput()
	if err != nil {
		t.Fatalf("go list imports: %v\n%s", err, direct)
	}
	if strings.Contains(string(direct), "github.com/mochi-mqtt/") {
		t.Errorf("gateway, cmd/isthmus or mqtt/wire imports mochi directly:\n%s", direct)
	}
}
