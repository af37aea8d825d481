package mapping

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// Probe is the message a dry run (`isthmus route`) imagines: where it is sent and how.
type Probe struct {
	From     Kind   // KindMQTT, KindAMQP or KindUplink
	Uplink   string // KindUplink: the uplink consumed from
	Name     string // the topic or address
	QoS      byte   // MQTT sources
	Settled  bool   // AMQP sources: pre-settled
	ClientID string // {client-id}
	Identity string // {identity}; "" for anonymous
}

// Explanation is the result of a dry run: every route the probe matches and what each makes of it.
type Explanation struct {
	Probe      Probe
	Queue      bool   // AMQP sources: the address is a configured queue, where the message goes too
	Unroutable string // the policy applied when nothing takes the message
	Routes     []Explained
}

// Explained is one matching route's result for the probe.
type Explained struct {
	Route    *Route
	Captures []Capture
	Address  string // the rendered destination ("" when Err is set)
	Policy   Policy
	// Fields of the outgoing message, in display form. For MQTT destinations Header holds qos
	// and retain, and ApplicationProperties the user properties.
	Header, Properties, ApplicationProperties, Annotations []Field
	Forwarded                                              bool // AMQP to AMQP: the bare message goes on unchanged
	Skipped                                                []string
	Err                                                    error // the message would be rejected (ErrUnsafeCapture)
}

// Field is one named value in display form.
type Field struct {
	Name, Value string
}

// Display stand-ins for the values that depend on the message's arrival.
const (
	explainSequence = "<sequence>"
	explainReceipt  = "<receipt time>"
)

// Explain runs the probe through the router without sending anything.
func (r *Router) Explain(p Probe) *Explanation {
	e := &Explanation{Probe: p, Unroutable: r.unroutable}
	var ms []Match
	switch p.From {
	case KindMQTT:
		ms = r.MatchMQTT(p.Name)
	case KindAMQP:
		ms = r.MatchAMQP(p.Name)
		e.Queue = r.IsQueue(p.Name)
	case KindUplink:
		ms = r.MatchUplink(p.Uplink, p.Name)
	}
	for _, m := range ms {
		x := Explained{Route: m.Route, Captures: m.Captures()}
		var out *Output
		var err error
		if p.From == KindMQTT {
			msg := &MQTTMessage{Topic: p.Name, QoS: p.QoS, ClientID: p.ClientID, Identity: p.Identity, ProtocolVersion: 5}
			out, err = m.FromMQTT(msg, Env{})
		} else {
			in := &AMQPMessage{Message: &frames.Message{}, Settled: p.Settled, ContainerID: p.ClientID, Identity: p.Identity}
			out, err = m.FromAMQP(in)
		}
		if err != nil {
			x.Err = err
			x.Policy = m.Route.Policy(probeSent(p))
			e.Routes = append(e.Routes, x)
			continue
		}
		x.Address, x.Policy, x.Skipped = out.Address, out.Policy, out.Skipped
		switch {
		case out.MQTT != nil:
			x.Header, x.Properties = mqttFields(out.MQTT)
			x.ApplicationProperties = userFields(out.MQTT.UserProperties)
		case p.From == KindMQTT:
			x.Header, x.Properties, x.ApplicationProperties, x.Annotations = amqpFields(out.AMQP)
		default:
			x.Forwarded = true
		}
		e.Routes = append(e.Routes, x)
	}
	return e
}

func probeSent(p Probe) Sent {
	if p.From == KindMQTT {
		return Sent{From: KindMQTT, QoS: p.QoS}
	}
	return Sent{From: p.From, Settled: p.Settled}
}

func mqttFields(m *MQTTMessage) (publish, fs []Field) {
	publish = []Field{{"qos", strconv.Itoa(int(m.QoS))}, {"retain", strconv.FormatBool(m.Retain)}}
	if m.ContentType != "" {
		fs = append(fs, Field{"content-type", strconv.Quote(m.ContentType)})
	}
	if m.ResponseTopic != "" {
		fs = append(fs, Field{"response-topic", strconv.Quote(m.ResponseTopic)})
	}
	if m.CorrelationData != nil {
		fs = append(fs, Field{"correlation-data", strconv.Quote(string(m.CorrelationData))})
	}
	if m.PayloadFormat != nil {
		fs = append(fs, Field{"payload-format", strconv.Itoa(int(*m.PayloadFormat))})
	}
	if m.MessageExpiry != nil {
		fs = append(fs, Field{"message-expiry", strconv.FormatUint(uint64(*m.MessageExpiry), 10)})
	}
	return publish, fs
}

func userFields(ups []UserProperty) []Field {
	var fs []Field
	for _, u := range ups {
		fs = append(fs, Field{u.Key, strconv.Quote(u.Value)})
	}
	return fs
}

func amqpFields(m *frames.Message) (header, props, app, ann []Field) {
	if h := m.Header; h != nil {
		if v, ok := h.Durable.Get(); ok {
			header = append(header, Field{"durable", strconv.FormatBool(v)})
		}
		if v, ok := h.TTL.Get(); ok {
			header = append(header, Field{"ttl", strconv.FormatUint(uint64(v), 10)})
		}
	}
	if p := m.Properties; p != nil {
		if id, ok := p.MessageID.(string); ok {
			if i := strings.LastIndexByte(id, ':'); i >= 0 {
				id = id[:i+1] + explainSequence
			}
			props = append(props, Field{"message-id", strconv.Quote(id)})
		}
		if p.UserID != nil {
			props = append(props, Field{"user-id", strconv.Quote(string(p.UserID))})
		}
		opt := func(name string, o frames.Optional[string]) {
			if v, ok := o.Get(); ok {
				props = append(props, Field{name, strconv.Quote(v)})
			}
		}
		opt("to", p.To)
		opt("subject", p.Subject)
		opt("reply-to", p.ReplyTo)
		if p.CorrelationID != nil {
			props = append(props, Field{"correlation-id", displayValue(p.CorrelationID)})
		}
		if v, ok := p.ContentType.Get(); ok {
			props = append(props, Field{"content-type", strconv.Quote(string(v))})
		}
		if v, ok := p.ContentEncoding.Get(); ok {
			props = append(props, Field{"content-encoding", strconv.Quote(string(v))})
		}
		if p.CreationTime.Valid {
			props = append(props, Field{"creation-time", explainReceipt})
		}
		opt("group-id", p.GroupID)
		opt("reply-to-group-id", p.ReplyToGroupID)
	}
	for _, e := range m.ApplicationProperties {
		app = append(app, Field{displayKey(e.Key), displayValue(e.Value)})
	}
	for _, e := range m.MessageAnnotations {
		ann = append(ann, Field{displayKey(e.Key), displayValue(e.Value)})
	}
	return header, props, app, ann
}

func displayKey(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case encoding.Symbol:
		return string(x)
	}
	return displayValue(k)
}

func displayValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case encoding.Symbol:
		return strconv.Quote(string(x))
	case []byte:
		return "binary " + hex.EncodeToString(x)
	case encoding.Timestamp:
		return x.Time().UTC().Format(time.RFC3339Nano)
	}
	return string(AppendJSON(nil, v))
}

// String renders the explanation as the text `isthmus route` prints.
func (e *Explanation) String() string {
	var b strings.Builder
	p := e.Probe
	switch p.From {
	case KindMQTT:
		b.WriteString("mqtt topic " + strconv.Quote(p.Name) + ", QoS " + strconv.Itoa(int(p.QoS)))
	case KindAMQP:
		b.WriteString("amqp address " + strconv.Quote(p.Name))
	case KindUplink:
		b.WriteString("uplink " + p.Uplink + " address " + strconv.Quote(p.Name))
	}
	if p.From != KindMQTT {
		if p.Settled {
			b.WriteString(", pre-settled")
		} else {
			b.WriteString(", unsettled")
		}
	}
	if p.ClientID != "" {
		b.WriteString(", client id " + strconv.Quote(p.ClientID))
	}
	if p.Identity != "" {
		b.WriteString(", identity " + strconv.Quote(p.Identity))
	} else {
		b.WriteString(", anonymous")
	}
	b.WriteString("\n")
	if e.Queue {
		b.WriteString("the address is a queue: the message is stored there\n")
	}
	switch len(e.Routes) {
	case 0:
		b.WriteString("no route matches")
		if p.From == KindMQTT {
			b.WriteString(" (MQTT subscribers still get it from the broker)")
		}
		if !e.Queue {
			b.WriteString("; with no other destination, unroutable: " + e.Unroutable)
			switch e.Unroutable {
			case "accept":
				b.WriteString(" (dropped, counted with reason no_route)")
			case "release":
				b.WriteString(" (released: the sender may retry)")
			case "reject":
				b.WriteString(" (rejected)")
			}
		}
		b.WriteString("\n")
		return b.String()
	case 1:
		b.WriteString("1 route matches\n")
	default:
		b.WriteString(strconv.Itoa(len(e.Routes)) + " routes match; each fires\n")
	}
	for _, x := range e.Routes {
		r := x.Route
		b.WriteString("\nroute " + strconv.Quote(r.Name) + " (routes[" + strconv.Itoa(r.Index) + "])\n")
		line(&b, "from", r.From.String())
		if len(x.Captures) > 0 {
			var cs []string
			for _, c := range x.Captures {
				cs = append(cs, "{"+c.Name+"}="+strconv.Quote(c.Value))
			}
			line(&b, "captures", strings.Join(cs, " "))
		}
		to := r.To.String()
		if x.Err == nil {
			to += " → " + strconv.Quote(x.Address)
		}
		line(&b, "to", to)
		line(&b, "delivery", describeDelivery(r, x.Policy))
		if r.RequireSubscriber {
			line(&b, "require", "released when no subscriber is there")
		}
		if x.Err != nil {
			line(&b, "rejected", x.Err.Error())
			continue
		}
		if x.Forwarded {
			line(&b, "message", "bare message forwarded unchanged (AMQP 1.0 §3.2); delivery-annotations dropped")
		}
		header, app := "header", "application-properties"
		if r.To.Kind == KindMQTT {
			header, app = "publish", "user-properties"
		}
		section(&b, header, x.Header)
		section(&b, "properties", x.Properties)
		section(&b, app, x.ApplicationProperties)
		section(&b, "message-annotations", x.Annotations)
		for _, s := range x.Skipped {
			line(&b, "skipped", s)
		}
	}
	return b.String()
}

func line(b *strings.Builder, key, value string) {
	b.WriteString("  ")
	b.WriteString(key)
	b.WriteString(":")
	b.WriteString(strings.Repeat(" ", max(1, 11-len(key))))
	b.WriteString(value)
	b.WriteString("\n")
}

func section(b *strings.Builder, name string, fs []Field) {
	if len(fs) == 0 {
		return
	}
	b.WriteString("  " + name + ":\n")
	for _, f := range fs {
		b.WriteString("    " + f.Name + " = " + f.Value + "\n")
	}
}

func describeDelivery(r *Route, p Policy) string {
	s := r.Delivery.String()
	if r.Delivery == ModeAuto {
		s += " → " + p.Guarantee.String()
	}
	switch r.To.Kind {
	case KindMQTT:
		s += ": publish at QoS " + strconv.Itoa(int(p.QoS))
	default:
		switch {
		case p.Settled:
			s += ": pre-settled transfer"
		case p.RcvSettleMode == frames.ReceiverSettleModeSecond:
			s += ": unsettled transfer, rcv-settle-mode second where the link offers it (stable message-id)"
		default:
			s += ": unsettled transfer, rcv-settle-mode first"
		}
	}
	if p.Await {
		s += "; sender answered when the destination has it"
	} else {
		s += "; sender answered at once"
	}
	return s
}
