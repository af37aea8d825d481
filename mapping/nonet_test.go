package mapping

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPure: mapping imports no network package and nothing of the broker or the engines
// (STYLE habit 1; the root arch test checks the same for the whole tree).
func TestPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned %d packages: the check would be vacuous", len(deps))
	}
	for _, d := range deps {
		switch {
		case d == "net" || strings.HasPrefix(d, "net/"):
			t.Errorf("mapping depends on %s: it must stay free of the network", d)
		case strings.HasPrefix(d, "github.com/mochi-mqtt/"), strings.HasPrefix(d, "github.com/isthmus-iot/isthmus/mqtt"),
			d == "github.com/isthmus-iot/isthmus/amqp", strings.HasPrefix(d, "github.com/isthmus-iot/isthmus/gateway"):
			t.Errorf("mapping depends on %s", d)
		}
	}
}
