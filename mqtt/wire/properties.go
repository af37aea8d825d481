package wire

// MQTT 5 property identifiers (MQTT 5.0 §2.2.2.2, Table 2-4). All of them fit
// in one byte, so a byte with the continuation bit set is never a valid one.
const (
	propPayloadFormat        = 0x01
	propMessageExpiry        = 0x02
	propContentType          = 0x03
	propResponseTopic        = 0x08
	propCorrelationData      = 0x09
	propSubscriptionID       = 0x0B
	propSessionExpiry        = 0x11
	propAssignedClientID     = 0x12
	propServerKeepAlive      = 0x13
	propAuthMethod           = 0x15
	propAuthData             = 0x16
	propRequestProblemInfo   = 0x17
	propWillDelay            = 0x18
	propRequestResponseInfo  = 0x19
	propResponseInfo         = 0x1A
	propServerReference      = 0x1C
	propReasonString         = 0x1F
	propReceiveMaximum       = 0x21
	propTopicAliasMaximum    = 0x22
	propTopicAlias           = 0x23
	propMaximumQoS           = 0x24
	propRetainAvailable      = 0x25
	propUser                 = 0x26
	propMaximumPacketSize    = 0x27
	propWildcardSubAvailable = 0x28
	propSubIDAvailable       = 0x29
	propSharedSubAvailable   = 0x2A
	propLimit                = 0x2B // one past the largest identifier
)

// Property value data types (MQTT 5.0 §1.5).
const (
	tNone = iota
	tByte
	tTwoByte
	tFourByte
	tVarInt
	tString
	tBinary
	tStringPair
)

var propTypes = [propLimit]uint8{
	propPayloadFormat:        tByte,
	propMessageExpiry:        tFourByte,
	propContentType:          tString,
	propResponseTopic:        tString,
	propCorrelationData:      tBinary,
	propSubscriptionID:       tVarInt,
	propSessionExpiry:        tFourByte,
	propAssignedClientID:     tString,
	propServerKeepAlive:      tTwoByte,
	propAuthMethod:           tString,
	propAuthData:             tBinary,
	propRequestProblemInfo:   tByte,
	propWillDelay:            tFourByte,
	propRequestResponseInfo:  tByte,
	propResponseInfo:         tString,
	propServerReference:      tString,
	propReasonString:         tString,
	propReceiveMaximum:       tTwoByte,
	propTopicAliasMaximum:    tTwoByte,
	propTopicAlias:           tTwoByte,
	propMaximumQoS:           tByte,
	propRetainAvailable:      tByte,
	propUser:                 tStringPair,
	propMaximumPacketSize:    tFourByte,
	propWildcardSubAvailable: tByte,
	propSubIDAvailable:       tByte,
	propSharedSubAvailable:   tByte,
}

var propNames = [propLimit]string{
	propPayloadFormat:        "Payload Format Indicator",
	propMessageExpiry:        "Message Expiry Interval",
	propContentType:          "Content Type",
	propResponseTopic:        "Response Topic",
	propCorrelationData:      "Correlation Data",
	propSubscriptionID:       "Subscription Identifier",
	propSessionExpiry:        "Session Expiry Interval",
	propAssignedClientID:     "Assigned Client Identifier",
	propServerKeepAlive:      "Server Keep Alive",
	propAuthMethod:           "Authentication Method",
	propAuthData:             "Authentication Data",
	propRequestProblemInfo:   "Request Problem Information",
	propWillDelay:            "Will Delay Interval",
	propRequestResponseInfo:  "Request Response Information",
	propResponseInfo:         "Response Information",
	propServerReference:      "Server Reference",
	propReasonString:         "Reason String",
	propReceiveMaximum:       "Receive Maximum",
	propTopicAliasMaximum:    "Topic Alias Maximum",
	propTopicAlias:           "Topic Alias",
	propMaximumQoS:           "Maximum QoS",
	propRetainAvailable:      "Retain Available",
	propUser:                 "User Property",
	propMaximumPacketSize:    "Maximum Packet Size",
	propWildcardSubAvailable: "Wildcard Subscription Available",
	propSubIDAvailable:       "Subscription Identifier Available",
	propSharedSubAvailable:   "Shared Subscription Available",
}

// propKind names a property list: the packet that carries it, or the will.
type propKind uint8

const (
	kindConnect propKind = iota
	kindWill
	kindPublish
	kindAck // PUBACK, PUBREC, PUBREL, PUBCOMP
	kindSubscribe
	kindUnsubscribe
	kindDisconnect
	kindAuth
)

// allowedProps lists, per kind, the identifiers a client may send (MQTT 5.0
// §2.2.2.2 Table 2-4 and each packet's §3.x.2.2). The server-only properties
// (CONNACK's, Assigned Client Identifier, ...) appear in no list. Each list is
// a subset of what mochi's decoder accepts for that packet.
var allowedProps = [...]uint64{
	kindConnect: 1<<propSessionExpiry | 1<<propReceiveMaximum | 1<<propMaximumPacketSize |
		1<<propTopicAliasMaximum | 1<<propRequestResponseInfo | 1<<propRequestProblemInfo |
		1<<propUser | 1<<propAuthMethod | 1<<propAuthData,
	kindWill: 1<<propWillDelay | 1<<propPayloadFormat | 1<<propMessageExpiry | 1<<propContentType |
		1<<propResponseTopic | 1<<propCorrelationData | 1<<propUser,
	// Subscription Identifier is valid in PUBLISH, but only from the server.
	kindPublish: 1<<propPayloadFormat | 1<<propMessageExpiry | 1<<propTopicAlias | 1<<propResponseTopic |
		1<<propCorrelationData | 1<<propUser | 1<<propContentType,
	kindAck:         1<<propReasonString | 1<<propUser,
	kindSubscribe:   1<<propSubscriptionID | 1<<propUser,
	kindUnsubscribe: 1 << propUser,
	kindDisconnect:  1<<propSessionExpiry | 1<<propReasonString | 1<<propUser | 1<<propServerReference,
	kindAuth:        1<<propAuthMethod | 1<<propAuthData | 1<<propReasonString | 1<<propUser,
}

// propInfo is what callers need to know about a validated property list.
type propInfo struct {
	seen      uint64 // bit n set: property n present
	maxPacket uint32
}

func (p propInfo) has(id byte) bool { return p.seen&(1<<id) != 0 }

// properties validates a Property Length and the property list it covers,
// leaving c just after it. Properties are read from a cursor cut at the
// declared length, so one that straddles the end is refused; mochi would read
// it past the end, into the payload.
func properties(c *cursor, kind propKind, where string) (propInfo, *Error) {
	var pi propInfo
	n, ok := c.vbi()
	if !ok {
		return pi, malformed("%s property length truncated or longer than 4 bytes", where)
	}
	if int(n) > c.left() {
		return pi, malformed("%s property length %d exceeds the %d bytes left", where, n, c.left())
	}
	p := cursor{b: c.b[:c.off+int(n)], off: c.off}
	c.off += int(n)
	for p.left() > 0 {
		id, _ := p.u8()
		if kind == kindPublish && id == propSubscriptionID {
			return pi, protocolErr("PUBLISH from a client carries a Subscription Identifier [MQTT-3.3.4-6]")
		}
		if id >= propLimit || allowedProps[kind]&(1<<id) == 0 {
			// MQTT 5.0 §2.2.2.2: an identifier not valid for the packet type
			// makes a Malformed Packet.
			return pi, malformed("%s property identifier 0x%02X is not valid there", where, id)
		}
		name := propNames[id]
		if id != propUser && pi.has(id) {
			// Only User Property may repeat in a packet from a client.
			return pi, protocolErr("%s includes the %s more than once", where, name)
		}
		pi.seen |= 1 << id
		switch propTypes[id] {
		case tByte:
			b, ok := p.u8()
			if !ok {
				return pi, malformed("%s %s truncated", where, name)
			}
			if b > 1 { // all client byte properties are 0 or 1
				return pi, protocolErr("%s %s is %d, must be 0 or 1", where, name, b)
			}
		case tTwoByte:
			x, ok := p.u16()
			if !ok {
				return pi, malformed("%s %s truncated", where, name)
			}
			if x == 0 && id == propReceiveMaximum {
				return pi, protocolErr("%s Receive Maximum 0", where) // MQTT 5.0 §3.1.2.11.3
			}
			if x == 0 && id == propTopicAlias {
				return pi, reasonErr(ReasonTopicAliasInvalid, "%s Topic Alias 0 [MQTT-3.3.2-8]", where)
			}
		case tFourByte:
			x, ok := p.u32()
			if !ok {
				return pi, malformed("%s %s truncated", where, name)
			}
			if id == propMaximumPacketSize {
				if x == 0 {
					return pi, protocolErr("%s Maximum Packet Size 0", where) // MQTT 5.0 §3.1.2.11.4
				}
				pi.maxPacket = x
			}
		case tVarInt:
			x, ok := p.vbi()
			if !ok {
				return pi, malformed("%s %s truncated or longer than 4 bytes", where, name)
			}
			if x == 0 {
				return pi, protocolErr("%s Subscription Identifier 0", where) // MQTT 5.0 §3.8.2.1.2
			}
		case tString:
			s, ok := p.lenPrefixed()
			if !ok {
				return pi, malformed("%s %s truncated", where, name)
			}
			if id == propResponseTopic {
				// A topic name, so no wildcards and not empty; a bad one is a
				// Protocol Error, not a Topic Name invalid.
				valid, wild := scanString(s)
				switch {
				case !valid:
					return pi, malformed("%s Response Topic is not valid UTF-8 or contains U+0000 [MQTT-3.3.2-13]", where)
				case len(s) == 0:
					return pi, protocolErr("%s Response Topic is empty [MQTT-4.7.3-1]", where)
				case wild:
					return pi, protocolErr("%s Response Topic contains a wildcard character [MQTT-3.3.2-14]", where)
				}
			} else if !validString(s) {
				return pi, malformed("%s %s is not valid UTF-8 or contains U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]", where, name)
			}
		case tBinary:
			if _, ok := p.lenPrefixed(); !ok {
				return pi, malformed("%s %s truncated", where, name)
			}
		case tStringPair:
			k, ok := p.lenPrefixed()
			if !ok {
				return pi, malformed("%s User Property name truncated", where)
			}
			v, ok := p.lenPrefixed()
			if !ok {
				return pi, malformed("%s User Property value truncated", where)
			}
			if !validString(k) || !validString(v) {
				return pi, malformed("%s User Property is not valid UTF-8 or contains U+0000 [MQTT-1.5.7-1]", where)
			}
		}
	}
	return pi, nil
}
