package amqp

import (
	"strings"
	"testing"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/internal/peer"
)

// TestInteropRabbitMQReceiveMany: our receiver's automatic credit keeps
// RabbitMQ sending well past one credit window (5,000 messages, credit 100).
func TestInteropRabbitMQReceiveMany(t *testing.T) {
	b := peer.SharedRabbitMQ(t)
	c := dialOwn(t, "amqp://guest:guest@"+b.Addr, nil)
	sess := ownSession(t, c)
	ctx := ctxT(t, 60*time.Second)
	addr := "/queue/" + strings.ToLower(t.Name())
	rcv, err := sess.NewReceiver(ctx, addr, &ReceiverOptions{Credit: 100})
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	go func() {
		for i := 0; i < n; i++ {
			if _, err := snd.SendAsync(ctx, &frames.Message{Data: [][]byte{[]byte("m")}}, nil); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		d, err := rcv.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %d of %d: %v", i, n, err)
		}
		if err := d.Accept(ctx); err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
	}
}
