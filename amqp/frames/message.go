package frames

import (
	"strconv"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// BodyType says which of the three body forms a message has. AMQP 1.0 §3.2.
type BodyType uint8

const (
	// BodyNone: no body section. The spec requires a body, but peers (go-amqp among them) send
	// messages without one; they are accepted.
	BodyNone     BodyType = iota
	BodyData              // one or more data sections (binary), AMQP 1.0 §3.2.6
	BodySequence          // one or more amqp-sequence sections (list), AMQP 1.0 §3.2.7
	BodyValue             // exactly one amqp-value section (any value, null included), AMQP 1.0 §3.2.8
)

func (t BodyType) String() string {
	switch t {
	case BodyNone:
		return "none"
	case BodyData:
		return "data"
	case BodySequence:
		return "amqp-sequence"
	case BodyValue:
		return "amqp-value"
	}
	return "body-type(" + strconv.Itoa(int(t)) + ")"
}

// Message is an annotated message: the sections of AMQP 1.0 §3.2 in their mandated order
//
//	header? delivery-annotations? message-annotations? properties? application-properties? body footer?
//
// where the body is one amqp-value, or one or more data, or one or more amqp-sequence sections.
// The bare message (§3.2: properties, application-properties and body) is immutable in transit;
// Decode keeps its exact bytes in Bare so that an intermediary can forward it byte-identical while
// it rewrites the header and annotations.
type Message struct {
	Header              *MessageHeader // nil: absent
	DeliveryAnnotations Annotations    // nil: absent; hop-by-hop
	MessageAnnotations  Annotations    // nil: absent
	Properties          *MessageProperties
	// ApplicationProperties maps strings to simple values (§3.2.5), in wire order. nil: absent.
	ApplicationProperties encoding.Map

	// BodyType is set by Decode. When encoding a message built by hand it may stay BodyNone: the
	// body is then taken from whichever of Data, Sequence, Value is set (in that order).
	BodyType BodyType
	Data     [][]byte        // data sections; Decode aliases the input
	Sequence []encoding.List // amqp-sequence sections
	Value    any             // the amqp-value section; nil with BodyType BodyValue is an encoded null

	Footer Annotations // nil: absent

	// Bare is the encoded bare message exactly as received: from the first of properties,
	// application-properties and body through the last body section. When non-nil, Encode writes
	// it verbatim in place of Properties, ApplicationProperties and the body: set it to nil after
	// changing any of those. Decode aliases the input.
	Bare []byte
}

// Section ranks, in the order of AMQP 1.0 §3.2.
const (
	rankHeader = iota
	rankDeliveryAnnotations
	rankMessageAnnotations
	rankProperties
	rankApplicationProperties
	rankBody
	rankFooter
)

var sectionNames = [...]string{"header", "delivery-annotations", "message-annotations", "properties",
	"application-properties", "body", "footer"}

// Decode decodes a whole message (the concatenated payloads of a delivery's transfers) into m,
// checking the section order of AMQP 1.0 §3.2. Unknown section descriptors, sections out of order
// or repeated, and bodies mixing forms are *DecodeError. Data and Bare alias b; everything else is
// copied.
func (m *Message) Decode(b []byte) error {
	*m = Message{}
	r := encoding.NewReader(b)
	last, lastCode := -1, uint64(0)
	bareStart, bareEnd := -1, -1
	for r.More() {
		start := r.Offset()
		peek := r
		d, err := peek.ReadDescriptor()
		if err != nil {
			return wrapDecode("message", "section", start, err)
		}
		code, known := d.Code, true
		if d.Symbolic() {
			code, known = descriptorCode(string(d.Name))
		}
		rank, bt := sectionRank(code)
		if !known || rank < 0 {
			return decodeError("message", "section", start, "descriptor "+descriptorString(d)+" is not a message section", nil)
		}
		field := sectionNames[rank]
		if rank == rankBody {
			field = bt.String()
		}
		// AMQP 1.0 §3.2: each section at most once and in order; only data and amqp-sequence repeat,
		// and a body does not mix forms.
		switch {
		case rank < last:
			return decodeError("message", field, start, field+" after "+sectionNames[last], nil)
		case rank == last && (rank != rankBody || code != lastCode || bt == BodyValue):
			if rank == rankBody && code != lastCode {
				return decodeError("message", field, start, "body mixes "+m.BodyType.String()+" and "+bt.String(), nil)
			}
			return decodeError("message", field, start, "repeated "+field+" section", nil)
		}
		if rank >= rankProperties && rank <= rankBody && bareStart < 0 {
			bareStart = start
		}
		if err := m.decodeSection(&r, code, field); err != nil {
			return err
		}
		if rank <= rankBody && rank >= rankProperties {
			bareEnd = r.Offset()
		}
		if rank == rankBody {
			m.BodyType = bt
		}
		last, lastCode = rank, code
	}
	if bareStart >= 0 {
		m.Bare = b[bareStart:bareEnd:bareEnd]
	}
	return nil
}

func sectionRank(code uint64) (int, BodyType) {
	switch code {
	case DescriptorMessageHeader:
		return rankHeader, 0
	case DescriptorDeliveryAnnotations:
		return rankDeliveryAnnotations, 0
	case DescriptorMessageAnnotations:
		return rankMessageAnnotations, 0
	case DescriptorMessageProperties:
		return rankProperties, 0
	case DescriptorApplicationProperties:
		return rankApplicationProperties, 0
	case DescriptorData:
		return rankBody, BodyData
	case DescriptorAMQPSequence:
		return rankBody, BodySequence
	case DescriptorAMQPValue:
		return rankBody, BodyValue
	case DescriptorFooter:
		return rankFooter, 0
	}
	return -1, 0
}

func (m *Message) decodeSection(r *encoding.Reader, code uint64, field string) error {
	start := r.Offset()
	switch code {
	case DescriptorMessageHeader:
		m.Header = new(MessageHeader)
		if err := m.Header.decodeFrom(r); err != nil {
			return wrapDecode("message", field, start, err)
		}
		return nil
	case DescriptorMessageProperties:
		m.Properties = new(MessageProperties)
		if err := m.Properties.decodeFrom(r); err != nil {
			return wrapDecode("message", field, start, err)
		}
		return nil
	}
	if _, err := r.ReadDescriptor(); err != nil {
		return wrapDecode("message", field, start, err)
	}
	var err error
	switch code {
	case DescriptorDeliveryAnnotations:
		m.DeliveryAnnotations, err = readSectionMap(r)
	case DescriptorMessageAnnotations:
		m.MessageAnnotations, err = readSectionMap(r)
	case DescriptorApplicationProperties:
		m.ApplicationProperties, err = readSectionMap(r)
	case DescriptorFooter:
		m.Footer, err = readSectionMap(r)
	case DescriptorData:
		var v []byte
		if v, err = r.ReadBinary(); err == nil {
			m.Data = append(m.Data, v)
		}
	case DescriptorAMQPSequence:
		var v any
		if c, _ := r.PeekCode(); c != encoding.CodeList0 && c != encoding.CodeList8 && c != encoding.CodeList32 {
			return decodeError("message", field, r.Offset(), "amqp-sequence must hold a list, got "+c.String(), nil)
		}
		if v, err = r.ReadValue(); err == nil {
			m.Sequence = append(m.Sequence, v.(encoding.List))
		}
	case DescriptorAMQPValue:
		m.Value, err = r.ReadValue()
	}
	if err != nil {
		return wrapDecode("message", field, start, err)
	}
	return nil
}

// readSectionMap reads the map of an annotations or application-properties section. A null is
// taken as an empty section rather than refused.
func readSectionMap(r *encoding.Reader) (encoding.Map, error) {
	c, err := r.PeekCode()
	if err != nil {
		return nil, err
	}
	switch c {
	case encoding.CodeNull:
		return encoding.Map{}, r.ReadNull()
	case encoding.CodeMap8, encoding.CodeMap32:
	default:
		return nil, &encoding.DecodeError{Offset: r.Offset(), Msg: "expected a map, got " + c.String()}
	}
	v, err := r.ReadValue()
	if err != nil {
		return nil, err
	}
	return v.(encoding.Map), nil
}

// Encode appends the message's sections in the order of AMQP 1.0 §3.2. With Bare set, the bare
// message is written verbatim after freshly encoded header and annotations (the forwarding case).
func (m *Message) Encode(b []byte) ([]byte, error) {
	start := len(b)
	var err error
	if m.Header != nil {
		if b, err = m.Header.Encode(b); err != nil {
			return b[:start], err
		}
	}
	if b, err = appendSectionMap(b, DescriptorDeliveryAnnotations, m.DeliveryAnnotations); err != nil {
		return b[:start], err
	}
	if b, err = appendSectionMap(b, DescriptorMessageAnnotations, m.MessageAnnotations); err != nil {
		return b[:start], err
	}
	if m.Bare != nil {
		b = append(b, m.Bare...)
	} else if b, err = m.AppendBare(b); err != nil {
		return b[:start], err
	}
	if b, err = appendSectionMap(b, DescriptorFooter, m.Footer); err != nil {
		return b[:start], err
	}
	return b, nil
}

// AppendBare encodes the bare message from Properties, ApplicationProperties and the body,
// ignoring Bare.
func (m *Message) AppendBare(b []byte) ([]byte, error) {
	var err error
	if m.Properties != nil {
		if b, err = m.Properties.Encode(b); err != nil {
			return b, err
		}
	}
	if b, err = appendSectionMap(b, DescriptorApplicationProperties, m.ApplicationProperties); err != nil {
		return b, err
	}
	bt := m.BodyType
	if bt == BodyNone {
		switch {
		case m.Data != nil:
			bt = BodyData
		case m.Sequence != nil:
			bt = BodySequence
		case m.Value != nil:
			bt = BodyValue
		}
	}
	switch bt {
	case BodyData:
		for _, d := range m.Data {
			b = encoding.AppendBinary(encoding.AppendDescriptor(b, DescriptorData), d)
		}
	case BodySequence:
		for _, s := range m.Sequence {
			if b, err = encoding.AppendValue(encoding.AppendDescriptor(b, DescriptorAMQPSequence), s); err != nil {
				return b, err
			}
		}
	case BodyValue:
		if b, err = encoding.AppendValue(encoding.AppendDescriptor(b, DescriptorAMQPValue), m.Value); err != nil {
			return b, err
		}
	}
	return b, nil
}

func appendSectionMap(b []byte, code uint64, m encoding.Map) ([]byte, error) {
	if m == nil {
		return b, nil
	}
	return appendMap(encoding.AppendDescriptor(b, code), m)
}

// appendMap encodes a generic map entry by entry: passing the Map itself to AppendValue would box
// the slice header (an allocation per map on the hot path).
func appendMap(b []byte, m encoding.Map) ([]byte, error) {
	b, c := encoding.BeginMap(b)
	var err error
	for _, e := range m {
		if b, err = encoding.AppendValue(b, e.Key); err != nil {
			return b, err
		}
		if b, err = encoding.AppendValue(b, e.Value); err != nil {
			return b, err
		}
		c.Entry(b)
	}
	return c.End(b), nil
}
