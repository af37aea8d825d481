package mapping

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// MQTTMessage is an MQTT publish as the mapping sees it, free of any broker's types. Fields
// absent in MQTT 3.1.1 stay zero.
type MQTTMessage struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// Will: the broker publishes this message on the client's behalf as its will.
	Will bool

	// MQTT 5 properties (§3.3.2.3).
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	MessageExpiry   *uint32 // seconds; nil: does not expire
	PayloadFormat   *byte   // nil: absent; 1: UTF-8 text
	UserProperties  []UserProperty

	// The sender.
	ClientID        string
	Identity        string // authenticated identity; "" for anonymous
	ProtocolVersion byte   // 3 (3.1), 4 (3.1.1) or 5
}

// UserProperty is one MQTT 5 user property; a key may repeat (MQTT 5 §3.3.2.3.7).
type UserProperty struct {
	Key, Value string
}

// Env is what the gateway knows about a message's arrival.
type Env struct {
	// Sequence numbers the message for its message-id, "<gateway id>:<sequence>". It must stay
	// the same when a device retransmits (DUP) so that exactly-once receivers can drop the copy.
	Sequence uint64
	// Received is the receipt time: creation-time.
	Received time.Time
}

// Message-annotation keys written on MQTT messages entering AMQP (AMQP 1.0 §3.2.3: x-opt- keys
// may be ignored by receivers that do not know them).
const (
	AnnotationTopic  encoding.Symbol = "x-opt-mqtt-topic" // string: the MQTT topic the message was published to
	AnnotationQoS    encoding.Symbol = "x-opt-mqtt-qos"   // ubyte: its QoS
	AnnotationRetain encoding.Symbol = "x-opt-retain"     // boolean true: a retained message (absent otherwise)
	AnnotationWill   encoding.Symbol = "x-opt-mqtt-will"  // boolean true: a will message (absent otherwise)
)

// DeviceIDProperty is the application-property carrying the sender's identity.
const DeviceIDProperty = "device-id"

// JSONContentType is the content type of payloads made from AMQP values (see AppendJSON).
const JSONContentType = "application/json"

// MQTTToAMQP translates an MQTT publish into an AMQP message (SPEC §5.5):
//
//	payload                   one data section, byte-exact (it aliases msg.Payload)
//	QoS > 0                   header.durable = true
//	Message Expiry (s)        header.ttl (ms; above 4294967 s it is capped at 2^32-1 ms)
//	Content Type              properties.content-type (a symbol: skipped when not ASCII)
//	Correlation Data          properties.correlation-id (binary)
//	Response Topic            properties.reply-to
//	User Properties           application-properties (strings); for a repeated key the last value
//	                          wins, in the position of the first (AMQP map keys are unique, §3.2.5)
//	identity                  properties.user-id and application-property device-id; none for ""
//	topic, QoS, retain, will  message-annotations x-opt-mqtt-topic, x-opt-mqtt-qos, and
//	                          x-opt-retain / x-opt-mqtt-will set to true when they apply
//	—                         properties.message-id = "<gatewayID>:<env.Sequence>" (string),
//	                          properties.creation-time = env.Received
//
// The payload format indicator has no AMQP counterpart and is dropped. skipped names the fields
// that could not be carried.
func MQTTToAMQP(msg *MQTTMessage, gatewayID string, env Env) (m *frames.Message, skipped []string) {
	m = &frames.Message{BodyType: frames.BodyData, Data: [][]byte{msg.Payload}}
	if m.Data[0] == nil {
		m.Data[0] = []byte{}
	}
	if msg.QoS > 0 || msg.MessageExpiry != nil {
		m.Header = &frames.MessageHeader{}
		if msg.QoS > 0 {
			m.Header.Durable = frames.Some(true)
		}
		if msg.MessageExpiry != nil {
			m.Header.TTL = frames.Some(uint32(min(uint64(*msg.MessageExpiry)*1000, math.MaxUint32)))
		}
	}
	p := &frames.MessageProperties{
		MessageID:    gatewayID + ":" + strconv.FormatUint(env.Sequence, 10),
		CreationTime: frames.Some(encoding.TimestampOf(env.Received)),
	}
	m.Properties = p
	if msg.ContentType != "" {
		if isASCII(msg.ContentType) {
			p.ContentType = frames.Some(encoding.Symbol(msg.ContentType))
		} else {
			skipped = append(skipped, "content-type: not ASCII, which an AMQP symbol requires")
		}
	}
	if msg.CorrelationData != nil {
		p.CorrelationID = msg.CorrelationData
	}
	if msg.ResponseTopic != "" {
		p.ReplyTo = frames.Some(msg.ResponseTopic)
	}
	if msg.Identity != "" {
		p.UserID = []byte(msg.Identity)
	}
	if len(msg.UserProperties) > 0 || msg.Identity != "" {
		m.ApplicationProperties = make(encoding.Map, 0, len(msg.UserProperties)+1)
		var idx map[string]int
		if len(msg.UserProperties) > 8 {
			idx = make(map[string]int, len(msg.UserProperties))
		}
		for _, up := range msg.UserProperties {
			m.ApplicationProperties = setProperty(m.ApplicationProperties, idx, up.Key, up.Value)
		}
		if msg.Identity != "" {
			m.ApplicationProperties = setProperty(m.ApplicationProperties, idx, DeviceIDProperty, msg.Identity)
		}
	}
	ann := make(encoding.Map, 2, 4)
	ann[0] = encoding.MapEntry{Key: AnnotationTopic, Value: msg.Topic}
	ann[1] = encoding.MapEntry{Key: AnnotationQoS, Value: msg.QoS}
	if msg.Retain {
		ann = append(ann, encoding.MapEntry{Key: AnnotationRetain, Value: true})
	}
	if msg.Will {
		ann = append(ann, encoding.MapEntry{Key: AnnotationWill, Value: true})
	}
	m.MessageAnnotations = ann
	return m, skipped
}

// setProperty sets key to value in an application-properties map, replacing an earlier value in
// place. idx, when not nil, indexes the map's string keys (for long lists: a linear search per
// key would be quadratic in what a hostile client sends).
func setProperty(m encoding.Map, idx map[string]int, key string, value any) encoding.Map {
	if idx != nil {
		if i, ok := idx[key]; ok {
			m[i].Value = value
			return m
		}
		idx[key] = len(m)
		return append(m, encoding.MapEntry{Key: key, Value: value})
	}
	for i := range m {
		if k, ok := m[i].Key.(string); ok && k == key {
			m[i].Value = value
			return m
		}
	}
	return append(m, encoding.MapEntry{Key: key, Value: value})
}

// AMQPToMQTT translates an AMQP message into an MQTT publish without topic, QoS or retain, which
// the route decides (SPEC §5.5):
//
//	data sections             the payload: one section is aliased, several are concatenated
//	amqp-value string         the payload as UTF-8, payload format indicator 1
//	amqp-value binary         the payload, byte-exact (clients such as rhea and Proton send a
//	                          byte buffer body this way)
//	other amqp-value,         JSON (AppendJSON; the sections of an amqp-sequence body form one
//	amqp-sequence             array), content type application/json, payload format indicator 1
//	no body                   an empty payload
//	header.ttl (ms)           Message Expiry Interval, rounded up to whole seconds; at least 1,
//	                          since MQTT cannot say "already expired" (0 would mean nothing)
//	properties.content-type   Content Type (except for JSON, above)
//	properties.correlation-id Correlation Data: binary as is, string as its UTF-8 bytes, uuid as
//	                          its 16 bytes, ulong as 8 bytes big-endian
//	properties.reply-to       Response Topic, unless it is not a valid topic name (wildcards)
//	application-properties    User Properties, in map order: strings and symbols as they are,
//	                          booleans as true/false, numbers in decimal (floats in the shortest
//	                          form that reads back the same), timestamps in RFC 3339 UTC with
//	                          milliseconds, uuids in 8-4-4-4-12 form, chars as the character
//	                          and decimals as in AppendJSON
//
// Everything else (message-id, user-id, subject, other header fields, binary, null or described
// application-properties, non-string keys) has no MQTT 5 counterpart and is dropped; skipped names
// what was dropped from the application-properties and the properties above, for counting.
func AMQPToMQTT(m *frames.Message) (out *MQTTMessage, skipped []string) {
	out = &MQTTMessage{}
	bt := m.BodyType
	if bt == frames.BodyNone {
		switch {
		case m.Data != nil:
			bt = frames.BodyData
		case m.Sequence != nil:
			bt = frames.BodySequence
		case m.Value != nil:
			bt = frames.BodyValue
		}
	}
	json := false
	switch bt {
	case frames.BodyData:
		if len(m.Data) == 1 {
			out.Payload = m.Data[0]
		} else {
			n := 0
			for _, d := range m.Data {
				n += len(d)
			}
			out.Payload = make([]byte, 0, n)
			for _, d := range m.Data {
				out.Payload = append(out.Payload, d...)
			}
		}
	case frames.BodyValue:
		switch v := m.Value.(type) {
		case string:
			out.Payload = []byte(v)
			out.PayloadFormat = utf8Indicator()
		case []byte:
			out.Payload = v
		default:
			out.Payload = AppendJSON(nil, m.Value)
			json = true
		}
	case frames.BodySequence:
		out.Payload = appendSequenceJSON(nil, m.Sequence)
		json = true
	}
	if json {
		out.ContentType = JSONContentType
		out.PayloadFormat = utf8Indicator()
	}
	if h := m.Header; h != nil && h.TTL.Valid {
		s := uint32((uint64(h.TTL.V) + 999) / 1000)
		if s == 0 {
			s = 1
		}
		out.MessageExpiry = &s
	}
	if p := m.Properties; p != nil {
		if ct, ok := p.ContentType.Get(); ok && !json {
			if checkText(string(ct)) == "" {
				out.ContentType = string(ct)
			} else {
				skipped = append(skipped, "content-type: contains NUL")
			}
		}
		if p.CorrelationID != nil {
			if b, ok := correlationBytes(p.CorrelationID); ok {
				out.CorrelationData = b
			} else {
				skipped = append(skipped, "correlation-id: not binary, string, uuid or ulong")
			}
		}
		if rt, ok := p.ReplyTo.Get(); ok {
			if validTopicName(rt) {
				out.ResponseTopic = rt
			} else {
				skipped = append(skipped, "reply-to: not a valid MQTT topic name")
			}
		}
	}
	for _, e := range m.ApplicationProperties {
		k, ok := e.Key.(string)
		if !ok {
			skipped = append(skipped, "application-properties: a key that is not a string")
			continue
		}
		v, ok := simpleText(e.Value)
		if !ok || checkText(k) != "" || checkText(v) != "" {
			skipped = append(skipped, "application-properties."+k+": no MQTT user-property form")
			continue
		}
		out.UserProperties = append(out.UserProperties, UserProperty{Key: k, Value: v})
	}
	return out, skipped
}

func utf8Indicator() *byte {
	b := byte(1)
	return &b
}

// correlationBytes turns a message-id type (AMQP 1.0 §3.2.11–§3.2.14) into MQTT correlation data.
func correlationBytes(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case string:
		return []byte(x), true
	case encoding.UUID:
		return slices.Clone(x[:]), true
	case uint64:
		return binary.BigEndian.AppendUint64(nil, x), true
	}
	return nil, false
}

// validTopicName reports whether s may be published to: not empty, no wildcard, no NUL, valid
// UTF-8, not too long. [MQTT-3.3.2-2] [MQTT-4.7.3-1] [MQTT-1.5.4-1] [MQTT-1.5.4-2]
func validTopicName(s string) bool {
	if s == "" || len(s) > maxTopicLen || checkText(s) != "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '+' || s[i] == '#' {
			return false
		}
	}
	return true
}

// simpleText formats an application-property value of a simple type (AMQP 1.0 §3.2.5) as text;
// false for binary, null, described and compound values.
func simpleText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case encoding.Symbol:
		return string(x), true
	case bool:
		return strconv.FormatBool(x), true
	case uint8:
		return strconv.FormatUint(uint64(x), 10), true
	case uint16:
		return strconv.FormatUint(uint64(x), 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case int8:
		return strconv.FormatInt(int64(x), 10), true
	case int16:
		return strconv.FormatInt(int64(x), 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case encoding.Timestamp:
		if b, ok := appendTimestamp(nil, x); ok {
			return string(b), true
		}
		return strconv.FormatInt(int64(x), 10), true
	case encoding.UUID:
		return x.String(), true
	case encoding.Char:
		return string(rune(x)), true
	case encoding.Decimal32:
		return string(appendDecimal(nil, x[:], decimal32)), true
	case encoding.Decimal64:
		return string(appendDecimal(nil, x[:], decimal64)), true
	case encoding.Decimal128:
		return string(appendDecimal(nil, x[:], decimal128)), true
	}
	return "", false
}

// ForwardAMQP prepares an AMQP message for another AMQP destination (AMQP to AMQP, uplinks
// included). The bare message (properties, application-properties, body) is immutable in transit
// (AMQP 1.0 §3.2): when m came from Decode, m.Bare holds its bytes and the result encodes them
// verbatim, so what the sender wrote arrives byte for byte. The header is copied (the gateway may
// update it: delivery-count, §3.2.1), message-annotations and footer are kept, and
// delivery-annotations are dropped: they are for one hop only (§3.2.2).
func ForwardAMQP(m *frames.Message) *frames.Message {
	out := *m
	out.DeliveryAnnotations = nil
	if m.Header != nil {
		h := *m.Header
		out.Header = &h
	}
	out.MessageAnnotations = slices.Clone(m.MessageAnnotations)
	return &out
}
