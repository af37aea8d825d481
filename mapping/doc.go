// Package mapping turns the routes of the configuration (SPEC §5.3) into an immutable Router and
// translates messages between MQTT 5 and AMQP 1.0 (SPEC §5.4, §5.5). It is pure: no network, no
// goroutines, no I/O. The gateway owns the connections; for each message it asks the Router which
// routes match, maps the message through each (Match.FromMQTT, Match.FromAMQP), sends the outputs
// with the Policy each carries, and answers the sender from the outcomes (MQTTAck, WorseAck).
//
// # One message
//
//	router := load()                            // Compile on start and on every reload; swap atomically
//	for _, m := range router.MatchMQTT(topic) { // every matching route fires, in configuration order
//		out, err := m.FromMQTT(msg, mapping.Env{Sequence: seq, Received: now})
//		// err wraps ErrUnsafeCapture: reject the message (MQTT 5 0x80 / AMQP rejected), count it
//		// out.To, out.Uplink, out.Address: where; out.Policy: settled or not, QoS, when to answer
//		// out.AMQP or out.MQTT: the message; out.Skipped: what could not be carried (count it)
//	}
//
// AMQP messages go through MatchAMQP (the gateway's address space: the link's target address,
// or properties.to on an anonymous relay link) and MatchUplink (messages consumed from an uplink:
// their properties.to, or the link's source address). What a route outputs is never routed
// again: a message crosses a protocol boundary at most once (SPEC §5.1), so the transparent
// default routes do not loop.
//
// # Routes
//
//	routes:
//	  - name: telemetry                               # optional; unique; default routes[i]
//	    from: {mqtt: "devices/{device}/telemetry/#"}
//	    to:   {amqp: "telemetry/{device}"}
//	    delivery: auto                                # auto | at-most-once | at-least-once | exactly-once
//	    properties: {subject: "{device}", content-type: application/json}
//	    application-properties: {device-id: "{device}"}
//	  - name: commands
//	    from: {amqp: "commands/{device}"}
//	    to:   {mqtt: "devices/{device}/commands", qos: 1, retain: false}
//	    require_subscriber: true
//
// Sources (from):
//
//	{mqtt: PATTERN}                                   MQTT publishes to matching topics
//	{amqp: PATTERN, queues: BOOL}                     AMQP messages sent to matching addresses;
//	                                                  queues: false skips addresses that are queues
//	{uplink: NAME, address: PATTERN, separator: SEP}  messages consumed from an uplink
//
// Destinations (to):
//
//	{amqp: TEMPLATE}                                  a queue or topic address of the gateway
//	{mqtt: TEMPLATE, qos: 0|1|2, retain: BOOL}        an MQTT publish through the broker
//	{uplink: NAME, address: TEMPLATE, separator: SEP} an address on an uplink
//
// Unknown keys, a missing or second kind, an unknown uplink name, an unknown delivery mode, a qos
// outside 0–2 or one that contradicts an explicit delivery, require_subscriber on an uplink
// destination, and every pattern and template problem below are reported by Compile, all at once,
// each with its key path (routes[2].to.mqtt) for `isthmus check` to position.
//
// # Patterns
//
// A pattern is an MQTT topic filter (MQTT 5 §4.7) in which a level may also be written {name}:
//
//	devices/{device}/telemetry/#
//	  {name}   matches exactly one level, like +, and captures its text as {name}
//	  +        matches one level without capturing
//	  #        only as the last level: matches the rest, including nothing ("a/#" matches "a"),
//	           captured as {#}
//	  {{ }}    a literal brace
//
// Wildcards and captures are whole levels; a capture name is letters, digits, _ and -, used once
// per pattern, and not one of the reserved names topic, address, client-id, identity. Matching is
// case-sensitive and byte-exact. A pattern starting with a wildcard or capture does not match a
// name starting with $ ([MQTT-4.7.2-1]): "#" does not see $SYS or the gateway's $ addresses.
// Empty levels ("a//b", "a/") are refused in mqtt and amqp patterns as likely typos, except a
// leading "/"; uplink patterns are the backend's syntax and may hold any.
//
// # Templates
//
// A template is literal text with placeholders anywhere:
//
//	{name}       a capture of the pattern
//	{#}          what the trailing # matched
//	{topic}      the whole source topic (MQTT sources)
//	{address}    the whole source address (AMQP and uplink sources)
//	{client-id}  the sender's MQTT client id, or the AMQP container-id of its connection
//	{identity}   the sender's authenticated identity ("" when anonymous)
//	{{ }}        a literal brace
//
// A placeholder the source cannot supply is a compile error ("template uses {site} which the
// pattern does not capture"). In mqtt and amqp destinations the literal text may not hold + or #
// or an empty level (except a leading "/"), and {#}, {topic} and {address}, which expand to
// several levels, must be whole levels. When {#} matched nothing, it takes its separator with it:
// "out/{#}" renders "out", "x/{#}/y" renders "x/y".
//
// # Injection safety
//
// Captured text comes from senders. Rendering refuses it, with an error wrapping
// ErrUnsafeCapture, never by publishing somewhere else, when in a topic or address it
//
//   - holds + or # (a wildcard; an AMQP address can hold them: commands/+), or * on an uplink;
//   - holds NUL, a control character (U+0001–U+001F, U+007F–U+009F) or invalid UTF-8;
//   - is a single-level value ({name}, {client-id}, {identity}) holding /, which would add levels
//     (a client id "a/b" in devices/{client-id}/x);
//   - is empty and alone in its level, which would make an empty level (an anonymous sender's
//     {identity}, a capture of "devices//x");
//   - would make the whole topic or address start with $ when the template does not;
//   - makes an MQTT topic longer than 65535 bytes, or an empty result.
//
// Multi-level values ({#}, {topic}, {address}) copy the source's own levels, empty ones included,
// so the transparent routes carry "/a" and "a//b" unchanged. Property values are checked for what
// their type allows (UTF-8; ASCII for symbols; no NUL in MQTT strings; address rules for to,
// reply-to and response-topic); a property or application-property that renders empty is left
// out rather than refused.
//
// # Uplink separators
//
// With separator: "." an uplink address uses . between levels (RabbitMQ topic routing keys,
// Artemis addresses). In a destination, literal text is written as given; each single-level value
// is escaped (% → %25, . → %2E) so that it stays one word, and a multi-level value's / become .
// with each level escaped:
//
//	from: {mqtt: "devices/{d}/#"}
//	to:   {uplink: backend, address: "/exchanges/amq.topic/{d}.{#}", separator: "."}
//	devices/v1.2/temp/max  →  /exchanges/amq.topic/v1%2E2.temp.max
//
// In a source, the pattern's levels are split at . and captures are unescaped, {#} and {address}
// turned back into /-separated topic form, so that templates always see MQTT levels
// (TopicToKey, KeyToTopic, EscapeLevel, UnescapeLevel; the translation round-trips).
//
// # Delivery (SPEC §5.4)
//
// Resolve gives each destination its Policy. delivery: auto follows the sender: MQTT QoS 0, 1, 2
// become pre-settled, unsettled with rcv-settle-mode first, and unsettled with rcv-settle-mode
// second; AMQP pre-settled and unsettled transfers become MQTT QoS 0 and 1, or the route's qos.
// An explicit delivery sets the guarantee from the gateway on, whatever the sender used. The
// sender is answered at once for at-most-once, otherwise when the destination has the message;
// with several routes, when every destination has it.
//
// # Properties and payload (SPEC §5.5)
//
// MQTTToAMQP and AMQPToMQTT document the field-by-field translation, AppendJSON the JSON form of
// AMQP values. An AMQP message that goes to another AMQP destination keeps its bare message byte
// for byte (ForwardAMQP; AMQP 1.0 §3.2), so an AMQP-to-AMQP route cannot set properties. Route
// properties and application-properties are applied after the translation and win over it,
// including over device-id. Property names are AMQP's for AMQP and uplink destinations (subject,
// to, reply-to, correlation-id, content-type, content-encoding, group-id, reply-to-group-id) and
// MQTT 5's for MQTT destinations (content-type, response-topic, correlation-data);
// application-properties become user properties there, replacing the key's earlier values. When
// a route does not write retain, an MQTT publish keeps the source's flag: the MQTT retain flag, or
// the AMQP message-annotation x-opt-retain.
//
// # Outcomes (SPEC §5.4)
//
// ReasonCode maps every AMQP error condition to the MQTT 5 reason code of a negative PUBACK or
// PUBREC (0x87 amqp:unauthorized-access, 0x97 amqp:resource-limit-exceeded, 0x80 otherwise);
// MQTTAck decides between acknowledging, retrying (released, modified), waiting, and, for MQTT
// 3.1.1, which has no negative acknowledgement, closing the connection.
//
// # Dry run
//
// Router.Explain runs a probe topic or address through the routes for `isthmus route` and returns
// what each route makes of it; Explanation.String is the text the command prints.
package mapping
