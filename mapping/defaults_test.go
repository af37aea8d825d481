package mapping

import (
	"testing"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// TestDefaultRoutes: in local mode mosquitto_pub -t a/b reaches an AMQP receiver on a/b or a/+,
// and an AMQP sender to a/b reaches MQTT subscribers of a/b (SPEC §5.5).
func TestDefaultRoutes(t *testing.T) {
	r, err := Compile(DefaultRoutes(), Options{GatewayID: "local", Queues: []QueueConfig{{Name: "q1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"a/b", "a", "/leading", "x/y/z", "a//b"} {
		ms := r.MatchMQTT(topic)
		if len(ms) != 1 || ms[0].Route.Name != DefaultMQTTToAMQP {
			t.Fatalf("MatchMQTT(%q) = %v", topic, ms)
		}
		out, err := ms[0].FromMQTT(&MQTTMessage{Topic: topic, QoS: 1, Payload: []byte("p")}, Env{})
		if err != nil || out.To != KindAMQP || out.Address != topic || out.Policy.Settled {
			t.Errorf("%q: %+v %v", topic, out, err)
		}
		// An AMQP receiver's source address is an MQTT-style filter on the topic address space.
		for _, filter := range []string{topic, "#"} {
			if !refMatch(filter, '/', out.Address) {
				t.Errorf("receiver filter %q does not see %q", filter, out.Address)
			}
		}
	}
	if !refMatch("a/+", '/', "a/b") {
		t.Error("a/+ does not match a/b")
	}
	for _, addr := range []string{"a/b", "lights/kitchen"} {
		ms := r.MatchAMQP(addr)
		if len(ms) != 1 || ms[0].Route.Name != DefaultAMQPToMQTT {
			t.Fatalf("MatchAMQP(%q) = %v", addr, ms)
		}
		out, err := ms[0].FromAMQP(&AMQPMessage{Message: &frames.Message{Data: [][]byte{[]byte("p")}}, Settled: true})
		if err != nil || out.To != KindMQTT || out.MQTT.Topic != addr || out.MQTT.QoS != 0 || string(out.MQTT.Payload) != "p" {
			t.Errorf("%q: %+v %v", addr, out, err)
		}
	}
	for _, name := range []string{"$SYS/broker/load", "$events/presence"} {
		if ms := r.MatchMQTT(name); len(ms) != 0 {
			t.Errorf("MatchMQTT(%q) = %v: # must not match $ topics", name, ms)
		}
		if ms := r.MatchAMQP(name); len(ms) != 0 {
			t.Errorf("MatchAMQP(%q) = %v: # must not match $ addresses", name, ms)
		}
	}
	if ms := r.MatchAMQP("q1"); len(ms) != 0 {
		t.Errorf("a queue address went to MQTT: %v", ms)
	}
	// Each call returns fresh maps: a caller changing one does not change the next.
	d := DefaultRoutes()
	d[0].From["mqtt"] = "changed"
	if DefaultRoutes()[0].From["mqtt"] != "#" {
		t.Error("DefaultRoutes shares its maps")
	}
}
