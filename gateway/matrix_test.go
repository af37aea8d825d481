package gateway

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// TestDeliveryMatrix runs the delivery table of SPEC §5.4 both ways: every
// MQTT QoS against AMQP receivers in receiver-settle-mode first and second,
// and AMQP senders pre-settled and unsettled against MQTT subscribers at
// every QoS. Each cell sends 20 messages from one publisher and asserts the
// count, the publisher's order, and no duplicates.
func TestDeliveryMatrix(t *testing.T) {
	const n = 20
	g := startGateway(t, bridgeYAML)
	s := amqpSession(t, g.amqpAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, qos := range []byte{0, 1, 2} {
		for _, second := range []bool{false, true} {
			name := fmt.Sprintf("mqtt-qos%d-to-amqp-rcv-%s", qos, map[bool]string{false: "first", true: "second"}[second])
			t.Run(name, func(t *testing.T) {
				mode := goamqp.ReceiverSettleModeFirst
				if second {
					mode = goamqp.ReceiverSettleModeSecond
				}
				r, err := s.NewReceiver(ctx, "m/"+name, &goamqp.ReceiverOptions{Credit: 50, SettlementMode: &mode})
				if err != nil {
					t.Fatalf("receiver: %v", err)
				}
				defer r.Close(ctx)
				pub := v3(t, g.mqtt, "pub-"+name, nil)
				toks := make([]pahov3.Token, n)
				go func() {
					for i := 0; i < n; i++ {
						toks[i] = pub.Publish("m/"+name, qos, false, strconv.Itoa(i))
						toks[i].WaitTimeout(10 * time.Second)
					}
				}()
				for i := 0; i < n; i++ {
					m, err := r.Receive(ctx, nil)
					if err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if got := string(m.GetData()); got != strconv.Itoa(i) {
						t.Fatalf("message %d is %q: out of order or duplicated", i, got)
					}
					if err := r.AcceptMessage(ctx, m); err != nil {
						t.Fatalf("accept %d: %v", i, err)
					}
				}
				short, c2 := context.WithTimeout(ctx, 300*time.Millisecond)
				defer c2()
				if m, err := r.Receive(short, nil); err == nil {
					t.Fatalf("a 21st message arrived: %q", m.GetData())
				}
			})
		}
	}

	for _, settled := range []bool{true, false} {
		for _, qos := range []byte{0, 1, 2} {
			name := fmt.Sprintf("amqp-%s-to-mqtt-sub-qos%d", map[bool]string{true: "settled", false: "unsettled"}[settled], qos)
			t.Run(name, func(t *testing.T) {
				got := make(chan pahov3.Message, 2*n)
				sub := v3(t, g.mqtt, "sub-"+name, nil)
				wait(t, sub.Subscribe("a/"+name, qos, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
				mode := goamqp.SenderSettleModeUnsettled
				if settled {
					mode = goamqp.SenderSettleModeSettled
				}
				snd, err := s.NewSender(ctx, "a/"+name, &goamqp.SenderOptions{SettlementMode: &mode})
				if err != nil {
					t.Fatalf("sender: %v", err)
				}
				defer snd.Close(ctx)
				for i := 0; i < n; i++ {
					if err := snd.Send(ctx, goamqp.NewMessage([]byte(strconv.Itoa(i))), nil); err != nil {
						t.Fatalf("send %d: %v", i, err)
					}
				}
				for i := 0; i < n; i++ {
					m := recv(t, got, "MQTT delivery")
					if string(m.Payload()) != strconv.Itoa(i) {
						t.Fatalf("delivery %d is %q: out of order or duplicated", i, m.Payload())
					}
				}
				select {
				case m := <-got:
					t.Fatalf("a 21st delivery: %q", m.Payload())
				case <-time.After(300 * time.Millisecond):
				}
			})
		}
	}
}
