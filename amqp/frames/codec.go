package frames

import (
	"errors"
	"strconv"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// Type names used by the generated structs; the generic forms come from amqp/encoding.
type (
	// Symbol is an AMQP symbol (ASCII). AMQP 1.0 Part 1 §1.6.21.
	Symbol = encoding.Symbol
	// Timestamp is an AMQP timestamp: milliseconds since the Unix epoch. AMQP 1.0 Part 1 §1.6.17.
	Timestamp = encoding.Timestamp
	// Fields is the fields type of AMQP 1.0 §2.8.13 (a map with symbol keys), in wire order.
	// Decoders do not check the key types (peers are sloppy); encoders write what they are given.
	Fields = encoding.Map
	// Annotations is the annotations type of AMQP 1.0 §3.2.10: a map with symbol or ulong keys.
	Annotations = encoding.Map
)

// Composite is implemented by every generated composite type.
type Composite interface {
	// Descriptor returns the type's numeric descriptor.
	Descriptor() uint64
	// Encode appends the described list, omitting trailing absent fields (AMQP 1.0 Part 1 §1.4).
	Encode(b []byte) ([]byte, error)
}

// compositeDecoder is what every generated composite implements.
type compositeDecoder interface {
	Composite
	Decode(b []byte) (int, error)
	Reset()
}

// DecodeComposite turns a generic described value into its typed composite: an amqp-value body
// holding declare or discharge (AMQP 1.0 §4.5.2, §4.5.3), a lifetime-policy in
// dynamic-node-properties (§3.5.9), a delivery state kept generic. v is an encoding.Described (its
// Raw bytes are decoded when present) or an encoding.Raw. A descriptor this package does not model
// is a *DecodeError.
func DecodeComposite(v any) (Composite, error) {
	var b []byte
	switch x := v.(type) {
	case encoding.Described:
		b = x.Raw
		if b == nil {
			var err error
			if b, err = encoding.AppendValue(nil, x); err != nil {
				return nil, err
			}
		}
	case *encoding.Described:
		return DecodeComposite(*x)
	case encoding.Raw:
		b = x
	default:
		return nil, decodeError("composite", "", 0, "not a described value", nil)
	}
	code, _, err := PeekDescriptor(b)
	if err != nil {
		return nil, err
	}
	c := newComposite(code)
	if c == nil {
		return nil, unknownBody("composite", b)
	}
	if _, err := c.Decode(b); err != nil {
		return nil, err
	}
	return c, nil
}

// Performative is one of the 9 AMQP frame bodies (provides="frame"). AMQP 1.0 §2.7.
type Performative interface {
	Composite
	isPerformative()
}

// SASLFrame is one of the 5 SASL frame bodies (provides="sasl-frame"). AMQP 1.0 §5.3.3.
type SASLFrame interface {
	Composite
	isSASLFrame()
}

// DeliveryState is the delivery-state archetype: Received, Accepted, Rejected, Released, Modified,
// Declared, TransactionalState, or an *Extension for other described types. AMQP 1.0 §3.4.
type DeliveryState interface {
	Encode(b []byte) ([]byte, error)
	isDeliveryState()
}

// Outcome is the outcome archetype: Accepted, Rejected, Released, Modified, Declared, or an
// *Extension. AMQP 1.0 §3.4, §4.5.5.
type Outcome interface {
	DeliveryState
	isOutcome()
}

// LinkTarget is what attach.target holds (requires="target"): *Target, or *Coordinator for a
// transaction controller link. AMQP 1.0 §3.5.4, §4.5.1.
type LinkTarget interface {
	Composite
	isLinkTarget()
}

// LifetimePolicy is the lifetime-policy archetype of dynamic-node-properties. AMQP 1.0 §3.5.10–§3.5.13.
type LifetimePolicy interface {
	Composite
	isLifetimePolicy()
}

// Extension is a described value of a type this package does not model, where the spec allows
// extension types (delivery-state and outcome fields). It keeps the original bytes (Raw) and
// re-encodes them unchanged.
type Extension struct {
	encoding.Described
}

// Encode appends the value: Raw verbatim when set, else Descriptor and Value.
func (x *Extension) Encode(b []byte) ([]byte, error) { return encoding.AppendValue(b, x.Described) }

func (*Extension) isDeliveryState() {}
func (*Extension) isOutcome()       {}

// UnsettledDelivery is one entry of attach.unsettled: a delivery-tag and its delivery state
// (nil when the peer sent null). AMQP 1.0 §2.7.3.
type UnsettledDelivery struct {
	Tag   []byte
	State DeliveryState
}

// Unsettled is the unsettled map of attach in wire order.
type Unsettled []UnsettledDelivery

// Filter is one entry of a filter-set: a name and a described filter (nil for null, which a
// receiver's reply may use). Decoded filters keep their original bytes in Value.Raw and re-encode
// byte for byte. AMQP 1.0 §3.5.8.
type Filter struct {
	Key   Symbol
	Value *encoding.Described
}

// FilterSet is source.filter in wire order. AMQP 1.0 §3.5.8.
type FilterSet []Filter

// Get returns the filter named key.
func (fs FilterSet) Get(key Symbol) (*encoding.Described, bool) {
	for _, f := range fs {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// MaxDeliveryTagSize is the largest delivery-tag: "This field MUST be at most 32 octets long" (a
// binary of up to 32 bytes). AMQP 1.0 §2.8.7.
const MaxDeliveryTagSize = 32

// PeekDescriptor returns the numeric descriptor of the described value at the start of b, mapping
// a known symbolic descriptor to its code. Unknown symbolic descriptors give ok=false with no error.
func PeekDescriptor(b []byte) (code uint64, ok bool, err error) {
	r := encoding.NewReader(b)
	d, err := r.ReadDescriptor()
	if err != nil {
		return 0, false, decodeError("frame", "descriptor", r.Offset(), "expected a described type", err)
	}
	if d.Symbolic() {
		code, ok = descriptorCode(string(d.Name))
		return code, ok, nil
	}
	return d.Code, true, nil
}

// openComposite reads a composite's descriptor, checks it is the wanted one (numeric or symbolic,
// AMQP 1.0 Part 1 §1.5) and enters its list.
func openComposite(r *encoding.Reader, code uint64, name, typ string) (listReader, error) {
	start := r.Offset()
	d, err := r.ReadDescriptor()
	if err != nil {
		return listReader{}, wrapDecode(typ, "", start, err)
	}
	if !d.Is(code, name) {
		return listReader{}, decodeError(typ, "", start, "descriptor "+descriptorString(d)+" is not "+name, nil)
	}
	l, err := r.ReadList()
	if err != nil {
		return listReader{}, wrapDecode(typ, "", r.Offset(), err)
	}
	return listReader{r: l, typ: typ}, nil
}

func descriptorString(d encoding.Descriptor) string {
	if d.Symbolic() {
		return strconv.Quote(string(d.Name))
	}
	return "0x" + strconv.FormatUint(d.Code, 16)
}

// wrapDecode turns an error from amqp/encoding (or a nested composite) into a *DecodeError of typ,
// prefixing field to a nested field name: attach → source → address gives attach, "source.address".
func wrapDecode(typ, field string, off int, err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		e := *de
		e.Type = typ
		switch {
		case field == "":
		case e.Field == "":
			e.Field = field
		default:
			e.Field = field + "." + e.Field
		}
		return &e
	}
	var ee *encoding.DecodeError
	if errors.As(err, &ee) {
		return decodeError(typ, field, ee.Offset, ee.Msg, err)
	}
	return decodeError(typ, field, off, err.Error(), err)
}

// listReader reads the fields of one composite in order; each get method returns the value and
// whether it was present (not omitted, not null).
type listReader struct {
	r   encoding.Reader
	typ string
}

func (l *listReader) fail(field string, err error) error {
	return wrapDecode(l.typ, field, l.r.Offset(), err)
}

func (l *listReader) invalid(field, msg string) error {
	return decodeError(l.typ, field, l.r.Offset(), msg, nil)
}

// missing reports a mandatory field that was omitted or null. AMQP 1.0 Part 1 §1.4.
func (l *listReader) missing(field string) error {
	return decodeError(l.typ, field, l.r.Offset(), "mandatory field is absent", nil)
}

// next reports whether the next field is present; an omitted or null field is absent.
func (l *listReader) next(field string) (bool, error) {
	p, err := l.r.NextField()
	if err != nil {
		return false, l.fail(field, err)
	}
	return p == encoding.Present, nil
}

func (l *listReader) getBool(field string) (bool, bool, error) {
	if ok, err := l.next(field); !ok {
		return false, false, err
	}
	v, err := l.r.ReadBool()
	if err != nil {
		return false, false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getUint8(field string) (uint8, bool, error) {
	if ok, err := l.next(field); !ok {
		return 0, false, err
	}
	v, err := l.r.ReadUbyte()
	if err != nil {
		return 0, false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getUint16(field string) (uint16, bool, error) {
	if ok, err := l.next(field); !ok {
		return 0, false, err
	}
	v, err := l.r.ReadUshort()
	if err != nil {
		return 0, false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getUint32(field string) (uint32, bool, error) {
	if ok, err := l.next(field); !ok {
		return 0, false, err
	}
	v, err := l.r.ReadUint()
	if err != nil {
		return 0, false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getUint64(field string) (uint64, bool, error) {
	if ok, err := l.next(field); !ok {
		return 0, false, err
	}
	v, err := l.r.ReadUlong()
	if err != nil {
		return 0, false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getString(field string) (string, bool, error) {
	if ok, err := l.next(field); !ok {
		return "", false, err
	}
	v, err := l.r.ReadString()
	if err != nil {
		return "", false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getSymbol(field string) (Symbol, bool, error) {
	if ok, err := l.next(field); !ok {
		return "", false, err
	}
	v, err := l.r.ReadSymbol()
	if err != nil {
		return "", false, l.fail(field, err)
	}
	return v, true, nil
}

// getSymbols reads a multiple="true" symbol field: one symbol or an array of them; null and an
// empty array both mean absent. AMQP 1.0 Part 1 §1.4.
//
// A list of symbols is accepted too: Proton Python (0.37) sends open.offered-capabilities given as
// a Python list that way (recorded in testdata/proton/rich.c2s).
func (l *listReader) getSymbols(field string) ([]Symbol, bool, error) {
	var e encoding.Reader
	var err error
	switch c, _ := l.r.PeekCode(); c {
	case encoding.CodeList0, encoding.CodeList8, encoding.CodeList32:
		e, err = l.r.ReadList()
	default:
		e, err = l.r.ReadMultiple()
	}
	if err != nil {
		return nil, false, l.fail(field, err)
	}
	if e.Len() == 0 {
		return nil, false, nil
	}
	out := make([]Symbol, 0, e.Len())
	for e.More() {
		s, err := e.ReadSymbol()
		if err != nil {
			return nil, false, l.fail(field, err)
		}
		out = append(out, s)
	}
	return out, true, nil
}

// getBinary returns the bytes aliasing the input.
func (l *listReader) getBinary(field string) ([]byte, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	v, err := l.r.ReadBinary()
	if err != nil {
		return nil, false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getDeliveryTag(field string) ([]byte, bool, error) {
	v, ok, err := l.getBinary(field)
	if ok && len(v) > MaxDeliveryTagSize {
		// AMQP 1.0 §2.8.7: a delivery-tag is at most 32 octets.
		return nil, false, l.invalid(field, "delivery-tag of "+strconv.Itoa(len(v))+" bytes exceeds 32")
	}
	return v, ok, err
}

func (l *listReader) getTimestamp(field string) (Timestamp, bool, error) {
	if ok, err := l.next(field); !ok {
		return 0, false, err
	}
	v, err := l.r.ReadTimestamp()
	if err != nil {
		return 0, false, l.fail(field, err)
	}
	return v, true, nil
}

func (l *listReader) getFields(field string) (Fields, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	if c, _ := l.r.PeekCode(); c != encoding.CodeMap8 && c != encoding.CodeMap32 {
		return nil, false, l.invalid(field, "expected a map, got "+c.String())
	}
	v, err := l.r.ReadValue()
	if err != nil {
		return nil, false, l.fail(field, err)
	}
	m, _ := v.(encoding.Map)
	if m == nil {
		m = encoding.Map{}
	}
	return m, true, nil
}

// getUnsettled reads attach.unsettled: delivery-tag → delivery-state.
func (l *listReader) getUnsettled(field string) (Unsettled, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	m, err := l.r.ReadMap()
	if err != nil {
		return nil, false, l.fail(field, err)
	}
	out := make(Unsettled, 0, m.Len()/2)
	for m.More() {
		tag, err := m.ReadBinary()
		if err != nil {
			return nil, false, l.fail(field, err)
		}
		var st DeliveryState
		p, err := m.NextField()
		if err != nil {
			return nil, false, l.fail(field, err)
		}
		if p == encoding.Present {
			if st, err = readDeliveryState(&m, l.typ, field, false); err != nil {
				return nil, false, err
			}
		}
		out = append(out, UnsettledDelivery{Tag: tag, State: st})
	}
	return out, true, nil
}

// getFilterSet reads source.filter: symbol keys, described (or null) values kept byte-exact.
// AMQP 1.0 §3.5.8.
func (l *listReader) getFilterSet(field string) (FilterSet, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	m, err := l.r.ReadMap()
	if err != nil {
		return nil, false, l.fail(field, err)
	}
	out := make(FilterSet, 0, m.Len()/2)
	for m.More() {
		k, err := m.ReadSymbol()
		if err != nil {
			return nil, false, l.fail(field, err)
		}
		f := Filter{Key: k}
		p, err := m.NextField()
		if err != nil {
			return nil, false, l.fail(field, err)
		}
		if p == encoding.Present {
			if c, _ := m.PeekCode(); c != encoding.CodeDescribed {
				return nil, false, l.invalid(field+"."+string(k), "filter value must be a described type, got "+c.String())
			}
			v, err := m.ReadValue()
			if err != nil {
				return nil, false, l.fail(field, err)
			}
			d := v.(encoding.Described)
			f.Value = &d
		}
		out = append(out, f)
	}
	return out, true, nil
}

func (l *listReader) getRole(field string) (Role, bool, error) {
	v, ok, err := l.getBool(field)
	return Role(v), ok, err
}

func (l *listReader) getSenderSettleMode(field string) (SenderSettleMode, bool, error) {
	v, ok, err := l.getUint8(field)
	if ok && v > uint8(SenderSettleModeMixed) { // AMQP 1.0 §2.8.2: unsettled, settled, mixed
		return 0, false, l.invalid(field, "sender-settle-mode "+strconv.Itoa(int(v))+" is not 0, 1 or 2")
	}
	return SenderSettleMode(v), ok, err
}

func (l *listReader) getReceiverSettleMode(field string) (ReceiverSettleMode, bool, error) {
	v, ok, err := l.getUint8(field)
	if ok && v > uint8(ReceiverSettleModeSecond) { // AMQP 1.0 §2.8.3: first, second
		return 0, false, l.invalid(field, "receiver-settle-mode "+strconv.Itoa(int(v))+" is not 0 or 1")
	}
	return ReceiverSettleMode(v), ok, err
}

// getSASLCode does not restrict the value: clients must cope with any outcome code.
func (l *listReader) getSASLCode(field string) (SASLCode, bool, error) {
	v, ok, err := l.getUint8(field)
	return SASLCode(v), ok, err
}

func (l *listReader) getTerminusDurability(field string) (TerminusDurability, bool, error) {
	v, ok, err := l.getUint32(field)
	if ok && v > uint32(TerminusDurabilityUnsettledState) { // AMQP 1.0 §3.5.5
		return 0, false, l.invalid(field, "terminus-durability "+strconv.FormatUint(uint64(v), 10)+" is not 0, 1 or 2")
	}
	return TerminusDurability(v), ok, err
}

func (l *listReader) getTerminusExpiryPolicy(field string) (TerminusExpiryPolicy, bool, error) {
	v, ok, err := l.getSymbol(field)
	return TerminusExpiryPolicy(v), ok, err
}

func (l *listReader) getError(field string) (*Error, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	e := new(Error)
	if err := e.decodeFrom(&l.r); err != nil {
		return nil, false, wrapDecode(l.typ, field, l.r.Offset(), err)
	}
	return e, true, nil
}

func (l *listReader) getSource(field string) (*Source, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	s := new(Source)
	if err := s.decodeFrom(&l.r); err != nil {
		return nil, false, wrapDecode(l.typ, field, l.r.Offset(), err)
	}
	return s, true, nil
}

// getTarget reads attach.target: a target, or a coordinator for transaction controller links.
func (l *listReader) getTarget(field string) (LinkTarget, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	code, err := l.peekDescriptor(field)
	if err != nil {
		return nil, false, err
	}
	// Concrete calls, not an interface: a dynamic call would make the reader escape to the heap.
	var t LinkTarget
	switch code {
	case DescriptorTarget:
		x := new(Target)
		err, t = x.decodeFrom(&l.r), x
	case DescriptorCoordinator:
		x := new(Coordinator)
		err, t = x.decodeFrom(&l.r), x
	default:
		return nil, false, l.invalid(field, "descriptor 0x"+strconv.FormatUint(code, 16)+" is not a target")
	}
	if err != nil {
		return nil, false, wrapDecode(l.typ, field, l.r.Offset(), err)
	}
	return t, true, nil
}

// peekDescriptor returns the numeric descriptor of the next (described) value without consuming it;
// an unknown symbolic descriptor gives code 0, which no composite uses.
func (l *listReader) peekDescriptor(field string) (uint64, error) {
	peek := l.r
	d, err := peek.ReadDescriptor()
	if err != nil {
		return 0, l.fail(field, err)
	}
	if d.Symbolic() {
		code, _ := descriptorCode(string(d.Name))
		return code, nil
	}
	return d.Code, nil
}

func (l *listReader) getDeliveryState(field string) (DeliveryState, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	s, err := readDeliveryState(&l.r, l.typ, field, false)
	return s, err == nil, err
}

func (l *listReader) getOutcome(field string) (Outcome, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	s, err := readDeliveryState(&l.r, l.typ, field, true)
	if err != nil {
		return nil, false, err
	}
	return s.(Outcome), true, nil
}

// readDeliveryState decodes a delivery state (or only an outcome) by its descriptor. Described types
// outside the spec's set become an *Extension, since delivery-state and outcome are open archetypes.
// Zero-field states (accepted, released) do not allocate. AMQP 1.0 §3.4, §4.5.
func readDeliveryState(r *encoding.Reader, typ, field string, outcomeOnly bool) (DeliveryState, error) {
	peek := *r
	start := r.Offset()
	d, err := peek.ReadDescriptor()
	if err != nil {
		return nil, wrapDecode(typ, field, start, err)
	}
	code := d.Code
	known := true
	if d.Symbolic() {
		code, known = descriptorCode(string(d.Name))
	}
	// Concrete calls, not an interface: a dynamic call would make the reader escape to the heap.
	// Accepted and Released are zero-size: new does not allocate them.
	var s DeliveryState
	switch {
	case !known:
	case code == DescriptorAccepted:
		x := new(Accepted)
		err, s = x.decodeFrom(r), x
	case code == DescriptorRejected:
		x := new(Rejected)
		err, s = x.decodeFrom(r), x
	case code == DescriptorReleased:
		x := new(Released)
		err, s = x.decodeFrom(r), x
	case code == DescriptorModified:
		x := new(Modified)
		err, s = x.decodeFrom(r), x
	case code == DescriptorDeclared:
		x := new(Declared)
		err, s = x.decodeFrom(r), x
	case code == DescriptorReceived && !outcomeOnly:
		x := new(Received)
		err, s = x.decodeFrom(r), x
	case code == DescriptorTransactionalState && !outcomeOnly:
		x := new(TransactionalState)
		err, s = x.decodeFrom(r), x
	case descriptorName(code) != "":
		// A spec type that is not a delivery state (or not an outcome) here.
		return nil, decodeError(typ, field, start, descriptorName(code)+" is not a valid "+field, nil)
	}
	if err != nil {
		return nil, wrapDecode(typ, field, start, err)
	}
	if s == nil {
		v, err := r.ReadValue()
		if err != nil {
			return nil, wrapDecode(typ, field, start, err)
		}
		return &Extension{Described: v.(encoding.Described)}, nil
	}
	return s, nil
}

// getMessageID reads a message-id: ulong, uuid, binary or string (AMQP 1.0 §3.2.11–§3.2.14); the
// Go value keeps the type (uint64, encoding.UUID, []byte, string).
func (l *listReader) getMessageID(field string) (any, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	c, _ := l.r.PeekCode()
	switch c {
	case encoding.CodeUlong0, encoding.CodeSmallUlong, encoding.CodeUlong, encoding.CodeUUID,
		encoding.CodeVbin8, encoding.CodeVbin32, encoding.CodeStr8, encoding.CodeStr32:
	default:
		return nil, false, l.invalid(field, "message-id must be ulong, uuid, binary or string, got "+c.String())
	}
	v, err := l.r.ReadValue()
	if err != nil {
		return nil, false, l.fail(field, err)
	}
	return v, true, nil
}

// getAddress reads an address: address-string is the only type the spec defines (AMQP 1.0
// §3.2.15); a symbol is accepted too, as some peers send one.
func (l *listReader) getAddress(field string) (string, bool, error) {
	if ok, err := l.next(field); !ok {
		return "", false, err
	}
	if c, _ := l.r.PeekCode(); c == encoding.CodeSym8 || c == encoding.CodeSym32 {
		v, err := l.r.ReadSymbol()
		if err != nil {
			return "", false, l.fail(field, err)
		}
		return string(v), true, nil
	}
	v, err := l.r.ReadString()
	if err != nil {
		return "", false, l.fail(field, err)
	}
	return v, true, nil
}

// getValue reads a field of any type in its generic form.
func (l *listReader) getValue(field string) (any, bool, error) {
	if ok, err := l.next(field); !ok {
		return nil, false, err
	}
	v, err := l.r.ReadValue()
	if err != nil {
		return nil, false, l.fail(field, err)
	}
	return v, true, nil
}

// listWriter appends the fields of one composite; encoding.Compound drops trailing nulls.
type listWriter struct {
	b   []byte
	l   encoding.Compound
	err error
}

func beginComposite(b []byte, code uint64) listWriter {
	b = encoding.AppendDescriptor(b, code)
	b, l := encoding.BeginList(b)
	return listWriter{b: b, l: l}
}

func (w *listWriter) end() ([]byte, error) {
	if w.err != nil {
		return w.b, w.err
	}
	return w.l.EndTrimNulls(w.b), nil
}

func (w *listWriter) elem(err error) {
	w.l.Elem(w.b)
	if err != nil && w.err == nil {
		w.err = err
	}
}

func (w *listWriter) putNull()                 { w.b = encoding.AppendNull(w.b); w.elem(nil) }
func (w *listWriter) putBool(v bool)           { w.b = encoding.AppendBool(w.b, v); w.elem(nil) }
func (w *listWriter) putUint8(v uint8)         { w.b = encoding.AppendUbyte(w.b, v); w.elem(nil) }
func (w *listWriter) putUint16(v uint16)       { w.b = encoding.AppendUshort(w.b, v); w.elem(nil) }
func (w *listWriter) putUint32(v uint32)       { w.b = encoding.AppendUint(w.b, v); w.elem(nil) }
func (w *listWriter) putUint64(v uint64)       { w.b = encoding.AppendUlong(w.b, v); w.elem(nil) }
func (w *listWriter) putString(v string)       { w.b = encoding.AppendString(w.b, v); w.elem(nil) }
func (w *listWriter) putSymbol(v Symbol)       { w.b = encoding.AppendSymbol(w.b, v); w.elem(nil) }
func (w *listWriter) putBinary(v []byte)       { w.b = encoding.AppendBinary(w.b, v); w.elem(nil) }
func (w *listWriter) putTimestamp(v Timestamp) { w.b = encoding.AppendTimestamp(w.b, v); w.elem(nil) }
func (w *listWriter) putAddress(v string)      { w.b = encoding.AppendString(w.b, v); w.elem(nil) }
func (w *listWriter) putRole(v Role)           { w.putBool(bool(v)) }
func (w *listWriter) putSASLCode(v SASLCode)   { w.putUint8(uint8(v)) }

func (w *listWriter) putSenderSettleMode(v SenderSettleMode)     { w.putUint8(uint8(v)) }
func (w *listWriter) putReceiverSettleMode(v ReceiverSettleMode) { w.putUint8(uint8(v)) }
func (w *listWriter) putTerminusDurability(v TerminusDurability) { w.putUint32(uint32(v)) }

func (w *listWriter) putTerminusExpiryPolicy(v TerminusExpiryPolicy) { w.putSymbol(Symbol(v)) }

// putSymbols writes a multiple="true" symbol field as an array (legal for any count; AMQP 1.0 Part 1 §1.4).
func (w *listWriter) putSymbols(v []Symbol) {
	w.b = encoding.AppendSymbolArray(w.b, v)
	w.elem(nil)
}

// putRequiredSymbols writes a mandatory multiple field, which cannot be empty: an empty array
// means the same as null (AMQP 1.0 Part 1 §1.4).
func (w *listWriter) putRequiredSymbols(v []Symbol, field string) {
	var err error
	if len(v) == 0 {
		err = &encoding.EncodeError{Msg: "mandatory field " + field + " is empty"}
	}
	w.b = encoding.AppendSymbolArray(w.b, v)
	w.elem(err)
}

func (w *listWriter) putDeliveryTag(v []byte) {
	var err error
	if len(v) > MaxDeliveryTagSize { // AMQP 1.0 §2.8.7
		err = &encoding.EncodeError{Msg: "delivery-tag of " + strconv.Itoa(len(v)) + " bytes exceeds 32"}
	}
	w.b = encoding.AppendBinary(w.b, v)
	w.elem(err)
}

func (w *listWriter) putValue(v any) {
	var err error
	w.b, err = encoding.AppendValue(w.b, v)
	w.elem(err)
}

func (w *listWriter) putFields(v Fields) {
	var err error
	w.b, err = appendMap(w.b, v)
	w.elem(err)
}

func (w *listWriter) putMessageID(v any) { w.putValue(v) }
func (w *listWriter) putComposite(c interface{ Encode([]byte) ([]byte, error) }) {
	var err error
	w.b, err = c.Encode(w.b)
	w.elem(err)
}

func (w *listWriter) putError(v *Error)                { w.putComposite(v) }
func (w *listWriter) putSource(v *Source)              { w.putComposite(v) }
func (w *listWriter) putTarget(v LinkTarget)           { w.putComposite(v) }
func (w *listWriter) putDeliveryState(v DeliveryState) { w.putComposite(v) }
func (w *listWriter) putOutcome(v Outcome)             { w.putComposite(v) }

func (w *listWriter) putUnsettled(v Unsettled) {
	b, m := encoding.BeginMap(w.b)
	var err error
	for _, u := range v {
		b = encoding.AppendBinary(b, u.Tag)
		if u.State == nil {
			b = encoding.AppendNull(b)
		} else if b, err = u.State.Encode(b); err != nil {
			break
		}
		m.Entry(b)
	}
	w.b = m.End(b)
	w.elem(err)
}

func (w *listWriter) putFilterSet(v FilterSet) {
	b, m := encoding.BeginMap(w.b)
	var err error
	for _, f := range v {
		b = encoding.AppendSymbol(b, f.Key)
		if f.Value == nil {
			b = encoding.AppendNull(b)
		} else if b, err = encoding.AppendValue(b, *f.Value); err != nil {
			break
		}
		m.Entry(b)
	}
	w.b = m.End(b)
	w.elem(err)
}
