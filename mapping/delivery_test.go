package mapping

import (
	"testing"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

func TestParseMode(t *testing.T) {
	for s, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "at-most-once": AtMostOnce, "at-least-once": AtLeastOnce, "exactly-once": ExactlyOnce} {
		if m, ok := ParseMode(s); !ok || m != want {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, ok)
		}
		if s != "" && want.String() != s {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	for _, s := range []string{"Auto", "once", "at_least_once"} {
		if _, ok := ParseMode(s); ok {
			t.Errorf("ParseMode(%q) accepted", s)
		}
	}
}

// TestResolve is the delivery table of SPEC §5.4, row by row.
func TestResolve(t *testing.T) {
	const (
		first  = frames.ReceiverSettleModeFirst
		second = frames.ReceiverSettleModeSecond
	)
	mqtt := func(q byte) Sent { return Sent{From: KindMQTT, QoS: q} }
	settled := Sent{From: KindAMQP, Settled: true}
	unsettled := Sent{From: KindAMQP}
	unsettled2 := Sent{From: KindAMQP, SettleSecond: true}
	upUnsettled := Sent{From: KindUplink}
	tests := []struct {
		name string
		mode Mode
		qos  int
		sent Sent
		to   Kind
		want Policy
	}{
		// MQTT → AMQP, auto: follow the QoS.
		{"QoS 0 → pre-settled", ModeAuto, -1, mqtt(0), KindAMQP, Policy{Guarantee: AtMostOnce, Settled: true, RcvSettleMode: first}},
		{"QoS 1 → unsettled, first", ModeAuto, -1, mqtt(1), KindAMQP, Policy{Guarantee: AtLeastOnce, RcvSettleMode: first, Await: true}},
		{"QoS 2 → unsettled, second", ModeAuto, -1, mqtt(2), KindAMQP, Policy{Guarantee: ExactlyOnce, RcvSettleMode: second, Await: true}},
		{"QoS 2 → uplink, second", ModeAuto, -1, mqtt(2), KindUplink, Policy{Guarantee: ExactlyOnce, RcvSettleMode: second, Await: true}},
		// MQTT → AMQP, explicit.
		{"QoS 2 at-most-once", AtMostOnce, -1, mqtt(2), KindAMQP, Policy{Guarantee: AtMostOnce, Settled: true, RcvSettleMode: first}},
		{"QoS 0 at-least-once", AtLeastOnce, -1, mqtt(0), KindUplink, Policy{Guarantee: AtLeastOnce, RcvSettleMode: first, Await: true}},
		{"QoS 1 exactly-once", ExactlyOnce, -1, mqtt(1), KindAMQP, Policy{Guarantee: ExactlyOnce, RcvSettleMode: second, Await: true}},
		// AMQP → MQTT, auto: pre-settled QoS 0, unsettled QoS 1, or the route's qos.
		{"pre-settled → QoS 0", ModeAuto, -1, settled, KindMQTT, Policy{Guarantee: AtMostOnce, QoS: 0}},
		{"pre-settled, qos 1", ModeAuto, 1, settled, KindMQTT, Policy{Guarantee: AtMostOnce, QoS: 1}},
		{"unsettled → QoS 1", ModeAuto, -1, unsettled, KindMQTT, Policy{Guarantee: AtLeastOnce, QoS: 1, Await: true}},
		{"unsettled, qos 0", ModeAuto, 0, unsettled, KindMQTT, Policy{Guarantee: AtMostOnce, QoS: 0, Await: true}},
		{"unsettled, qos 2", ModeAuto, 2, unsettled, KindMQTT, Policy{Guarantee: AtLeastOnce, QoS: 2, Await: true}},
		{"rcv second → still QoS 1", ModeAuto, -1, unsettled2, KindMQTT, Policy{Guarantee: AtLeastOnce, QoS: 1, Await: true}},
		{"rcv second, qos 2", ModeAuto, 2, unsettled2, KindMQTT, Policy{Guarantee: ExactlyOnce, QoS: 2, Await: true}},
		{"uplink unsettled → QoS 1", ModeAuto, -1, upUnsettled, KindMQTT, Policy{Guarantee: AtLeastOnce, QoS: 1, Await: true}},
		// AMQP → MQTT, explicit.
		{"exactly-once → QoS 2", ExactlyOnce, -1, unsettled, KindMQTT, Policy{Guarantee: ExactlyOnce, QoS: 2, Await: true}},
		{"at-most-once from unsettled", AtMostOnce, -1, unsettled, KindMQTT, Policy{Guarantee: AtMostOnce, QoS: 0}},
		{"at-least-once from settled", AtLeastOnce, -1, settled, KindMQTT, Policy{Guarantee: AtLeastOnce, QoS: 1, Await: true}},
		// MQTT → MQTT: the sender's QoS, or the route's.
		{"mqtt QoS 2 → QoS 2", ModeAuto, -1, mqtt(2), KindMQTT, Policy{Guarantee: ExactlyOnce, QoS: 2, Await: true}},
		{"mqtt QoS 1, qos 0", ModeAuto, 0, mqtt(1), KindMQTT, Policy{Guarantee: AtMostOnce, QoS: 0, Await: true}},
		// AMQP → AMQP.
		{"settled → settled", ModeAuto, -1, settled, KindUplink, Policy{Guarantee: AtMostOnce, Settled: true, RcvSettleMode: first}},
		{"unsettled → unsettled", ModeAuto, -1, unsettled, KindAMQP, Policy{Guarantee: AtLeastOnce, RcvSettleMode: first, Await: true}},
		{"second → second", ModeAuto, -1, unsettled2, KindUplink, Policy{Guarantee: ExactlyOnce, RcvSettleMode: second, Await: true}},
	}
	for _, tt := range tests {
		if got := Resolve(tt.mode, tt.qos, tt.sent, tt.to); got != tt.want {
			t.Errorf("%s: Resolve = %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

// TestResolveNeverAuto: whatever comes in, the guarantee is resolved and consistent with the
// transfer and the QoS.
func TestResolveNeverAuto(t *testing.T) {
	for mode := ModeAuto; mode <= ExactlyOnce; mode++ {
		for qos := -1; qos <= 2; qos++ {
			for _, s := range []Sent{{From: KindMQTT}, {From: KindMQTT, QoS: 1}, {From: KindMQTT, QoS: 2}, {From: KindAMQP, Settled: true}, {From: KindAMQP}, {From: KindAMQP, SettleSecond: true}} {
				for _, to := range []Kind{KindMQTT, KindAMQP, KindUplink} {
					p := Resolve(mode, qos, s, to)
					if p.Guarantee == ModeAuto {
						t.Fatalf("Resolve(%v, %d, %+v, %v) left the guarantee auto", mode, qos, s, to)
					}
					if to != KindMQTT && p.Settled != (p.Guarantee == AtMostOnce) {
						t.Errorf("Resolve(%v, %d, %+v, %v) = %+v: settled disagrees with the guarantee", mode, qos, s, to, p)
					}
					if to == KindMQTT && Mode(p.QoS+1) < p.Guarantee {
						t.Errorf("Resolve(%v, %d, %+v, %v) = %+v: QoS below the guarantee", mode, qos, s, to, p)
					}
				}
			}
		}
	}
}
