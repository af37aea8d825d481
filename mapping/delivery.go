package mapping

import (
	"strconv"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// Mode is a route's delivery: setting (SPEC §5.4), and after resolution the guarantee a message
// travels with.
type Mode uint8

const (
	ModeAuto    Mode = iota // follow the sender: MQTT QoS, AMQP settlement
	AtMostOnce              // MQTT QoS 0, AMQP pre-settled
	AtLeastOnce             // MQTT QoS 1, AMQP unsettled with rcv-settle-mode first
	ExactlyOnce             // MQTT QoS 2, AMQP unsettled with rcv-settle-mode second
)

// ParseMode reads a delivery: value; "" is auto.
func ParseMode(s string) (Mode, bool) {
	switch s {
	case "", "auto":
		return ModeAuto, true
	case "at-most-once":
		return AtMostOnce, true
	case "at-least-once":
		return AtLeastOnce, true
	case "exactly-once":
		return ExactlyOnce, true
	}
	return ModeAuto, false
}

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case AtMostOnce:
		return "at-most-once"
	case AtLeastOnce:
		return "at-least-once"
	case ExactlyOnce:
		return "exactly-once"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// QoS is the MQTT QoS that carries the guarantee (0 for ModeAuto, which has none by itself).
func (m Mode) QoS() int {
	switch m {
	case AtLeastOnce:
		return 1
	case ExactlyOnce:
		return 2
	}
	return 0
}

// Sent says how the sender sent a message.
type Sent struct {
	From Kind // KindMQTT: QoS applies; KindAMQP or KindUplink: Settled and SettleSecond apply
	QoS  byte
	// Settled: the transfer arrived pre-settled (at-most-once).
	Settled bool
	// SettleSecond: the link it arrived on has rcv-settle-mode second, so the sender can have
	// exactly-once (AMQP 1.0 §3.4.4 and §2.8.3).
	SettleSecond bool
}

// Policy is how one destination gets a message and when its sender is answered. One Policy per
// (message, route); the gateway acknowledges the sender once every destination of the message
// has settled as its policy says (SPEC §5.3: every matching route fires).
type Policy struct {
	// Guarantee is what the message has end to end through this destination: AtMostOnce,
	// AtLeastOnce or ExactlyOnce, never ModeAuto (for MQTT destinations the weaker of the
	// sender's and the publish QoS).
	Guarantee Mode

	// AMQP and uplink destinations.
	Settled       bool                      // send the transfer pre-settled
	RcvSettleMode frames.ReceiverSettleMode // wanted on the sending link: second for exactly-once
	// (use it where the receiving link offers it; otherwise first, and the stable message-id lets
	// the receiver drop duplicates: SPEC §5.4).

	// MQTT destinations: the QoS of the publish.
	QoS byte

	// Await: answer the sender (PUBACK/PUBREC, AMQP disposition) only when the destination has
	// taken the message (AMQP accepted, or the broker holds it for every subscription). false:
	// answer at once, the message is at-most-once from here on.
	Await bool
}

// Resolve is the delivery table of SPEC §5.4 for one destination:
//
//	guarantee           auto follows the sender          AMQP/uplink destination        MQTT destination
//	at-most-once        MQTT QoS 0, AMQP pre-settled     pre-settled                    QoS 0
//	at-least-once       MQTT QoS 1, AMQP unsettled       unsettled, rcv-settle first    QoS 1
//	exactly-once        MQTT QoS 2, AMQP unsettled on    unsettled, rcv-settle second   QoS 2
//	                    a rcv-settle-mode second link
//
// With delivery: auto an MQTT destination publishes at the route's qos when written, otherwise
// at the sender's QoS (MQTT sources) or at 0 for pre-settled and 1 for unsettled AMQP transfers
// (SPEC §5.4; an AMQP exactly-once sender still gets QoS 1 unless the route says qos: 2). With an
// explicit delivery the QoS is the guarantee's (Compile refuses a route qos that disagrees).
// routeQoS is -1 when the route has none.
func Resolve(mode Mode, routeQoS int, sent Sent, to Kind) Policy {
	g := mode
	if g == ModeAuto {
		switch {
		case sent.From == KindMQTT && sent.QoS == 0, sent.From != KindMQTT && sent.Settled:
			g = AtMostOnce
		case sent.From == KindMQTT && sent.QoS == 1, sent.From != KindMQTT && !sent.SettleSecond:
			g = AtLeastOnce
		default:
			g = ExactlyOnce
		}
	}
	p := Policy{Guarantee: g, Await: g != AtMostOnce}
	switch to {
	case KindAMQP, KindUplink:
		p.Settled = g == AtMostOnce
		p.RcvSettleMode = frames.ReceiverSettleModeFirst
		if g == ExactlyOnce {
			p.RcvSettleMode = frames.ReceiverSettleModeSecond
		}
	case KindMQTT:
		switch {
		case routeQoS >= 0:
			p.QoS = byte(routeQoS)
		case mode != ModeAuto || sent.From == KindMQTT:
			p.QoS = byte(g.QoS())
		case sent.Settled:
			p.QoS = 0
		default:
			p.QoS = 1
		}
		// The guarantee that reaches the subscriber is the weaker of the two hops.
		if q := Mode(p.QoS + 1); q < p.Guarantee {
			p.Guarantee = q
		}
	}
	return p
}

// Sent returns the Sent of an MQTT message.
func (m *MQTTMessage) Sent() Sent { return Sent{From: KindMQTT, QoS: m.QoS} }

// Policy resolves the route's delivery for a message sent as s.
func (r *Route) Policy(s Sent) Policy { return Resolve(r.Delivery, r.QoS, s, r.To.Kind) }
