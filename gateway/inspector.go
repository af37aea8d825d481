package gateway

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/mqtt"
)

// The message inspector (SPEC §8) keeps the last messages the bridge handled:
// where each came from, which routes took it, what each route made of it, and
// the answer its sender got. It records only while someone is looking: every
// read of /api/v1/inspector keeps it on for inspectorLinger, so a gateway
// nobody inspects pays one atomic load per message.
const (
	inspectorSize   = 200
	inspectorLinger = 30 * time.Second
)

// traceEvent is one message as the inspector shows it.
type traceEvent struct {
	Seq      uint64     `json:"seq"`
	Time     time.Time  `json:"time"`
	From     string     `json:"from"` // mqtt "topic" / amqp "address"
	Client   string     `json:"client"`
	Identity string     `json:"identity,omitempty"`
	Delivery string     `json:"delivery"` // QoS 0/1/2; AMQP pre-settled / unsettled
	Routes   []traceHop `json:"routes"`
	Outcome  string     `json:"outcome"` // the sender's answer
}

// traceHop is what one route (or the topic address's own receivers) did.
type traceHop struct {
	Route  string `json:"route"`
	To     string `json:"to"`
	Result string `json:"result"`
}

type inspector struct {
	until atomic.Int64 // UnixNano until which messages are recorded
	seq   atomic.Uint64

	mu   sync.Mutex
	ring [inspectorSize]*traceEvent
	next int
}

// on reports whether someone is inspecting. Callers check it before they
// build a trace's strings, so that an uninspected message allocates nothing.
func (in *inspector) on() bool { return time.Now().UnixNano() < in.until.Load() }

// begin starts a trace; call it only when on.
func (in *inspector) begin(from, client, identity, delivery string) *traceEvent {
	return &traceEvent{Seq: in.seq.Add(1), Time: time.Now().UTC(), From: from, Client: client, Identity: identity, Delivery: delivery}
}

// hop adds what a route did.
func (t *traceEvent) hop(route, to, result string) {
	t.Routes = append(t.Routes, traceHop{Route: route, To: to, Result: result})
}

// done records the trace with its outcome.
func (in *inspector) done(t *traceEvent, outcome string) {
	if t == nil {
		return
	}
	t.Outcome = outcome
	in.mu.Lock()
	in.ring[in.next] = t
	in.next = (in.next + 1) % inspectorSize
	in.mu.Unlock()
}

// read returns the recorded traces, newest first, and keeps recording on.
func (in *inspector) read() []traceEvent {
	in.until.Store(time.Now().Add(inspectorLinger).UnixNano())
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]traceEvent, 0, inspectorSize)
	for i := 1; i <= inspectorSize; i++ {
		if t := in.ring[(in.next-i+inspectorSize)%inspectorSize]; t != nil {
			out = append(out, *t)
		}
	}
	return out
}

// settleMQTT wraps a publish's settle function so that the trace records the
// device's answer whenever it is given (at once, or after the AMQP outcomes).
func (in *inspector) settleMQTT(t *traceEvent, settle func(mqtt.Decision)) func(mqtt.Decision) {
	if t == nil || settle == nil {
		return settle
	}
	return func(d mqtt.Decision) {
		in.done(t, describeDecision(d))
		settle(d)
	}
}

func describeDecision(d mqtt.Decision) string {
	switch {
	case d.Retry:
		return "not acknowledged: the device sends it again"
	case d.Reason == 0:
		return "acknowledged (reason 0x00)"
	case d.ReasonString != "":
		return fmt.Sprintf("acknowledged with reason 0x%02X: %s", d.Reason, d.ReasonString)
	default:
		return fmt.Sprintf("acknowledged with reason 0x%02X", d.Reason)
	}
}

func describeState(s frames.DeliveryState) string {
	switch s := s.(type) {
	case *frames.Accepted:
		return "accepted"
	case *frames.Released:
		return "released"
	case *frames.Modified:
		return "modified"
	case *frames.Rejected:
		if s.Error != nil {
			return "rejected: " + string(s.Error.Condition) + " " + s.Error.Description.V
		}
		return "rejected"
	}
	return fmt.Sprintf("%T", s)
}

func describeTopic(r topicResult) string {
	switch {
	case r.took == 0 && r.busy == 0:
		return "no receiver"
	case r.busy > 0:
		return strconv.Itoa(r.took) + " receiver(s) took it, " + strconv.Itoa(r.busy) + " had no credit in time"
	default:
		return strconv.Itoa(r.took) + " receiver(s)"
	}
}
