package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// MQTT control packet types (MQTT 5.0 §2.1.2, 3.1.1 §2.2.1).
const (
	typeConnect     = 1
	typeConnack     = 2
	typePublish     = 3
	typePuback      = 4
	typePubrec      = 5
	typePubrel      = 6
	typePubcomp     = 7
	typeSubscribe   = 8
	typeSuback      = 9
	typeUnsubscribe = 10
	typeUnsuback    = 11
	typePingreq     = 12
	typePingresp    = 13
	typeDisconnect  = 14
	typeAuth        = 15
)

var typeNames = [16]string{
	"packet type 0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// maxRemaining is the largest Remaining Length four Variable Byte Integer
// bytes can carry (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3).
const maxRemaining = 268435455

// maxHeader is the longest fixed header: the type byte and four length bytes.
const maxHeader = 5

// connectInfo is what the Reader keeps from the CONNECT it validated, and what
// Conn needs to answer a bad CONNECT in the client's own protocol version.
type connectInfo struct {
	version    byte   // protocol level, set as soon as name and level are recognised
	badLevel   bool   // name recognised, level unsupported: 3.1.1 wants CONNACK 0x01 [MQTT-3.1.2-2]
	maxPacket  uint32 // the client's Maximum Packet Size, 0 when absent
	authMethod bool   // the CONNECT carried an Authentication Method
}

// Validate checks one complete MQTT control packet, fixed header included, as
// received by a server from a client speaking protocol version 3 (MQTT 3.1),
// 4 (3.1.1) or 5. Version 0 means no CONNECT has been accepted yet, and then
// only a CONNECT is valid. It returns nil or an *Error carrying the MQTT 5
// reason code to answer with. Validate does not allocate when it accepts.
func Validate(version byte, pkt []byte) error {
	var ci connectInfo
	if e := validate(version, pkt, &ci); e != nil {
		return e
	}
	return nil
}

func validate(version byte, pkt []byte, ci *connectInfo) *Error {
	if len(pkt) == 0 {
		return malformed("empty packet")
	}
	if e := checkFirstByte(version, pkt[0]); e != nil {
		return e
	}
	name := typeNames[pkt[0]>>4]
	rem, n, st := decodeVBI(pkt[1:])
	switch st {
	case vbiShort:
		return malformed("%s remaining length truncated", name)
	case vbiTooLong:
		return malformed("%s remaining length longer than 4 bytes", name) // MQTT 5.0 §1.5.5
	}
	if int(rem) != len(pkt)-1-n {
		return malformed("%s remaining length %d does not match the %d bytes that follow it", name, rem, len(pkt)-1-n)
	}
	return validateBody(version, pkt[0], pkt[1+n:], ci)
}

// checkFirstByte checks the packet type and its flag bits against the
// connection state. The Reader calls it as soon as the first byte arrives, so
// garbage is refused before its length is even read.
func checkFirstByte(version, b byte) *Error {
	switch version {
	case 0, 3, 4, 5:
	default:
		return reasonErr(ReasonUnsupportedProtocolVersion, "protocol version %d is not 3, 4 or 5", version)
	}
	typ, flags := b>>4, b&0x0F
	name := typeNames[typ]
	switch {
	case typ == 0:
		return malformed("packet type 0 is reserved") // MQTT 5.0 §2.1.2: Forbidden
	case typ == typeConnack || typ == typeSuback || typ == typeUnsuback || typ == typePingresp:
		return protocolErr("%s is sent by servers only", name)
	case version == 0 && typ != typeConnect:
		return protocolErr("%s before CONNECT: the first packet must be CONNECT [MQTT-3.1.0-1]", name)
	case version != 0 && typ == typeConnect:
		return protocolErr("second CONNECT on the connection [MQTT-3.1.0-2]")
	case typ == typeAuth && version != 5:
		return malformed("AUTH does not exist before MQTT 5 (packet type 15 is reserved)") // 3.1.1 §2.2.1
	}
	switch typ {
	case typePublish:
		qos := flags >> 1 & 3
		if qos == 3 {
			return malformed("PUBLISH QoS 3 [MQTT-3.3.1-4]")
		}
		if qos == 0 && flags&0x08 != 0 {
			return protocolErr("PUBLISH DUP flag set on QoS 0 [MQTT-3.3.1-2]")
		}
	case typePubrel, typeSubscribe, typeUnsubscribe:
		// MQTT 3.1 allowed DUP and QoS 1 here; 3.1.1 and 5 fix the bits to 0010,
		// and mochi refuses anything else for every version anyway.
		if flags != 0x02 {
			return malformed("%s fixed header flags 0x%X, must be 0x2 %s", name, flags, flagRule(typ))
		}
	default:
		if flags != 0 {
			return malformed("%s fixed header flags 0x%X, must be 0x0 [MQTT-2.1.3-1] [MQTT-2.2.2-1]", name, flags)
		}
	}
	return nil
}

func flagRule(typ byte) string {
	switch typ {
	case typePubrel:
		return "[MQTT-3.6.1-1]"
	case typeSubscribe:
		return "[MQTT-3.8.1-1]"
	}
	return "[MQTT-3.10.1-1]"
}

// Variable Byte Integer decoding results.
const (
	vbiOK = iota
	vbiShort
	vbiTooLong
)

// decodeVBI decodes a Variable Byte Integer of at most four bytes (MQTT 5.0
// §1.5.5). A non-minimal encoding is accepted: it is bounded all the same, and
// mochi decodes it to the same value.
func decodeVBI(b []byte) (v uint32, n int, status int) {
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, vbiShort
		}
		v |= uint32(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, vbiOK
		}
	}
	return 0, 0, vbiTooLong
}

func validateBody(v, first byte, body []byte, ci *connectInfo) *Error {
	typ := first >> 4
	switch typ {
	case typeConnect:
		return validateConnect(body, ci)
	case typePublish:
		return validatePublish(v, first&0x0F, body)
	case typePuback, typePubrec, typePubrel, typePubcomp:
		return validateAck(v, typ, body)
	case typeSubscribe:
		return validateSubscribe(v, body)
	case typeUnsubscribe:
		return validateUnsubscribe(v, body)
	case typePingreq:
		if len(body) != 0 {
			return malformed("PINGREQ remaining length %d, must be 0", len(body)) // MQTT 5.0 §3.12
		}
		return nil
	case typeDisconnect:
		return validateDisconnect(v, body)
	case typeAuth:
		return validateAuth(body)
	}
	// checkFirstByte refused every other type already.
	return protocolErr("%s is not valid from a client", typeNames[typ])
}

// rule picks the rule number of the version at hand where MQTT 5 renumbered.
func rule(v byte, r5, r311 string) string {
	if v == 5 {
		return r5
	}
	return r311
}

func validateConnect(body []byte, ci *connectInfo) *Error {
	c := cursor{b: body}
	name, ok := c.lenPrefixed()
	if !ok {
		return malformed("CONNECT protocol name truncated")
	}
	level, ok := c.u8()
	if !ok {
		return malformed("CONNECT protocol level missing")
	}
	isMQTT, isMQIsdp := string(name) == "MQTT", string(name) == "MQIsdp"
	switch {
	case isMQTT && (level == 4 || level == 5), isMQIsdp && level == 3:
		ci.version = level
	case isMQTT || isMQIsdp:
		ci.badLevel = true
		return reasonErr(ReasonUnsupportedProtocolVersion, "CONNECT protocol level %d is not supported [MQTT-3.1.2-2]", level)
	default:
		return reasonErr(ReasonUnsupportedProtocolVersion, "CONNECT protocol name is neither \"MQTT\" nor \"MQIsdp\" [MQTT-3.1.2-1]")
	}
	v := level

	flags, ok := c.u8()
	if !ok {
		return malformed("CONNECT flags missing")
	}
	will := flags&0x04 != 0
	willQoS := flags >> 3 & 3
	willRetain := flags&0x20 != 0
	hasPassword := flags&0x40 != 0
	hasUsername := flags&0x80 != 0
	if flags&0x01 != 0 {
		return malformed("CONNECT reserved flag is set [MQTT-3.1.2-3]")
	}
	if !will && willQoS != 0 {
		return malformed("CONNECT Will QoS %d without the Will Flag %s", willQoS, rule(v, "[MQTT-3.1.2-11]", "[MQTT-3.1.2-13]"))
	}
	if !will && willRetain {
		return malformed("CONNECT Will Retain without the Will Flag %s", rule(v, "[MQTT-3.1.2-13]", "[MQTT-3.1.2-15]"))
	}
	if willQoS == 3 {
		return malformed("CONNECT Will QoS 3 %s", rule(v, "[MQTT-3.1.2-12]", "[MQTT-3.1.2-14]"))
	}
	if v < 5 && hasPassword && !hasUsername {
		// MQTT 5 dropped this rule; 3.1 and 3.1.1 have it.
		return malformed("CONNECT Password Flag without User Name Flag [MQTT-3.1.2-22]")
	}
	if _, ok := c.u16(); !ok {
		return malformed("CONNECT keep alive truncated")
	}
	if v == 5 {
		pi, e := properties(&c, kindConnect, "CONNECT")
		if e != nil {
			return e
		}
		if pi.has(propAuthData) && !pi.has(propAuthMethod) {
			return protocolErr("CONNECT Authentication Data without Authentication Method") // MQTT 5.0 §3.1.2.11.10
		}
		ci.maxPacket = pi.maxPacket
		ci.authMethod = pi.has(propAuthMethod)
	}

	// Payload: Client Identifier, Will Properties, Will Topic, Will Payload,
	// User Name, Password, in this order and nothing after [MQTT-3.1.3-1].
	id, ok := c.lenPrefixed()
	if !ok {
		return malformed("CONNECT client identifier truncated [MQTT-3.1.3-3]")
	}
	if !validString(id) {
		return malformed("CONNECT client identifier is not valid UTF-8 or contains U+0000 [MQTT-3.1.3-4] [MQTT-1.5.4-1] [MQTT-1.5.4-2]")
	}
	if will {
		if v == 5 {
			if _, e := properties(&c, kindWill, "CONNECT will"); e != nil {
				return e
			}
		}
		topic, ok := c.lenPrefixed()
		if !ok {
			return malformed("CONNECT will topic truncated [MQTT-3.1.2-9]")
		}
		if e := checkTopicName(topic, "CONNECT will topic", rule(v, "[MQTT-3.1.3-11]", "[MQTT-3.1.3-10]")); e != nil {
			return e
		}
		if _, ok := c.lenPrefixed(); !ok {
			return malformed("CONNECT will payload truncated [MQTT-3.1.2-9]")
		}
	}
	if hasUsername {
		u, ok := c.lenPrefixed()
		if !ok {
			return malformed("CONNECT user name truncated %s", rule(v, "[MQTT-3.1.2-17]", "[MQTT-3.1.2-19]"))
		}
		if !validString(u) {
			return malformed("CONNECT user name is not valid UTF-8 or contains U+0000 %s", rule(v, "[MQTT-3.1.3-12]", "[MQTT-3.1.3-11]"))
		}
	}
	if hasPassword {
		if _, ok := c.lenPrefixed(); !ok {
			return malformed("CONNECT password truncated %s", rule(v, "[MQTT-3.1.2-19]", "[MQTT-3.1.2-21]"))
		}
	}
	if c.left() != 0 {
		return malformed("CONNECT has %d bytes after its last payload field [MQTT-3.1.3-1]", c.left())
	}
	return nil
}

func validatePublish(v, flags byte, body []byte) *Error {
	c := cursor{b: body}
	topic, ok := c.lenPrefixed()
	if !ok {
		return malformed("PUBLISH topic name truncated [MQTT-3.3.2-1]")
	}
	valid, wild := scanString(topic)
	if !valid {
		return malformed("PUBLISH topic name is not valid UTF-8 or contains U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]")
	}
	if wild {
		return reasonErr(ReasonTopicNameInvalid, "PUBLISH topic name contains a wildcard character [MQTT-3.3.2-2]")
	}
	if qos := flags >> 1 & 3; qos > 0 {
		id, ok := c.u16()
		if !ok {
			return malformed("PUBLISH packet identifier truncated")
		}
		if id == 0 {
			return protocolErr("PUBLISH QoS %d with packet identifier 0 %s", qos, rule(v, "[MQTT-2.2.1-3]", "[MQTT-2.3.1-1]"))
		}
	}
	alias := false
	if v == 5 {
		pi, e := properties(&c, kindPublish, "PUBLISH")
		if e != nil {
			return e
		}
		alias = pi.has(propTopicAlias)
	}
	if len(topic) == 0 && !alias {
		if v == 5 {
			return protocolErr("PUBLISH has an empty topic name and no Topic Alias") // MQTT 5.0 §3.3.2.1
		}
		return reasonErr(ReasonTopicNameInvalid, "PUBLISH topic name is empty [MQTT-4.7.3-1]")
	}
	// The rest is the payload: any bytes, any length, including none.
	return nil
}

// validateAck checks PUBACK, PUBREC, PUBREL and PUBCOMP: a packet identifier,
// then in MQTT 5 an optional reason code and optional properties.
func validateAck(v, typ byte, body []byte) *Error {
	name := typeNames[typ]
	if len(body) < 2 {
		return malformed("%s packet identifier truncated", name)
	}
	if binary.BigEndian.Uint16(body) == 0 {
		// It must echo the identifier of a QoS > 0 PUBLISH, which is never 0.
		return protocolErr("%s packet identifier 0 %s", name, rule(v, "[MQTT-2.2.1-5]", "[MQTT-2.3.1-1]"))
	}
	if v < 5 {
		if len(body) != 2 {
			return malformed("%s remaining length %d, must be 2", name, len(body)) // 3.1.1 §3.4.1
		}
		return nil
	}
	if len(body) == 2 {
		return nil // reason code 0x00 and no properties (MQTT 5.0 §3.4.2.1)
	}
	if rc := body[2]; !ackReasonValid(typ, rc) {
		return protocolErr("%s reason code 0x%02X is not one of the %s reason codes %s", name, rc, name, ackRule(typ))
	}
	if len(body) == 3 {
		return nil // no properties (MQTT 5.0 §3.4.2.2.1)
	}
	c := cursor{b: body, off: 3}
	if _, e := properties(&c, kindAck, name); e != nil {
		return e
	}
	if c.left() != 0 {
		return malformed("%s has %d bytes after its properties", name, c.left())
	}
	return nil
}

func ackReasonValid(typ, rc byte) bool {
	switch typ {
	case typePuback, typePubrec:
		switch rc {
		case 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99:
			return true
		}
	case typePubrel, typePubcomp:
		return rc == 0x00 || rc == 0x92
	}
	return false
}

func ackRule(typ byte) string {
	switch typ {
	case typePuback:
		return "[MQTT-3.4.2-1]"
	case typePubrec:
		return "[MQTT-3.5.2-1]"
	case typePubrel:
		return "[MQTT-3.6.2-1]"
	}
	return "[MQTT-3.7.2-1]"
}

func validateSubscribe(v byte, body []byte) *Error {
	c := cursor{b: body}
	id, ok := c.u16()
	if !ok {
		return malformed("SUBSCRIBE packet identifier truncated")
	}
	if id == 0 {
		return protocolErr("SUBSCRIBE packet identifier 0 %s", rule(v, "[MQTT-2.2.1-3]", "[MQTT-2.3.1-1]"))
	}
	if v == 5 {
		if _, e := properties(&c, kindSubscribe, "SUBSCRIBE"); e != nil {
			return e
		}
	}
	if c.left() == 0 {
		return protocolErr("SUBSCRIBE has no topic filter %s", rule(v, "[MQTT-3.8.3-2]", "[MQTT-3.8.3-3]"))
	}
	for i := 1; c.left() > 0; i++ {
		f, ok := c.lenPrefixed()
		if !ok {
			return malformed("SUBSCRIBE topic filter %d truncated [MQTT-3.8.3-1]", i)
		}
		if e := checkFilter(v, f, "SUBSCRIBE", i); e != nil {
			return e
		}
		// mochi 2.7.9 indexes this byte without a bounds check in MQTT 5 and
		// panics when it is missing: 82 06 00 01 00 00 01 74.
		opts, ok := c.u8()
		if !ok {
			return malformed("SUBSCRIBE topic filter %d has no subscription options byte", i)
		}
		if opts&0x03 == 3 {
			return malformed("SUBSCRIBE topic filter %d requests QoS 3 %s", i, rule(v, "[MQTT-3.8.3-5]", "[MQTT-3-8.3-4]"))
		}
		if v < 5 {
			if opts&0xFC != 0 {
				return malformed("SUBSCRIBE topic filter %d: reserved bits set in requested QoS byte 0x%02X [MQTT-3-8.3-4]", i, opts)
			}
			continue
		}
		if opts&0xC0 != 0 {
			return malformed("SUBSCRIBE topic filter %d: reserved bits set in subscription options 0x%02X [MQTT-3.8.3-5]", i, opts)
		}
		if opts>>4&3 == 3 {
			return protocolErr("SUBSCRIBE topic filter %d: Retain Handling 3", i) // MQTT 5.0 §3.8.3.1
		}
		if opts&0x04 != 0 && isShared(f) {
			return protocolErr("SUBSCRIBE topic filter %d: No Local on a shared subscription [MQTT-3.8.3-4]", i)
		}
	}
	return nil
}

func validateUnsubscribe(v byte, body []byte) *Error {
	c := cursor{b: body}
	id, ok := c.u16()
	if !ok {
		return malformed("UNSUBSCRIBE packet identifier truncated")
	}
	if id == 0 {
		return protocolErr("UNSUBSCRIBE packet identifier 0 %s", rule(v, "[MQTT-2.2.1-3]", "[MQTT-2.3.1-1]"))
	}
	if v == 5 {
		if _, e := properties(&c, kindUnsubscribe, "UNSUBSCRIBE"); e != nil {
			return e
		}
	}
	if c.left() == 0 {
		return protocolErr("UNSUBSCRIBE has no topic filter [MQTT-3.10.3-2]")
	}
	for i := 1; c.left() > 0; i++ {
		f, ok := c.lenPrefixed()
		if !ok {
			return malformed("UNSUBSCRIBE topic filter %d truncated [MQTT-3.10.3-1]", i)
		}
		if e := checkFilter(v, f, "UNSUBSCRIBE", i); e != nil {
			return e
		}
	}
	return nil
}

func validateDisconnect(v byte, body []byte) *Error {
	if v < 5 {
		if len(body) != 0 {
			return malformed("DISCONNECT remaining length %d, must be 0", len(body)) // 3.1.1 §3.14
		}
		return nil
	}
	if len(body) == 0 {
		return nil // reason 0x00, no properties (MQTT 5.0 §3.14.2.1)
	}
	if !disconnectReasonValid(body[0]) {
		return protocolErr("DISCONNECT reason code 0x%02X is not a DISCONNECT reason code [MQTT-3.14.2-1]", body[0])
	}
	if len(body) == 1 {
		return nil // no properties (MQTT 5.0 §3.14.2.2.1)
	}
	c := cursor{b: body, off: 1}
	if _, e := properties(&c, kindDisconnect, "DISCONNECT"); e != nil {
		return e
	}
	if c.left() != 0 {
		return malformed("DISCONNECT has %d bytes after its properties", c.left())
	}
	return nil
}

func disconnectReasonValid(rc byte) bool {
	switch rc {
	case 0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90,
		0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2:
		return true
	}
	return false
}

func validateAuth(body []byte) *Error {
	// A Remaining Length of 0 would mean Success with no properties, but an
	// AUTH without Authentication Method is a Protocol Error (MQTT 5.0
	// §3.15.2.2.2), and only the server ever has a reason to send Success.
	if len(body) == 0 {
		return protocolErr("AUTH without Authentication Method")
	}
	if rc := body[0]; rc != 0x00 && rc != 0x18 && rc != 0x19 {
		return protocolErr("AUTH reason code 0x%02X is not 0x00, 0x18 or 0x19 [MQTT-3.15.2-1]", rc)
	}
	if len(body) == 1 {
		return malformed("AUTH property length missing")
	}
	c := cursor{b: body, off: 1}
	pi, e := properties(&c, kindAuth, "AUTH")
	if e != nil {
		return e
	}
	if !pi.has(propAuthMethod) {
		return protocolErr("AUTH without Authentication Method") // MQTT 5.0 §3.15.2.2.2
	}
	if c.left() != 0 {
		return malformed("AUTH has %d bytes after its properties", c.left())
	}
	return nil
}

// cursor reads big-endian fields from a bounded slice; every read checks the
// bound first and reports false instead of running past it.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) left() int { return len(c.b) - c.off }

func (c *cursor) u8() (byte, bool) {
	if c.off >= len(c.b) {
		return 0, false
	}
	c.off++
	return c.b[c.off-1], true
}

func (c *cursor) u16() (uint16, bool) {
	if c.left() < 2 {
		return 0, false
	}
	c.off += 2
	return binary.BigEndian.Uint16(c.b[c.off-2:]), true
}

func (c *cursor) u32() (uint32, bool) {
	if c.left() < 4 {
		return 0, false
	}
	c.off += 4
	return binary.BigEndian.Uint32(c.b[c.off-4:]), true
}

// lenPrefixed reads a Two Byte Integer length and that many bytes: a UTF-8
// Encoded String or Binary Data (MQTT 5.0 §1.5.4, §1.5.6).
func (c *cursor) lenPrefixed() ([]byte, bool) {
	n, ok := c.u16()
	if !ok || c.left() < int(n) {
		return nil, false
	}
	c.off += int(n)
	return c.b[c.off-int(n) : c.off], true
}

func (c *cursor) vbi() (uint32, bool) {
	v, n, st := decodeVBI(c.b[c.off:])
	if st != vbiOK {
		return 0, false
	}
	c.off += n
	return v, true
}

// validString reports whether b is well-formed UTF-8 without U+0000
// [MQTT-1.5.4-1] [MQTT-1.5.4-2]. Go's decoder refuses surrogates and overlong
// forms, as RFC 3629 requires.
func validString(b []byte) bool {
	ok, _ := scanString(b)
	return ok
}

// scanString checks a string in one pass and also reports whether it holds a
// wildcard character, which topic names must not.
func scanString(s []byte) (valid, wild bool) {
	checked := false
	for i, b := range s {
		switch {
		case b == 0:
			return false, wild
		case b == '+' || b == '#':
			wild = true
		case b >= utf8.RuneSelf && !checked:
			if !utf8.Valid(s[i:]) {
				return false, wild
			}
			checked = true
		}
	}
	return true, wild
}
