package mqtt

import (
	"sort"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// restoreResendOrder makes mochi resend a returning client's stored QoS > 0
// messages in their original order [MQTT-4.6.0-1].
//
// mochi v2.7.9 resends a session's inflight messages sorted by
// uint16(Created), where Created is a Unix time in seconds: messages stored in
// the same second come out in random order (sort.Slice is not stable). Their
// true order is the order mochi assigned packet identifiers, which increase
// by one per message and wrap at 65535; the stored set is a window of that
// circle, so it starts just after the largest gap between the identifiers in
// use. We renumber Created with each message's rank in that order before
// mochi copies the session to the new connection (OnSessionEstablish runs
// before inheritClientSession). Created serves no other purpose while
// MaximumMessageExpiryInterval is 0 (see New).
func restoreResendOrder(srv *mochi.Server, clientID string) {
	old, ok := srv.Clients.Get(clientID)
	if !ok || old.State.Inflight.Len() < 2 {
		return
	}
	pks := old.State.Inflight.GetAll(false)
	sort.Slice(pks, func(i, j int) bool { return pks[i].PacketID < pks[j].PacketID })
	start, gap := 0, -1
	for i := range pks {
		next := int(pks[(i+1)%len(pks)].PacketID)
		if i == len(pks)-1 {
			next += 65536
		}
		if d := next - int(pks[i].PacketID); d > gap {
			gap, start = d, (i+1)%len(pks)
		}
	}
	for rank := range pks {
		pk := pks[(start+rank)%len(pks)]
		pk.Created = int64(rank)
		old.State.Inflight.Set(pk)
	}
}

// OnSessionEstablish runs after authentication, before mochi takes over an
// existing session for this client id.
func (h *hook) OnSessionEstablish(cl *mochi.Client, pk packets.Packet) {
	if !pk.Connect.Clean {
		restoreResendOrder(h.b.srv, cl.ID)
	}
}
