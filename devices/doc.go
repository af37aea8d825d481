// Package devices is the registry of identities of SPEC §7: who may log in
// (bcrypt passwords, TLS client certificates) and what each identity may
// publish and subscribe to (ACL patterns).
//
// # The devices file
//
//	devices:
//	  - id: sensor-42
//	    password: "$2a$10$…"              # bcrypt ($2a$, $2b$, $2y$) from `isthmus passwd`
//	    cert_cn: sensor-42                 # optional: log in by TLS client certificate
//	    enabled: true                      # optional, default true
//	    publish:   ["devices/{id}/#"]
//	    subscribe: ["devices/{id}/commands/#"]
//	    labels: {site: plant-1}
//	anonymous:                             # optional: clients without credentials (auth.anonymous)
//	  publish: [...]
//	  subscribe: [...]
//
// Parse is strict and reports every problem at once as
// FILE:LINE:COL: devices[2].password: message. Ids are MQTT user names and
// are substituted for {id} in patterns, so they may not hold / + # $, white
// space, control characters or NUL, nor exceed 256 bytes. Plaintext
// passwords are refused. The file is not ${VAR}-expanded: hashes contain $.
// A Registry is an immutable snapshot; a reload parses a new one, and Diff
// names the ids whose connections must be closed.
//
// # ACL semantics
//
// Patterns are MQTT topic filters [MQTT-4.7], with {id} replaced by the
// device's id (the only placeholder). A pattern list grants the union of its
// patterns; an absent or empty list grants nothing.
//
// A topic name T (an MQTT PUBLISH topic, an AMQP target address, a topic
// delivered to a subscriber) is allowed if some pattern matches it by the
// MQTT rules: + matches exactly one level (which may be empty), # matches any
// number of levels including none (a/# matches a), levels are compared
// exactly. One exception keeps the broker's own topics apart: a pattern
// whose first level is + or # never matches a topic whose first level starts
// with $ ($SYS/…, $events/…) [MQTT-4.7.2-1]; those need a pattern with an
// explicit $ first level, such as $SYS/isthmus/#. A name holding + or # is a
// filter, not a name, and is refused.
//
// A topic filter F (an MQTT SUBSCRIBE, an AMQP receiver's source address) is
// allowed only if every topic F can match is allowed: `#` is not a way
// around a prefix. This is decided by finding one pattern P that covers F,
// level by level:
//   - a # in P covers the rest of F, including no level (a/# covers a);
//   - a # in F needs a # in P;
//   - a + in F needs a + (or #) in P;
//   - a literal level in F needs the same literal or a + (or #) in P;
//   - both must end together, unless P ends with #.
//
// A $-first-level F is not covered by a P whose first level is a wildcard,
// as above. A shared subscription $share/GROUP/F is checked as F; a
// malformed one is refused. The check is sound, not complete: a filter that
// only the union of several patterns covers (F = a/# with P = a and a/+/#)
// is refused, which fails closed.
//
// AllowsTopic and AllowsFilter do not allocate: they run on every publish
// and every delivery.
package devices
