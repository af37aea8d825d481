package amqp

// Throughput between a client and our server on loopback: our client and go-amqp side by side,
// 64 B and 4 KiB messages, pre-settled and unsettled (up to 256 in flight, every outcome awaited).
//
//	go test -run XXX -bench Throughput -benchtime 20000x ./amqp/

import (
	"context"
	"fmt"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

const benchInFlight = 256

func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{64, 4096} {
		for _, settled := range []bool{true, false} {
			mode := "unsettled"
			if settled {
				mode = "settled"
			}
			b.Run(fmt.Sprintf("own/%dB/%s", size, mode), func(b *testing.B) { benchOwn(b, size, settled) })
			b.Run(fmt.Sprintf("go-amqp/%dB/%s", size, mode), func(b *testing.B) { benchGoAMQP(b, size, settled) })
		}
	}
}

func benchServer(b *testing.B) string {
	_, url, node := startServer(b, ServerOptions{AllowAnonymous: true})
	node.credit = 1000
	return url
}

func report(b *testing.B, start time.Time, size int) {
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N*size)/el.Seconds()/1e6, "MB/s")
}

func benchOwn(b *testing.B, size int, settled bool) {
	url := benchServer(b)
	c := dialOwn(b, url, nil)
	sess := ownSession(b, c)
	ctx := context.Background()
	mode := frames.SenderSettleModeUnsettled
	if settled {
		mode = frames.SenderSettleModeSettled
	}
	snd, err := sess.NewSender(ctx, "sink-bench", &SenderOptions{SndSettleMode: &mode, MaxInFlight: benchInFlight})
	if err != nil {
		b.Fatal(err)
	}
	payload, _ := (&frames.Message{Data: [][]byte{make([]byte, size)}}).Encode(nil)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var ring [benchInFlight]*Receipt
	for i := 0; i < b.N; i++ {
		if r := ring[i%benchInFlight]; r != nil {
			if _, err := r.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		r, err := snd.SendRaw(ctx, payload, nil)
		if err != nil {
			b.Fatal(err)
		}
		ring[i%benchInFlight] = r
	}
	for _, r := range ring {
		if r != nil {
			if _, err := r.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	report(b, start, size)
}

func benchGoAMQP(b *testing.B, size int, settled bool) {
	url := benchServer(b)
	conn := dialGo(b, url, nil)
	sess := goSession(b, conn)
	ctx := context.Background()
	mode := goamqp.SenderSettleModeUnsettled
	if settled {
		mode = goamqp.SenderSettleModeSettled
	}
	snd, err := sess.NewSender(ctx, "sink-bench", &goamqp.SenderOptions{SettlementMode: mode.Ptr()})
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if settled {
		for i := 0; i < b.N; i++ {
			if err := snd.Send(ctx, goamqp.NewMessage(body), nil); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start, size)
		return
	}
	var ring [benchInFlight]*goamqp.SendReceipt
	for i := 0; i < b.N; i++ {
		if r := ring[i%benchInFlight]; r != nil {
			if _, err := r.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		r, err := snd.SendWithReceipt(ctx, goamqp.NewMessage(body), nil)
		if err != nil {
			b.Fatal(err)
		}
		ring[i%benchInFlight] = &r
	}
	for _, r := range ring {
		if r != nil {
			if _, err := r.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	report(b, start, size)
}
