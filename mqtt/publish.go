package mqtt

import (
	"errors"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// gatewayClientID is the id of the in-process client the gateway publishes
// as. Interceptors never see its messages, so a bridged message is not
// bridged back.
const gatewayClientID = "$isthmus"

// ErrNoSubscriber is returned by PublishMessage with RequireSubscriber when no
// client is subscribed to the topic.
var ErrNoSubscriber = errors.New("mqtt: no subscriber for the topic")

// PublishOptions modify PublishMessage.
type PublishOptions struct {
	// RequireSubscriber refuses the message (ErrNoSubscriber) when no client
	// subscription matches its topic.
	RequireSubscriber bool
}

// PublishMessage hands a message to the broker as the gateway: MQTT
// subscribers get it with its MQTT 5 properties, and it is retained if asked.
// When it returns nil, the broker holds the message for every matching
// subscription (queued to online clients, stored for offline persistent
// sessions at QoS > 0).
func (b *Broker) PublishMessage(p *Publish, opts PublishOptions) error {
	if b.closing.Load() {
		return ErrBrokerClosed
	}
	if opts.RequireSubscriber && !b.HasSubscribers(p.Topic) {
		return ErrNoSubscriber
	}
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: p.QoS, Retain: p.Retain},
		TopicName:   p.Topic,
		Payload:     p.Payload,
		PacketID:    uint16(p.QoS), // mochi wants an id on inline QoS > 0 publishes; it is never acknowledged
		Created:     time.Now().Unix(),
		Properties: packets.Properties{
			ContentType:     p.ContentType,
			ResponseTopic:   p.ResponseTopic,
			CorrelationData: p.CorrelationData,
		},
	}
	if p.MessageExpiry != nil {
		pk.Properties.MessageExpiryInterval = *p.MessageExpiry
	}
	if p.PayloadFormat != nil {
		pk.Properties.PayloadFormat = *p.PayloadFormat
		pk.Properties.PayloadFormatFlag = true
	}
	for _, u := range p.UserProperties {
		pk.Properties.User = append(pk.Properties.User, packets.UserProperty{Key: u.Key, Val: u.Value})
	}
	return b.srv.InjectPacket(b.gateway, pk)
}

// HasSubscribers reports whether any client subscription matches topic.
func (b *Broker) HasSubscribers(topic string) bool {
	s := b.srv.Topics.Subscribers(topic)
	return len(s.Subscriptions) > 0 || len(s.Shared) > 0
}

// Retained returns the retained messages whose topics match filter.
func (b *Broker) Retained(filter string) []*Publish {
	pks := b.srv.Topics.Messages(filter)
	out := make([]*Publish, 0, len(pks))
	for _, pk := range pks {
		out = append(out, toPublish(b.gateway, pk))
	}
	return out
}

func newGatewayClient(srv *mochi.Server) *mochi.Client {
	cl := srv.NewClient(nil, mochi.LocalListener, gatewayClientID, true)
	cl.Properties.ProtocolVersion = 5 // keep MQTT 5 properties on what it publishes
	return cl
}
