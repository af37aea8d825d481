package mapping

import (
	"slices"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// AMQPMessage is an AMQP delivery as the mapping sees it: the decoded message and how it came.
type AMQPMessage struct {
	Message *frames.Message
	// Settled: the transfer arrived pre-settled.
	Settled bool
	// SettleSecond: the link it came on has rcv-settle-mode second.
	SettleSecond bool
	// ContainerID is the sending connection's container-id ({client-id} in templates); for
	// uplink sources, the uplink's remote container-id.
	ContainerID string
	// Identity is the sender's authenticated identity ({identity}); "" when anonymous.
	Identity string
}

// Sent returns how the message was sent, for Resolve.
func (in *AMQPMessage) Sent(from Kind) Sent {
	return Sent{From: from, Settled: in.Settled, SettleSecond: in.SettleSecond}
}

// Output is what one route makes of one message: where it goes, how, and the message itself.
type Output struct {
	Route   *Route
	To      Kind
	Uplink  string // KindUplink: the uplink's name
	Address string // the rendered destination: MQTT topic, AMQP address or uplink address
	Policy  Policy
	AMQP    *frames.Message // KindAMQP and KindUplink destinations
	MQTT    *MQTTMessage    // KindMQTT destinations
	// Skipped names what the translation could not carry (SPEC §5.5: skipped and counted).
	Skipped []string
}

// Destination renders the route's destination for this match: the topic or address the message
// goes to. clientID and identity fill {client-id} and {identity}. An error wraps
// ErrUnsafeCapture.
func (m Match) Destination(clientID, identity string) (string, error) {
	src := m.source(clientID, identity)
	return m.Route.to.renderString(&src, m.Route.Name, m.Route.toField)
}

func (m Match) source(clientID, identity string) source {
	return source{name: m.Name, sep: m.Route.From.Separator, clientID: clientID, identity: identity}
}

// renderString renders into a stack buffer and copies the result out once.
func (t *template) renderString(src *source, route, field string) (string, error) {
	var buf [256]byte
	b, err := t.render(buf[:0], src, route, field)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// FromMQTT maps an MQTT publish through the matched route. For AMQP and uplink destinations the
// message is translated by MQTTToAMQP; for MQTT destinations it is copied with the new topic, the
// policy's QoS and the route's retain. The route's properties and application-properties are
// applied last, over what the translation produced. An error wraps ErrUnsafeCapture: reject the
// message and count it.
func (m Match) FromMQTT(msg *MQTTMessage, env Env) (*Output, error) {
	r := m.Route
	src := m.source(msg.ClientID, msg.Identity)
	addr, err := r.to.renderString(&src, r.Name, r.toField)
	if err != nil {
		return nil, err
	}
	out := &Output{Route: r, To: r.To.Kind, Uplink: r.To.Uplink, Address: addr, Policy: r.Policy(msg.Sent())}
	if r.To.Kind == KindMQTT {
		mm := *msg
		mm.Topic, mm.QoS, mm.Retain = addr, out.Policy.QoS, r.retain(msg.Retain)
		if err := r.applyMQTT(&mm, &src); err != nil {
			return nil, err
		}
		out.MQTT = &mm
		return out, nil
	}
	am, skipped := MQTTToAMQP(msg, r.gatewayID, env)
	if err := r.applyAMQP(am, &src); err != nil {
		return nil, err
	}
	out.AMQP, out.Skipped = am, skipped
	return out, nil
}

// FromAMQP maps an AMQP message (from the gateway's address space or an uplink) through the
// matched route. For MQTT destinations it is translated by AMQPToMQTT; for AMQP and uplink
// destinations it is forwarded by ForwardAMQP with its bare message untouched. An error wraps
// ErrUnsafeCapture: reject the message (amqp:invalid-field) and count it.
func (m Match) FromAMQP(in *AMQPMessage) (*Output, error) {
	r := m.Route
	src := m.source(in.ContainerID, in.Identity)
	addr, err := r.to.renderString(&src, r.Name, r.toField)
	if err != nil {
		return nil, err
	}
	out := &Output{Route: r, To: r.To.Kind, Uplink: r.To.Uplink, Address: addr, Policy: r.Policy(in.Sent(r.From.Kind))}
	if r.To.Kind != KindMQTT {
		out.AMQP = ForwardAMQP(in.Message)
		return out, nil
	}
	mm, skipped := AMQPToMQTT(in.Message)
	mm.Topic, mm.QoS = addr, out.Policy.QoS
	mm.Retain = r.retain(annotationTrue(in.Message.MessageAnnotations, AnnotationRetain))
	mm.ClientID, mm.Identity = in.ContainerID, in.Identity
	if err := r.applyMQTT(mm, &src); err != nil {
		return nil, err
	}
	out.MQTT, out.Skipped = mm, skipped
	return out, nil
}

func (r *Route) retain(source bool) bool {
	switch r.Retain {
	case RetainTrue:
		return true
	case RetainFalse:
		return false
	}
	return source
}

func annotationTrue(m encoding.Map, key encoding.Symbol) bool {
	for _, e := range m {
		if k, ok := e.Key.(encoding.Symbol); ok && k == key {
			b, _ := e.Value.(bool)
			return b
		}
	}
	return false
}

// applyAMQP sets the route's properties and application-properties on an AMQP message. A
// property whose template renders empty is left as it was.
func (r *Route) applyAMQP(m *frames.Message, src *source) error {
	for i := range r.props {
		p := &r.props[i]
		v, err := p.t.renderString(src, r.Name, p.field)
		if err != nil {
			return err
		}
		if v == "" {
			continue
		}
		if m.Properties == nil {
			m.Properties = &frames.MessageProperties{}
		}
		pr := m.Properties
		switch p.key {
		case "subject":
			pr.Subject = frames.Some(v)
		case "to":
			pr.To = frames.Some(v)
		case "reply-to":
			pr.ReplyTo = frames.Some(v)
		case "correlation-id":
			pr.CorrelationID = v
		case "content-type":
			pr.ContentType = frames.Some(encoding.Symbol(v))
		case "content-encoding":
			pr.ContentEncoding = frames.Some(encoding.Symbol(v))
		case "group-id":
			pr.GroupID = frames.Some(v)
		case "reply-to-group-id":
			pr.ReplyToGroupID = frames.Some(v)
		}
	}
	if len(r.appProps) == 0 {
		return nil
	}
	var idx map[string]int
	if len(m.ApplicationProperties) > 8 {
		idx = make(map[string]int, len(m.ApplicationProperties))
		for i, e := range m.ApplicationProperties {
			if k, ok := e.Key.(string); ok {
				idx[k] = i
			}
		}
	}
	for i := range r.appProps {
		p := &r.appProps[i]
		v, err := p.t.renderString(src, r.Name, p.field)
		if err != nil {
			return err
		}
		if v != "" {
			m.ApplicationProperties = setProperty(m.ApplicationProperties, idx, p.key, v)
		}
	}
	return nil
}

// applyMQTT sets the route's properties and application-properties (as user properties, replacing
// every earlier value of the key) on an MQTT message.
func (r *Route) applyMQTT(m *MQTTMessage, src *source) error {
	for i := range r.props {
		p := &r.props[i]
		v, err := p.t.renderString(src, r.Name, p.field)
		if err != nil {
			return err
		}
		if v == "" {
			continue
		}
		switch p.key {
		case "content-type":
			m.ContentType = v
		case "response-topic":
			m.ResponseTopic = v
		case "correlation-data":
			m.CorrelationData = []byte(v)
		}
	}
	if len(r.appProps) == 0 {
		return nil
	}
	// The slice may be shared with the source message: build a new one.
	ups := slices.Clone(m.UserProperties)
	for i := range r.appProps {
		p := &r.appProps[i]
		v, err := p.t.renderString(src, r.Name, p.field)
		if err != nil {
			return err
		}
		if v == "" {
			continue
		}
		ups = slices.DeleteFunc(ups, func(u UserProperty) bool { return u.Key == p.key })
		ups = append(ups, UserProperty{Key: p.key, Value: v})
	}
	m.UserProperties = ups
	return nil
}
