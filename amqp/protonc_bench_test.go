package amqp

// Proton C's `send` example against our server, for the same table as
// BenchmarkThroughput: the reference C implementation as the client. Each
// message is the example's own body, an amqp-value map {"sequence": n}
// (about 40 bytes encoded), sent unsettled and acknowledged one by one.
//
//	go test -run XXX -bench ProtonCSend -benchtime 20000x ./amqp/

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/internal/peer"
)

func BenchmarkProtonCSend(b *testing.B) {
	send := peer.ProtonC(b, "send")
	url := benchServer(b)
	host, port, _ := strings.Cut(strings.TrimPrefix(url, "amqp://"), ":")
	b.ResetTimer()
	start := time.Now()
	out, err := exec.Command(send, host, port, "sink-protonc", strconv.Itoa(b.N)).CombinedOutput()
	el := time.Since(start)
	if err != nil {
		b.Fatalf("send: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), strconv.Itoa(b.N)+" messages sent and acknowledged") {
		b.Fatalf("send did not get every acknowledgement: %s", out)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}
