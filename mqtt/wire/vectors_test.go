package wire

import "strings"

// vector is one annotated packet. reason 0 means Validate must accept it;
// otherwise Validate must refuse it with that reason code and a message
// containing msg. Where mochi 2.7.9 misbehaves on a vector, the name says how.
type vector struct {
	name   string
	v      byte // protocol version of the connection; 0 before CONNECT
	pkt    []byte
	reason byte
	msg    string
}

// user is a User Property "k"="v".
var user = prop(propUser, str("k"), str("v"))

var validVectors = []vector{
	// CONNECT
	{name: "CONNECT 3.1 MQIsdp", v: 0, pkt: connect3},
	{name: "CONNECT 3.1.1", v: 0, pkt: connect4},
	{name: "CONNECT 5", v: 0, pkt: connect5},
	{name: "CONNECT 3.1.1 empty client id", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x02), u16(0), str(""))},
	{name: "CONNECT 3.1.1 will QoS 1 retain, user, password", v: 0, pkt: pk(0x10,
		str("MQTT"), b(4),
		b(0xEE), // user | password | will retain | will QoS 1 | will | clean
		u16(30), str("dev-1"), str("will/t"), str("bye"), str("user"), str("pw"))},
	{name: "CONNECT 3.1 user and password", v: 0, pkt: pk(0x10, str("MQIsdp"), b(3), b(0xC2), u16(10), str("c"), str("u"), str("p"))},
	{name: "CONNECT 5 every client property, will with every will property", v: 0, pkt: pk(0x10,
		str("MQTT"), b(5),
		b(0xF6), // user | password | will retain | will QoS 2 | will | clean
		u16(60),
		props(
			prop(propSessionExpiry, u32(3600)),
			prop(propReceiveMaximum, u16(20)),
			prop(propMaximumPacketSize, u32(1024)),
			prop(propTopicAliasMaximum, u16(10)),
			prop(propRequestResponseInfo, b(1)),
			prop(propRequestProblemInfo, b(0)),
			user, user, // User Property may repeat
			prop(propAuthMethod, str("SCRAM-SHA-1")),
			prop(propAuthData, str("\x00\x01binary")),
		),
		str("dev-é"), // UTF-8 client id
		props(
			prop(propWillDelay, u32(5)),
			prop(propPayloadFormat, b(1)),
			prop(propMessageExpiry, u32(60)),
			prop(propContentType, str("text/plain")),
			prop(propResponseTopic, str("reply/here")),
			prop(propCorrelationData, str("id-1")),
			user,
		),
		str("will/t"), str(""), // an empty will payload is legal
		str("user"), str("pw"))},
	{name: "CONNECT 5 password without user name (allowed in 5)", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(0x42), u16(0), props(), str("c"), str("pw"))},
	{name: "CONNECT 3.1.1 non-minimal remaining length 0x8E 0x00", v: 0, pkt: cat(b(0x10, 0x8E, 0x00), connect4[2:])},

	// PUBLISH
	{name: "PUBLISH 3.1.1 QoS 0", v: 4, pkt: pk(0x30, str("a/b"), []byte("hello"))},
	{name: "PUBLISH 3.1.1 QoS 1 DUP RETAIN", v: 4, pkt: pk(0x3B, str("a/b"), u16(7), []byte("x"))},
	{name: "PUBLISH 3.1.1 QoS 2 empty payload", v: 4, pkt: pk(0x34, str("a"), u16(65535))},
	{name: "PUBLISH 3.1 QoS 1", v: 3, pkt: pk(0x32, str("a/b"), u16(1), []byte("p"))},
	{name: "PUBLISH 3.1.1 UTF-8 topic", v: 4, pkt: pk(0x30, str("té/€/𝄞"), []byte("p"))},
	{name: "PUBLISH 5 QoS 0 no properties", v: 5, pkt: pk(0x30, str("a/b"), props(), []byte("hello"))},
	{name: "PUBLISH 5 QoS 1 every client property", v: 5, pkt: pk(0x32, str("a/b"), u16(9), props(
		prop(propPayloadFormat, b(1)),
		prop(propMessageExpiry, u32(10)),
		prop(propTopicAlias, u16(3)),
		prop(propResponseTopic, str("r/t")),
		prop(propCorrelationData, str("c")),
		user, user,
		prop(propContentType, str("application/json")),
	), []byte(`{"a":1}`))},
	{name: "PUBLISH 5 empty topic with Topic Alias", v: 5, pkt: pk(0x30, str(""), props(prop(propTopicAlias, u16(1))), []byte("p"))},

	// PUBACK, PUBREC, PUBREL, PUBCOMP
	{name: "PUBACK 3.1.1", v: 4, pkt: pk(0x40, u16(1))},
	{name: "PUBREC 3.1.1", v: 4, pkt: pk(0x50, u16(2))},
	{name: "PUBREL 3.1.1", v: 4, pkt: pk(0x62, u16(3))},
	{name: "PUBCOMP 3.1", v: 3, pkt: pk(0x70, u16(4))},
	{name: "PUBACK 5 short form", v: 5, pkt: pk(0x40, u16(1))},
	{name: "PUBACK 5 reason 0x10", v: 5, pkt: pk(0x40, u16(1), b(0x10))},
	{name: "PUBREC 5 reason 0x80 empty properties", v: 5, pkt: pk(0x50, u16(1), b(0x80), props())},
	{name: "PUBREL 5 reason 0x92 reason string", v: 5, pkt: pk(0x62, u16(1), b(0x92), props(prop(propReasonString, str("gone")), user))},
	{name: "PUBCOMP 5 success user property", v: 5, pkt: pk(0x70, u16(1), b(0x00), props(user))},

	// SUBSCRIBE
	{name: "SUBSCRIBE 3.1.1 two filters", v: 4, pkt: pk(0x82, u16(1), str("a/+/c"), b(1), str("#"), b(2))},
	{name: "SUBSCRIBE 3.1", v: 3, pkt: pk(0x82, u16(1), str("a/b"), b(0))},
	{name: "SUBSCRIBE 3.1.1 $share has no meaning", v: 4, pkt: pk(0x82, u16(1), str("$share/g"), b(0))},
	{name: "SUBSCRIBE 3.1.1 + everywhere", v: 4, pkt: pk(0x82, u16(1), str("+/+/+"), b(0), str("+"), b(0), str("/"), b(0))},
	{name: "SUBSCRIBE 5 shared, options, identifier", v: 5, pkt: pk(0x82, u16(2),
		props(prop(propSubscriptionID, vbi(268435455)), user),
		str("$share/g/a/#"), b(0x2A), // QoS 2, Retain As Published, Retain Handling 2
		str("+/x"), b(0x15), // QoS 1, No Local, Retain Handling 1
	)},

	// UNSUBSCRIBE
	{name: "UNSUBSCRIBE 3.1.1", v: 4, pkt: pk(0xA2, u16(3), str("a/b"), str("#"))},
	{name: "UNSUBSCRIBE 5 user property", v: 5, pkt: pk(0xA2, u16(3), props(user), str("$share/g/a"))},

	// PINGREQ, DISCONNECT, AUTH
	{name: "PINGREQ 3.1", v: 3, pkt: hx("C0 00")},
	{name: "PINGREQ 3.1.1", v: 4, pkt: hx("C0 00")},
	{name: "PINGREQ 5", v: 5, pkt: hx("C0 00")},
	{name: "DISCONNECT 3.1.1", v: 4, pkt: hx("E0 00")},
	{name: "DISCONNECT 5 short form", v: 5, pkt: hx("E0 00")},
	{name: "DISCONNECT 5 with will message", v: 5, pkt: hx("E0 01 04")},
	{name: "DISCONNECT 5 properties", v: 5, pkt: pk(0xE0, b(0x00), props(prop(propSessionExpiry, u32(0)), prop(propReasonString, str("bye")), user))},
	{name: "AUTH 5 continue", v: 5, pkt: pk(0xF0, b(0x18), props(prop(propAuthMethod, str("SCRAM")), prop(propAuthData, str("d"))))},
	{name: "AUTH 5 re-authenticate", v: 5, pkt: pk(0xF0, b(0x19), props(prop(propAuthMethod, str("SCRAM")), prop(propReasonString, str("r"))))},
}

var invalidVectors = []vector{
	// Fixed header and state.
	{name: "empty", v: 4, pkt: nil, reason: 0x81, msg: "empty"},
	{name: "type 0", v: 4, pkt: hx("00 00"), reason: 0x81, msg: "reserved"},
	{name: "CONNACK from a client", v: 4, pkt: hx("20 02 00 00"), reason: 0x82, msg: "servers only"},
	{name: "SUBACK from a client", v: 5, pkt: hx("90 03 00 01 00"), reason: 0x82, msg: "servers only"},
	{name: "UNSUBACK from a client", v: 4, pkt: hx("B0 02 00 01"), reason: 0x82, msg: "servers only"},
	{name: "PINGRESP from a client", v: 4, pkt: hx("D0 00"), reason: 0x82, msg: "servers only"},
	{name: "AUTH in 3.1.1", v: 4, pkt: hx("F0 00"), reason: 0x81, msg: "AUTH"},
	{name: "PUBLISH before CONNECT", v: 0, pkt: pk(0x30, str("a")), reason: 0x82, msg: "[MQTT-3.1.0-1]"},
	{name: "PINGREQ before CONNECT", v: 0, pkt: hx("C0 00"), reason: 0x82, msg: "[MQTT-3.1.0-1]"},
	{name: "second CONNECT", v: 4, pkt: connect4, reason: 0x82, msg: "[MQTT-3.1.0-2]"},
	{name: "second CONNECT in 5", v: 5, pkt: connect5, reason: 0x82, msg: "[MQTT-3.1.0-2]"},
	{name: "unknown version argument", v: 6, pkt: hx("C0 00"), reason: 0x84, msg: "version 6"},
	// mochi's DecodeLength accepts 80 80 80 80 00 as 0.
	{name: "remaining length of 5 bytes", v: 4, pkt: hx("C0 80 80 80 80 00"), reason: 0x81, msg: "longer than 4 bytes"},
	{name: "remaining length truncated", v: 4, pkt: hx("30 80"), reason: 0x81, msg: "truncated"},
	{name: "remaining length larger than packet", v: 4, pkt: hx("C0 01"), reason: 0x81, msg: "does not match"},
	{name: "remaining length smaller than packet", v: 4, pkt: hx("C0 00 00"), reason: 0x81, msg: "does not match"},
	{name: "PINGREQ flags", v: 4, pkt: hx("C1 00"), reason: 0x81, msg: "flags"},
	{name: "PUBACK flags", v: 4, pkt: hx("42 02 00 01"), reason: 0x81, msg: "flags"},
	{name: "DISCONNECT flags", v: 5, pkt: hx("E8 00"), reason: 0x81, msg: "flags"},
	{name: "CONNECT flags", v: 0, pkt: cat(b(0x11), connect4[1:]), reason: 0x81, msg: "flags"},
	{name: "PUBLISH QoS 3", v: 4, pkt: pk(0x36, str("a"), u16(1)), reason: 0x81, msg: "[MQTT-3.3.1-4]"},
	{name: "PUBLISH DUP on QoS 0", v: 4, pkt: pk(0x38, str("a")), reason: 0x82, msg: "[MQTT-3.3.1-2]"},
	{name: "SUBSCRIBE flags 0000", v: 4, pkt: pk(0x80, u16(1), str("a"), b(0)), reason: 0x81, msg: "[MQTT-3.8.1-1]"},
	{name: "SUBSCRIBE flags 1010 (3.1 DUP)", v: 3, pkt: pk(0x8A, u16(1), str("a"), b(0)), reason: 0x81, msg: "[MQTT-3.8.1-1]"},
	{name: "UNSUBSCRIBE flags 0000", v: 4, pkt: pk(0xA0, u16(1), str("a")), reason: 0x81, msg: "[MQTT-3.10.1-1]"},
	{name: "PUBREL flags 0000", v: 5, pkt: pk(0x60, u16(1)), reason: 0x81, msg: "[MQTT-3.6.1-1]"},

	// CONNECT
	{name: "CONNECT protocol name MQTX", v: 0, pkt: pk(0x10, str("MQTX"), b(4), b(2), u16(0), str("c")), reason: 0x84, msg: "[MQTT-3.1.2-1]"},
	{name: "CONNECT protocol level 6", v: 0, pkt: pk(0x10, str("MQTT"), b(6), b(2), u16(0), str("c")), reason: 0x84, msg: "level 6"},
	{name: "CONNECT MQIsdp level 4", v: 0, pkt: pk(0x10, str("MQIsdp"), b(4), b(2), u16(0), str("c")), reason: 0x84, msg: "level 4"},
	{name: "CONNECT MQTT level 3", v: 0, pkt: pk(0x10, str("MQTT"), b(3), b(2), u16(0), str("c")), reason: 0x84, msg: "level 3"},
	{name: "CONNECT protocol name truncated", v: 0, pkt: pk(0x10, u16(4), []byte("MQ")), reason: 0x81, msg: "protocol name"},
	{name: "CONNECT level missing", v: 0, pkt: pk(0x10, str("MQTT")), reason: 0x81, msg: "level"},
	{name: "CONNECT flags missing", v: 0, pkt: pk(0x10, str("MQTT"), b(4)), reason: 0x81, msg: "flags"},
	{name: "CONNECT reserved flag", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x03), u16(0), str("c")), reason: 0x81, msg: "[MQTT-3.1.2-3]"},
	{name: "CONNECT 3.1.1 will QoS without will", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x0A), u16(0), str("c")), reason: 0x81, msg: "[MQTT-3.1.2-13]"},
	{name: "CONNECT 5 will QoS without will", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(0x0A), u16(0), props(), str("c")), reason: 0x81, msg: "[MQTT-3.1.2-11]"},
	{name: "CONNECT 3.1.1 will retain without will", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x22), u16(0), str("c")), reason: 0x81, msg: "[MQTT-3.1.2-15]"},
	{name: "CONNECT 3.1.1 will QoS 3", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x1E), u16(0), str("c"), str("t"), str("m")), reason: 0x81, msg: "[MQTT-3.1.2-14]"},
	{name: "CONNECT 3.1.1 password without user name", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x42), u16(0), str("c"), str("p")), reason: 0x81, msg: "[MQTT-3.1.2-22]"},
	{name: "CONNECT 3.1 password without user name", v: 0, pkt: pk(0x10, str("MQIsdp"), b(3), b(0x42), u16(0), str("c"), str("p")), reason: 0x81, msg: "[MQTT-3.1.2-22]"},
	{name: "CONNECT keep alive truncated", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(2), b(0)), reason: 0x81, msg: "keep alive"},
	{name: "CONNECT client id missing", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(2), u16(0)), reason: 0x81, msg: "client identifier"},
	{name: "CONNECT client id truncated", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(2), u16(0), u16(5), []byte("ab")), reason: 0x81, msg: "client identifier"},
	{name: "CONNECT client id invalid UTF-8", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(2), u16(0), str("\xff")), reason: 0x81, msg: "[MQTT-1.5.4-1]"},
	{name: "CONNECT client id with U+0000", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(2), u16(0), str("a\x00b")), reason: 0x81, msg: "U+0000"},
	{name: "CONNECT client id with a surrogate", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(2), u16(0), str("\xed\xa0\x80")), reason: 0x81, msg: "UTF-8"},
	{name: "CONNECT client id overlong encoding", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(2), u16(0), str("\xc0\xaf")), reason: 0x81, msg: "UTF-8"},
	{name: "CONNECT will topic missing", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x06), u16(0), str("c")), reason: 0x81, msg: "will topic"},
	{name: "CONNECT will topic with wildcard", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x06), u16(0), str("c"), str("a/#"), str("m")), reason: 0x90, msg: "wildcard"},
	{name: "CONNECT will topic empty", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x06), u16(0), str("c"), str(""), str("m")), reason: 0x90, msg: "empty"},
	{name: "CONNECT will payload missing", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x06), u16(0), str("c"), str("t")), reason: 0x81, msg: "will payload"},
	{name: "CONNECT user name missing", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x82), u16(0), str("c")), reason: 0x81, msg: "user name"},
	{name: "CONNECT user name invalid UTF-8", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x82), u16(0), str("c"), str("\xfe")), reason: 0x81, msg: "user name"},
	{name: "CONNECT password missing", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0xC2), u16(0), str("c"), str("u")), reason: 0x81, msg: "password"},
	// mochi ignores what follows the last field.
	{name: "CONNECT trailing byte", v: 0, pkt: pk(0x10, str("MQTT"), b(4), b(0x02), u16(0), str("c"), b(0)), reason: 0x81, msg: "[MQTT-3.1.3-1]"},
	{name: "CONNECT 5 properties missing", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0)), reason: 0x81, msg: "property length"},
	{name: "CONNECT 5 property length of 5 bytes", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), hx("80 80 80 80 00"), str("c")), reason: 0x81, msg: "property length"},
	{name: "CONNECT 5 property length too long", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), b(9), str("c")), reason: 0x81, msg: "exceeds"},
	// mochi reads the Session Expiry Interval past the property length, into
	// the client id, and then decodes the rest as the client id.
	{name: "CONNECT 5 property straddles the property length", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), b(3), prop(propSessionExpiry, u32(0x0000_0001)), str("c")), reason: 0x81, msg: "truncated"},
	{name: "CONNECT 5 PUBLISH property", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propPayloadFormat, b(0))), str("c")), reason: 0x81, msg: "0x01 is not valid"},
	{name: "CONNECT 5 CONNACK property", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propMaximumQoS, b(1))), str("c")), reason: 0x81, msg: "0x24 is not valid"},
	{name: "CONNECT 5 identifier with continuation bit", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(b(0x91, 0x00)), str("c")), reason: 0x81, msg: "0x91 is not valid"},
	{name: "CONNECT 5 Session Expiry twice", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propSessionExpiry, u32(1)), prop(propSessionExpiry, u32(2))), str("c")), reason: 0x82, msg: "more than once"},
	{name: "CONNECT 5 Receive Maximum 0", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propReceiveMaximum, u16(0))), str("c")), reason: 0x82, msg: "Receive Maximum 0"},
	{name: "CONNECT 5 Maximum Packet Size 0", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propMaximumPacketSize, u32(0))), str("c")), reason: 0x82, msg: "Maximum Packet Size 0"},
	{name: "CONNECT 5 Request Problem Information 2", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propRequestProblemInfo, b(2))), str("c")), reason: 0x82, msg: "0 or 1"},
	{name: "CONNECT 5 Authentication Data without Method", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propAuthData, str("x"))), str("c")), reason: 0x82, msg: "Authentication Method"},
	{name: "CONNECT 5 User Property invalid UTF-8", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propUser, str("k"), str("\xff"))), str("c")), reason: 0x81, msg: "[MQTT-1.5.7-1]"},
	{name: "CONNECT 5 User Property value truncated", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(2), u16(0), props(prop(propUser, str("k"), u16(3))), str("c")), reason: 0x81, msg: "User Property value"},
	{name: "CONNECT 5 will property Topic Alias", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(0x06), u16(0), props(), str("c"), props(prop(propTopicAlias, u16(1))), str("t"), str("m")), reason: 0x81, msg: "CONNECT will property identifier 0x23"},
	{name: "CONNECT 5 will Response Topic with wildcard", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(0x06), u16(0), props(), str("c"), props(prop(propResponseTopic, str("r/+"))), str("t"), str("m")), reason: 0x82, msg: "Response Topic"},
	{name: "CONNECT 5 will properties missing", v: 0, pkt: pk(0x10, str("MQTT"), b(5), b(0x06), u16(0), props(), str("c")), reason: 0x81, msg: "will property length"},

	// PUBLISH
	{name: "PUBLISH topic truncated", v: 4, pkt: pk(0x30, u16(5), []byte("ab")), reason: 0x81, msg: "topic name truncated"},
	{name: "PUBLISH no topic", v: 4, pkt: pk(0x30), reason: 0x81, msg: "topic name truncated"},
	{name: "PUBLISH topic with +", v: 4, pkt: pk(0x30, str("a/+/c"), []byte("p")), reason: 0x90, msg: "[MQTT-3.3.2-2]"},
	{name: "PUBLISH topic with #", v: 5, pkt: pk(0x30, str("a/#"), props()), reason: 0x90, msg: "[MQTT-3.3.2-2]"},
	{name: "PUBLISH topic invalid UTF-8", v: 4, pkt: pk(0x30, str("a\x80")), reason: 0x81, msg: "UTF-8"},
	{name: "PUBLISH topic with U+0000", v: 4, pkt: pk(0x30, str("a\x00")), reason: 0x81, msg: "U+0000"},
	{name: "PUBLISH 3.1.1 empty topic", v: 4, pkt: pk(0x30, str(""), []byte("p")), reason: 0x90, msg: "[MQTT-4.7.3-1]"},
	{name: "PUBLISH 5 empty topic without alias", v: 5, pkt: pk(0x30, str(""), props(), []byte("p")), reason: 0x82, msg: "Topic Alias"},
	{name: "PUBLISH QoS 1 packet id 0", v: 4, pkt: pk(0x32, str("a"), u16(0)), reason: 0x82, msg: "[MQTT-2.3.1-1]"},
	{name: "PUBLISH 5 QoS 2 packet id 0", v: 5, pkt: pk(0x34, str("a"), u16(0), props()), reason: 0x82, msg: "[MQTT-2.2.1-3]"},
	{name: "PUBLISH QoS 1 packet id truncated", v: 4, pkt: pk(0x32, str("a"), b(0)), reason: 0x81, msg: "packet identifier truncated"},
	{name: "PUBLISH 5 properties missing", v: 5, pkt: pk(0x30, str("a")), reason: 0x81, msg: "property length"},
	{name: "PUBLISH 5 Topic Alias 0", v: 5, pkt: pk(0x30, str("a"), props(prop(propTopicAlias, u16(0)))), reason: 0x94, msg: "[MQTT-3.3.2-8]"},
	{name: "PUBLISH 5 Topic Alias twice", v: 5, pkt: pk(0x30, str("a"), props(prop(propTopicAlias, u16(1)), prop(propTopicAlias, u16(2)))), reason: 0x82, msg: "more than once"},
	{name: "PUBLISH 5 Subscription Identifier from a client", v: 5, pkt: pk(0x30, str("a"), props(prop(propSubscriptionID, vbi(1)))), reason: 0x82, msg: "[MQTT-3.3.4-6]"},
	{name: "PUBLISH 5 Payload Format Indicator 2", v: 5, pkt: pk(0x30, str("a"), props(prop(propPayloadFormat, b(2)))), reason: 0x82, msg: "0 or 1"},
	{name: "PUBLISH 5 Session Expiry property", v: 5, pkt: pk(0x30, str("a"), props(prop(propSessionExpiry, u32(1)))), reason: 0x81, msg: "0x11 is not valid"},
	{name: "PUBLISH 5 Message Expiry straddles into payload", v: 5, pkt: pk(0x30, str("a"), b(2), prop(propMessageExpiry, u32(7)), []byte("payload")), reason: 0x81, msg: "truncated"},
	{name: "PUBLISH 5 Content Type invalid UTF-8", v: 5, pkt: pk(0x30, str("a"), props(prop(propContentType, str("\xc3")))), reason: 0x81, msg: "Content Type"},
	{name: "PUBLISH 5 Response Topic empty", v: 5, pkt: pk(0x30, str("a"), props(prop(propResponseTopic, str("")))), reason: 0x82, msg: "Response Topic"},
	{name: "PUBLISH 5 Response Topic with #", v: 5, pkt: pk(0x30, str("a"), props(prop(propResponseTopic, str("#")))), reason: 0x82, msg: "Response Topic"},

	// PUBACK, PUBREC, PUBREL, PUBCOMP
	{name: "PUBACK 3.1.1 remaining length 3", v: 4, pkt: pk(0x40, u16(1), b(0)), reason: 0x81, msg: "must be 2"},
	{name: "PUBCOMP 3.1 remaining length 1", v: 3, pkt: pk(0x70, b(1)), reason: 0x81, msg: "truncated"},
	{name: "PUBACK packet id 0", v: 4, pkt: pk(0x40, u16(0)), reason: 0x82, msg: "packet identifier 0"},
	{name: "PUBREC 5 packet id 0", v: 5, pkt: pk(0x50, u16(0), b(0)), reason: 0x82, msg: "packet identifier 0"},
	{name: "PUBACK 5 reason 0x05", v: 5, pkt: pk(0x40, u16(1), b(0x05)), reason: 0x82, msg: "[MQTT-3.4.2-1]"},
	{name: "PUBREC 5 reason 0x92", v: 5, pkt: pk(0x50, u16(1), b(0x92)), reason: 0x82, msg: "[MQTT-3.5.2-1]"},
	{name: "PUBREL 5 reason 0x10", v: 5, pkt: pk(0x62, u16(1), b(0x10)), reason: 0x82, msg: "[MQTT-3.6.2-1]"},
	{name: "PUBCOMP 5 reason 0x80", v: 5, pkt: pk(0x70, u16(1), b(0x80)), reason: 0x82, msg: "[MQTT-3.7.2-1]"},
	{name: "PUBACK 5 Topic Alias property", v: 5, pkt: pk(0x40, u16(1), b(0), props(prop(propTopicAlias, u16(1)))), reason: 0x81, msg: "0x23 is not valid"},
	{name: "PUBACK 5 Reason String twice", v: 5, pkt: pk(0x40, u16(1), b(0), props(prop(propReasonString, str("a")), prop(propReasonString, str("b")))), reason: 0x82, msg: "more than once"},
	{name: "PUBACK 5 bytes after properties", v: 5, pkt: pk(0x40, u16(1), b(0), props(), b(0)), reason: 0x81, msg: "after its properties"},
	{name: "PUBACK 5 property length too long", v: 5, pkt: pk(0x40, u16(1), b(0), b(4), b(0)), reason: 0x81, msg: "exceeds"},

	// SUBSCRIBE
	// mochi 2.7.9 panics (index out of range in SubscribeDecode): the MQTT 5
	// options byte after the last filter is read without a bounds check.
	{name: "SUBSCRIBE 5 options byte missing (mochi panic)", v: 5, pkt: crashSubscribe, reason: 0x81, msg: "SUBSCRIBE topic filter 1 has no subscription options byte"},
	{name: "SUBSCRIBE 5 second options byte missing (mochi panic)", v: 5, pkt: pk(0x82, u16(1), props(), str("a"), b(0), str("b")), reason: 0x81, msg: "topic filter 2 has no subscription options"},
	{name: "SUBSCRIBE 3.1.1 options byte missing", v: 4, pkt: pk(0x82, u16(1), str("a")), reason: 0x81, msg: "subscription options"},
	{name: "SUBSCRIBE 3.1.1 no filter", v: 4, pkt: pk(0x82, u16(1)), reason: 0x82, msg: "[MQTT-3.8.3-3]"},
	{name: "SUBSCRIBE 5 no filter", v: 5, pkt: pk(0x82, u16(1), props()), reason: 0x82, msg: "[MQTT-3.8.3-2]"},
	{name: "SUBSCRIBE packet id 0", v: 4, pkt: pk(0x82, u16(0), str("a"), b(0)), reason: 0x82, msg: "packet identifier 0"},
	{name: "SUBSCRIBE packet id truncated", v: 4, pkt: pk(0x82, b(0)), reason: 0x81, msg: "packet identifier truncated"},
	{name: "SUBSCRIBE filter truncated", v: 4, pkt: pk(0x82, u16(1), u16(9), []byte("a/b")), reason: 0x81, msg: "topic filter 1 truncated"},
	{name: "SUBSCRIBE 3.1.1 QoS 3", v: 4, pkt: pk(0x82, u16(1), str("a"), b(3)), reason: 0x81, msg: "QoS 3"},
	{name: "SUBSCRIBE 3.1.1 reserved bits", v: 4, pkt: pk(0x82, u16(1), str("a"), b(0x04)), reason: 0x81, msg: "[MQTT-3-8.3-4]"},
	{name: "SUBSCRIBE 5 reserved bits", v: 5, pkt: pk(0x82, u16(1), props(), str("a"), b(0x40)), reason: 0x81, msg: "[MQTT-3.8.3-5]"},
	{name: "SUBSCRIBE 5 Retain Handling 3", v: 5, pkt: pk(0x82, u16(1), props(), str("a"), b(0x30)), reason: 0x82, msg: "Retain Handling 3"},
	{name: "SUBSCRIBE 5 No Local on a shared subscription", v: 5, pkt: pk(0x82, u16(1), props(), str("$share/g/a"), b(0x04)), reason: 0x82, msg: "[MQTT-3.8.3-4]"},
	{name: "SUBSCRIBE empty filter", v: 4, pkt: pk(0x82, u16(1), str(""), b(0)), reason: 0x8F, msg: "[MQTT-4.7.3-1]"},
	{name: "SUBSCRIBE # not last", v: 4, pkt: pk(0x82, u16(1), str("a/#/b"), b(0)), reason: 0x8F, msg: "'#' must be the last level"},
	// mochi's IsValidFilter accepts this one: # is the last character.
	{name: "SUBSCRIBE sport#", v: 4, pkt: pk(0x82, u16(1), str("sport#"), b(0)), reason: 0x8F, msg: "'#' must occupy a whole level"},
	// mochi's IsValidFilter accepts this one and indexes "a+" as a level.
	{name: "SUBSCRIBE a+/b", v: 5, pkt: pk(0x82, u16(1), props(), str("a+/b"), b(0)), reason: 0x8F, msg: "'+' must occupy a whole level"},
	{name: "SUBSCRIBE second filter bad", v: 4, pkt: pk(0x82, u16(1), str("ok"), b(0), str("x/#/y"), b(1)), reason: 0x8F, msg: "SUBSCRIBE topic filter 2: '#' must be the last level"},
	{name: "SUBSCRIBE filter invalid UTF-8", v: 4, pkt: pk(0x82, u16(1), str("\xe2\x82"), b(0)), reason: 0x81, msg: "UTF-8"},
	{name: "SUBSCRIBE 5 $share/g without filter", v: 5, pkt: pk(0x82, u16(1), props(), str("$share/g"), b(0)), reason: 0x8F, msg: "[MQTT-4.8.2-2]"},
	{name: "SUBSCRIBE 5 $share/g/ empty filter", v: 5, pkt: pk(0x82, u16(1), props(), str("$share/g/"), b(0)), reason: 0x8F, msg: "[MQTT-4.8.2-2]"},
	{name: "SUBSCRIBE 5 empty ShareName", v: 5, pkt: pk(0x82, u16(1), props(), str("$share//a"), b(0)), reason: 0x8F, msg: "[MQTT-4.8.2-1]"},
	{name: "SUBSCRIBE 5 ShareName with wildcard", v: 5, pkt: pk(0x82, u16(1), props(), str("$share/g+/a"), b(0)), reason: 0x8F, msg: "'+' must occupy"},
	{name: "SUBSCRIBE 5 ShareName +", v: 5, pkt: pk(0x82, u16(1), props(), str("$share/+/a"), b(0)), reason: 0x8F, msg: "ShareName contains a wildcard [MQTT-4.8.2-2]"},
	{name: "SUBSCRIBE 5 Subscription Identifier 0", v: 5, pkt: pk(0x82, u16(1), props(prop(propSubscriptionID, vbi(0))), str("a"), b(0)), reason: 0x82, msg: "Subscription Identifier 0"},
	{name: "SUBSCRIBE 5 Subscription Identifier twice", v: 5, pkt: pk(0x82, u16(1), props(prop(propSubscriptionID, vbi(1)), prop(propSubscriptionID, vbi(2))), str("a"), b(0)), reason: 0x82, msg: "more than once"},
	{name: "SUBSCRIBE 5 Subscription Identifier of 5 bytes", v: 5, pkt: pk(0x82, u16(1), props(prop(propSubscriptionID, hx("81 80 80 80 00"))), str("a"), b(0)), reason: 0x81, msg: "longer than 4 bytes"},
	{name: "SUBSCRIBE 5 Reason String property", v: 5, pkt: pk(0x82, u16(1), props(prop(propReasonString, str("r"))), str("a"), b(0)), reason: 0x81, msg: "0x1F is not valid"},

	// UNSUBSCRIBE
	{name: "UNSUBSCRIBE no filter", v: 4, pkt: pk(0xA2, u16(1)), reason: 0x82, msg: "[MQTT-3.10.3-2]"},
	{name: "UNSUBSCRIBE 5 no filter", v: 5, pkt: pk(0xA2, u16(1), props()), reason: 0x82, msg: "[MQTT-3.10.3-2]"},
	{name: "UNSUBSCRIBE packet id 0", v: 4, pkt: pk(0xA2, u16(0), str("a")), reason: 0x82, msg: "packet identifier 0"},
	{name: "UNSUBSCRIBE bad filter", v: 4, pkt: pk(0xA2, u16(1), str("a/#/b")), reason: 0x8F, msg: "UNSUBSCRIBE topic filter 1"},
	{name: "UNSUBSCRIBE filter truncated", v: 4, pkt: pk(0xA2, u16(1), str("a"), u16(2)), reason: 0x81, msg: "topic filter 2 truncated"},
	{name: "UNSUBSCRIBE 5 Subscription Identifier property", v: 5, pkt: pk(0xA2, u16(1), props(prop(propSubscriptionID, vbi(1))), str("a")), reason: 0x81, msg: "0x0B is not valid"},

	// PINGREQ, DISCONNECT, AUTH
	{name: "PINGREQ with a body", v: 4, pkt: hx("C0 01 00"), reason: 0x81, msg: "must be 0"},
	{name: "DISCONNECT 3.1.1 with a body", v: 4, pkt: hx("E0 01 00"), reason: 0x81, msg: "must be 0"},
	{name: "DISCONNECT 5 reason 0x01", v: 5, pkt: hx("E0 01 01"), reason: 0x82, msg: "[MQTT-3.14.2-1]"},
	{name: "DISCONNECT 5 Topic Alias property", v: 5, pkt: pk(0xE0, b(0), props(prop(propTopicAlias, u16(1)))), reason: 0x81, msg: "0x23 is not valid"},
	{name: "DISCONNECT 5 bytes after properties", v: 5, pkt: pk(0xE0, b(0), props(), b(1)), reason: 0x81, msg: "after its properties"},
	{name: "DISCONNECT 5 property length too long", v: 5, pkt: pk(0xE0, b(0), b(3)), reason: 0x81, msg: "exceeds"},
	{name: "AUTH 5 empty", v: 5, pkt: hx("F0 00"), reason: 0x82, msg: "Authentication Method"},
	{name: "AUTH 5 property length missing", v: 5, pkt: hx("F0 01 18"), reason: 0x81, msg: "property length missing"},
	{name: "AUTH 5 reason 0x01", v: 5, pkt: pk(0xF0, b(0x01), props(prop(propAuthMethod, str("m")))), reason: 0x82, msg: "[MQTT-3.15.2-1]"},
	{name: "AUTH 5 no Authentication Method", v: 5, pkt: pk(0xF0, b(0x18), props(user)), reason: 0x82, msg: "Authentication Method"},
	{name: "AUTH 5 Session Expiry property", v: 5, pkt: pk(0xF0, b(0x18), props(prop(propAuthMethod, str("m")), prop(propSessionExpiry, u32(1)))), reason: 0x81, msg: "0x11 is not valid"},
	{name: "AUTH 5 bytes after properties", v: 5, pkt: pk(0xF0, b(0x18), props(prop(propAuthMethod, str("m"))), b(0)), reason: 0x81, msg: "after its properties"},
}

// allVectors returns the valid and the invalid vectors.
func allVectors() []vector {
	return append(append([]vector{}, validVectors...), invalidVectors...)
}

func (v vector) matches(err error) (bool, string) {
	if v.reason == 0 {
		return err == nil, "want nil"
	}
	e, ok := err.(*Error)
	if !ok {
		return false, "want *Error"
	}
	if e.Reason != v.reason {
		return false, "wrong reason"
	}
	if !strings.Contains(e.Msg, v.msg) {
		return false, "message lacks " + v.msg
	}
	return true, ""
}
