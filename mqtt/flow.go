package mqtt

import (
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Back-pressure for QoS 1 and 2 (why: mochi v2.7.9 drops a message for a
// subscriber whose write queue is full, or whose stored messages reach
// MaximumInflight, after the publisher was acknowledged; at-least-once must
// not lose messages to a subscriber that is merely slower than its
// publishers).
//
// A subscriber becomes congested when its write queue is half full or its
// unacknowledged messages reach three quarters of maxInflight (checked as
// mochi stores each QoS > 0 message for it, and when mochi drops one). Before
// mochi fans out a QoS > 0 publish (OnPublish, on the publisher's goroutine:
// a device's reads, an AMQP link's credit), the publisher waits while a
// congested subscriber of that topic has no room for one more message. A subscriber that makes no
// room within SlowSubscriberTimeout is disconnected as a slow consumer: a
// persistent session keeps its messages for the reconnect.
type flowControl struct {
	b         *Broker
	congested sync.Map // *mochi.Client → struct{}
	count     atomic.Int64
}

// outboundLen reads the length of a client's write queue. mochi keeps it in an
// unexported channel and offers no accessor; reflection may read the length
// of an unexported field without touching it.
func outboundLen(cl *mochi.Client) (length, capacity int) {
	v := reflect.ValueOf(&cl.State).Elem().Field(outboundField)
	return v.Len(), v.Cap()
}

// outboundField is the index of mochi.ClientState's write queue, looked up
// once; New fails loudly if a mochi upgrade renamed it.
var outboundField = func() int {
	f, ok := reflect.TypeOf(mochi.ClientState{}).FieldByName("outbound")
	if !ok || f.Type.Kind() != reflect.Chan {
		panic("mqtt: mochi.ClientState has no outbound channel: the back-pressure in flow.go needs updating")
	}
	return f.Index[0]
}()

// crowded reports whether a client is running out of room: its write queue
// is half full, or three quarters of the unacknowledged messages it may hold.
func (f *flowControl) crowded(cl *mochi.Client) bool {
	n, c := outboundLen(cl)
	return n >= c/2 || cl.State.Inflight.Len() >= maxInflight*3/4
}

// noRoom reports whether one more QoS > 0 message would be dropped by mochi:
// the write queue is full, or the stored messages are at the limit (with a
// margin for concurrent publishers).
func (f *flowControl) noRoom(cl *mochi.Client) bool {
	n, c := outboundLen(cl)
	return n >= c-1 || cl.State.Inflight.Len() >= maxInflight-64
}

// mark records a client that is running out of room.
func (f *flowControl) mark(cl *mochi.Client) {
	if _, loaded := f.congested.LoadOrStore(cl, struct{}{}); !loaded {
		f.count.Add(1)
	}
}

func (f *flowControl) unmark(cl *mochi.Client) {
	if _, loaded := f.congested.LoadAndDelete(cl); loaded {
		f.count.Add(-1)
	}
}

// stored runs when mochi stores a QoS > 0 message for cl.
func (f *flowControl) stored(cl *mochi.Client) {
	if !cl.Net.Inline && f.crowded(cl) {
		f.mark(cl)
	}
}

// awaitRoom holds a QoS > 0 publish to topic while a congested subscriber of
// it has no room. Without congestion it costs one atomic load.
func (f *flowControl) awaitRoom(publisher *mochi.Client, topic string) {
	if f.count.Load() == 0 {
		return
	}
	subs := f.b.srv.Topics.Subscribers(topic)
	f.congested.Range(func(k, _ any) bool {
		cl := k.(*mochi.Client)
		if cl == publisher {
			return true // never wait for ourselves
		}
		if _, ok := subs.Subscriptions[cl.ID]; !ok {
			return true
		}
		f.waitFor(cl)
		return true
	})
}

func (f *flowControl) waitFor(cl *mochi.Client) {
	deadline := time.Now().Add(f.b.opts.SlowSubscriberTimeout)
	pause := 100 * time.Microsecond
	for !cl.Closed() && f.noRoom(cl) {
		if time.Now().After(deadline) {
			f.b.m.rejected("slow_subscriber")
			f.b.log.Warn("MQTT client too slow for its QoS > 0 messages: disconnected; a persistent session keeps them",
				"client_id", cl.ID, "waited", f.b.opts.SlowSubscriberTimeout.String())
			cl.Stop(packets.ErrQuotaExceeded)
			break
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Millisecond)
	}
	if cl.Closed() || !f.crowded(cl) {
		f.unmark(cl)
	}
}
