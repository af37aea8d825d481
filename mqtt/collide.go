package mqtt

import (
	"sync"
	"sync/atomic"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Packet identifiers are separate per direction [MQTT-2.2.1], but mochi
// v2.7.9 keeps both directions' unacknowledged packets in one map per client,
// keyed by packet identifier. When a client publishes at QoS > 0 with the
// identifier of a server→client message it has not acknowledged yet, mochi
// deletes that message (mochi issues 519/545): it is never resent, and a
// persistent session loses it.
//
// The adapter stashes such an entry before mochi processes the client's
// PUBLISH and puts it back afterwards. If the client's PUBLISH was QoS 2,
// its PUBREC now holds the identifier until PUBREL, so the server→client
// message is sent again under a fresh identifier (at-least-once: the client
// may see it twice). A server→client QoS 2 message already past PUBREC cannot
// be renumbered; it is counted as dropped (reason packet_id_collision).

// outboundStash holds, per client, the entry taken out of mochi's way while
// one of the client's packets is processed on its read goroutine.
type outboundStash struct {
	mu sync.Mutex
	m  map[*mochi.Client]packets.Packet
}

// isOutbound reports whether an inflight entry belongs to a server→client
// flow: a PUBLISH awaiting PUBACK/PUBREC, or a PUBREL awaiting PUBCOMP.
func isOutbound(p packets.Packet) bool {
	return p.FixedHeader.Type == packets.Publish || p.FixedHeader.Type == packets.Pubrel
}

// takeOutbound removes and returns the server→client entry that an incoming
// QoS > 0 PUBLISH pk would make mochi delete.
func takeOutbound(cl *mochi.Client, pk packets.Packet) (packets.Packet, bool) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 {
		return packets.Packet{}, false
	}
	out, ok := cl.State.Inflight.Get(pk.PacketID)
	if !ok || !isOutbound(out) {
		return packets.Packet{}, false
	}
	return out, true
}

func (s *outboundStash) put(cl *mochi.Client, out packets.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[*mochi.Client]packets.Packet)
	}
	s.m[cl] = out
}

func (s *outboundStash) take(cl *mochi.Client) (packets.Packet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, ok := s.m[cl]
	delete(s.m, cl)
	return out, ok
}

// restoreOutbound puts a stashed server→client entry back after mochi has
// processed the client's PUBLISH.
func (b *Broker) restoreOutbound(cl *mochi.Client, out packets.Packet) {
	cur, taken := cl.State.Inflight.Get(out.PacketID)
	if taken && cur.FixedHeader.Type == out.FixedHeader.Type && cur.Created == out.Created && cur.TopicName == out.TopicName {
		return // mochi left it alone after all
	}
	if !taken {
		if cl.State.Inflight.Set(out) {
			atomic.AddInt64(&b.srv.Info.Inflight, 1)
		}
		return
	}
	if out.FixedHeader.Type != packets.Publish {
		b.m.dropped("packet_id_collision")
		b.log.Warn("a server→client QoS 2 message lost its packet identifier to the client's own QoS 2 publish (mochi 519/545)", "client_id", cl.ID)
		return
	}
	id, err := cl.NextPacketID()
	if err != nil {
		b.m.dropped("packet_id_collision")
		return
	}
	out.PacketID = uint16(id)
	out.FixedHeader.Dup = false
	if cl.State.Inflight.Set(out) {
		atomic.AddInt64(&b.srv.Info.Inflight, 1)
	}
	if !cl.Closed() {
		_ = cl.WritePacket(out)
	}
}

// OnPacketRead runs before mochi processes a client's packet.
func (h *hook) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	h.screenPublish(cl, &pk)
	screenConnect(&pk)
	if out, ok := takeOutbound(cl, pk); ok {
		h.b.stash.put(cl, out)
	}
	return pk, nil
}

// OnPacketProcessed runs after mochi processed a client's packet.
func (h *hook) OnPacketProcessed(cl *mochi.Client, pk packets.Packet, err error) {
	if out, ok := h.b.stash.take(cl); ok {
		h.b.restoreOutbound(cl, out)
	}
}
