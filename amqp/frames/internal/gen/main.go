// Command gen generates the AMQP 1.0 composite types of package frames from the
// OASIS XML definitions shipped by Debian's amqp-specs package
// (/usr/share/amqp/specs/1-0/*.xml).
//
// It is run by `go generate` in amqp/frames and writes three files that are
// committed, so that building isthmus never needs the XML:
//
//	zz_generated_spec.go   the spec tables: every type, descriptor, field and definition as read
//	zz_generated_types.go  descriptor and enum constants, the Go structs with their field docs
//	zz_generated_codec.go  per-type field encoders and decoders (list position = field index)
//
// The bare XML carries no prose, so field docs state what the XML states (type, mandatory, multiple,
// default, requires) plus a one-line summary kept in this file (notes), citing the spec section.
package main

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

type xAMQP struct {
	Name     string     `xml:"name,attr"`
	Sections []xSection `xml:"section"`
}

type xSection struct {
	Name        string        `xml:"name,attr"`
	Types       []xType       `xml:"type"`
	Definitions []xDefinition `xml:"definition"`
}

type xType struct {
	Name       string       `xml:"name,attr"`
	Class      string       `xml:"class,attr"`
	Source     string       `xml:"source,attr"`
	Provides   string       `xml:"provides,attr"`
	Descriptor *xDescriptor `xml:"descriptor"`
	Fields     []xField     `xml:"field"`
	Choices    []xChoice    `xml:"choice"`
}

type xDescriptor struct {
	Name string `xml:"name,attr"`
	Code string `xml:"code,attr"`
}

type xField struct {
	Name      string `xml:"name,attr"`
	Type      string `xml:"type,attr"`
	Mandatory string `xml:"mandatory,attr"`
	Multiple  string `xml:"multiple,attr"`
	Default   string `xml:"default,attr"`
	Requires  string `xml:"requires,attr"`
}

type xChoice struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xDefinition struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// typ is one <type> with its part and section, the descriptor code parsed.
type typ struct {
	xType
	Part, Section string
	Code          uint64
}

// parts are generated in this order; types.bare.xml only holds primitives, which
// belong to amqp/encoding.
var parts = []string{"transport", "messaging", "security", "transactions"}

func main() {
	dir := flag.String("spec", "/usr/share/amqp/specs/1-0", "directory holding the AMQP 1.0 *.bare.xml files")
	out := flag.String("out", ".", "output directory (the frames package)")
	flag.Parse()

	var types []typ
	type def struct{ Part, Name, Value string }
	var defs []def
	for _, p := range parts {
		raw, err := os.ReadFile(filepath.Join(*dir, p+".bare.xml"))
		if err != nil {
			log.Fatalf("gen: %v (install Debian package amqp-specs)", err)
		}
		var doc xAMQP
		if err := xml.Unmarshal(raw, &doc); err != nil {
			log.Fatalf("gen: %s: %v", p, err)
		}
		for _, s := range doc.Sections {
			for _, t := range s.Types {
				tt := typ{xType: t, Part: p, Section: s.Name}
				if t.Descriptor != nil {
					tt.Code = parseCode(t.Descriptor.Code)
				}
				types = append(types, tt)
			}
			for _, d := range s.Definitions {
				defs = append(defs, def{p, d.Name, d.Value})
			}
		}
	}

	// Spec tables.
	var g gen
	g.header()
	g.p("// specTypes is every type of the transport, messaging, security and transactions parts,")
	g.p("// in XML order, exactly as the XML states it. Tests cross-check it against the XML when present.")
	g.p("var specTypes = [...]specType{")
	for _, t := range types {
		g.p("{part: %q, section: %q, name: %q, class: %q, source: %q, provides: %q,", t.Part, t.Section, t.Name, t.Class, t.Source, t.Provides)
		if t.Descriptor != nil {
			g.p("descriptor: %q, code: %#x,", t.Descriptor.Name, t.Code)
		}
		if len(t.Fields) > 0 {
			g.p("fields: []specField{")
			for _, f := range t.Fields {
				g.p("{name: %q, typ: %q, mandatory: %v, multiple: %v, def: %q, requires: %q},",
					f.Name, f.Type, f.Mandatory == "true", f.Multiple == "true", f.Default, f.Requires)
			}
			g.p("},")
		}
		if len(t.Choices) > 0 {
			g.p("choices: []specChoice{")
			for _, c := range t.Choices {
				g.p("{name: %q, value: %q},", c.Name, c.Value)
			}
			g.p("},")
		}
		g.p("},")
	}
	g.p("}")
	g.p("")
	g.p("// specDefinitions are the <definition> constants of the XML.")
	g.p("var specDefinitions = [...]specDefinition{")
	for _, d := range defs {
		g.p("{part: %q, name: %q, value: %q},", d.Part, d.Name, d.Value)
	}
	g.p("}")
	g.write(filepath.Join(*out, "zz_generated_spec.go"))

	// Types: constants, enums, structs.
	g = gen{}
	g.header()
	g.p("import \"strconv\"")
	g.p("")
	g.p("// Descriptor codes (domain 0x00000000) of every described type, AMQP 1.0 §1.5.")
	g.p("const (")
	for _, t := range types {
		if t.Descriptor == nil {
			continue
		}
		g.p("Descriptor%s uint64 = %#04x // %s, %s", goTypeName(t.Name), t.Code, t.Descriptor.Name, section(t.Name))
	}
	g.p(")")
	g.p("")
	g.p("// Constant definitions of the XML.")
	g.p("const (")
	for _, d := range defs {
		g.p("%s = %s // %s %s", defName(d.Name), d.Value, d.Part, d.Name)
	}
	g.p(")")
	g.p("")
	for _, t := range types {
		if len(t.Choices) == 0 {
			continue
		}
		g.enum(t)
	}
	for _, t := range types {
		if t.Class != "composite" {
			continue
		}
		g.composite(t)
	}
	g.write(filepath.Join(*out, "zz_generated_types.go"))

	// Codec.
	g = gen{}
	g.header()
	g.p("import \"github.com/isthmus-iot/isthmus/amqp/encoding\"")
	g.p("")
	g.p("// descriptorName returns the symbolic descriptor of a known code, AMQP 1.0 §1.5.")
	g.p("func descriptorName(code uint64) string {")
	g.p("switch code {")
	for _, t := range types {
		if t.Descriptor != nil {
			g.p("case %#04x: return %q", t.Code, t.Descriptor.Name)
		}
	}
	g.p("}")
	g.p("return \"\"")
	g.p("}")
	g.p("")
	g.p("// descriptorCode maps a symbolic descriptor to its code: decoders accept both forms, AMQP 1.0 §1.5.")
	g.p("func descriptorCode(name string) (uint64, bool) {")
	g.p("switch name {")
	for _, t := range types {
		if t.Descriptor != nil {
			g.p("case %q: return %#04x, true", t.Descriptor.Name, t.Code)
		}
	}
	g.p("}")
	g.p("return 0, false")
	g.p("}")
	g.p("")
	g.p("// newComposite returns a new value of the composite type with the given descriptor, or nil.")
	g.p("func newComposite(code uint64) compositeDecoder {")
	g.p("switch code {")
	for _, t := range types {
		if t.Class == "composite" {
			g.p("case Descriptor%s: return new(%s)", goTypeName(t.Name), goTypeName(t.Name))
		}
	}
	g.p("}")
	g.p("return nil")
	g.p("}")
	g.p("")
	for _, t := range types {
		if t.Class == "composite" {
			g.codec(t)
		}
	}
	g.write(filepath.Join(*out, "zz_generated_codec.go"))
}

func parseCode(s string) uint64 {
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		log.Fatalf("gen: descriptor code %q is not domain:id", s)
	}
	h, err1 := strconv.ParseUint(strings.TrimPrefix(hi, "0x"), 16, 32)
	l, err2 := strconv.ParseUint(strings.TrimPrefix(lo, "0x"), 16, 32)
	if err1 != nil || err2 != nil {
		log.Fatalf("gen: descriptor code %q: %v %v", s, err1, err2)
	}
	return h<<32 | l
}

type gen struct{ buf bytes.Buffer }

func (g *gen) p(format string, args ...any) {
	fmt.Fprintf(&g.buf, format, args...)
	g.buf.WriteByte('\n')
}

func (g *gen) header() {
	g.p("// Code generated by go run ./internal/gen from the AMQP 1.0 XML (Debian amqp-specs); DO NOT EDIT.")
	g.p("")
	g.p("package frames")
	g.p("")
}

func (g *gen) write(path string) {
	src, err := format.Source(g.buf.Bytes())
	if err != nil {
		os.WriteFile(path+".broken", g.buf.Bytes(), 0o644)
		log.Fatalf("gen: %s: %v", path, err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// initialisms follow Go naming: container-id → ContainerID.
var initialisms = map[string]string{"id": "ID", "sasl": "SASL", "ttl": "TTL", "amqp": "AMQP", "ok": "OK", "tls": "TLS"}

func camel(s string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == ':' || r == '_' }) {
		w = strings.ToLower(w)
		if i, ok := initialisms[w]; ok {
			b.WriteString(i)
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// typeNames rename the few types whose plain name would collide with frame-level names
// (Header is the frame header of §2.3.1).
var typeNames = map[string]string{"header": "MessageHeader", "properties": "MessageProperties"}

func goTypeName(name string) string {
	if n, ok := typeNames[name]; ok {
		return n
	}
	return camel(name)
}

var defNames = map[string]string{"MAJOR": "AMQPMajor", "MINOR": "AMQPMinor", "REVISION": "AMQPRevision"}

func defName(n string) string {
	if d, ok := defNames[n]; ok {
		return d
	}
	return camel(n)
}

// sections are the spec sections where each type is defined, for doc comments.
var sections = map[string]string{
	"open": "2.7.1", "begin": "2.7.2", "attach": "2.7.3", "flow": "2.7.4", "transfer": "2.7.5",
	"disposition": "2.7.6", "detach": "2.7.7", "end": "2.7.8", "close": "2.7.9",
	"role": "2.8.1", "sender-settle-mode": "2.8.2", "receiver-settle-mode": "2.8.3", "handle": "2.8.4",
	"seconds": "2.8.5", "milliseconds": "2.8.6", "delivery-tag": "2.8.7", "delivery-number": "2.8.8",
	"transfer-number": "2.8.9", "sequence-no": "2.8.10", "message-format": "2.8.11", "ietf-language-tag": "2.8.12",
	"fields": "2.8.13", "error": "2.8.14", "amqp-error": "2.8.15", "connection-error": "2.8.16",
	"session-error": "2.8.17", "link-error": "2.8.18",
	"header": "3.2.1", "delivery-annotations": "3.2.2", "message-annotations": "3.2.3", "properties": "3.2.4",
	"application-properties": "3.2.5", "data": "3.2.6", "amqp-sequence": "3.2.7", "amqp-value": "3.2.8",
	"footer": "3.2.9", "annotations": "3.2.10", "message-id-ulong": "3.2.11", "message-id-uuid": "3.2.12",
	"message-id-binary": "3.2.13", "message-id-string": "3.2.14", "address-string": "3.2.15",
	"received": "3.4.1", "accepted": "3.4.2", "rejected": "3.4.3", "released": "3.4.4", "modified": "3.4.5",
	"source": "3.5.3", "target": "3.5.4", "terminus-durability": "3.5.5", "terminus-expiry-policy": "3.5.6",
	"std-dist-mode": "3.5.7", "filter-set": "3.5.8", "node-properties": "3.5.9", "delete-on-close": "3.5.10",
	"delete-on-no-links": "3.5.11", "delete-on-no-messages": "3.5.12", "delete-on-no-links-or-messages": "3.5.13",
	"coordinator": "4.5.1", "declare": "4.5.2", "discharge": "4.5.3", "transaction-id": "4.5.4",
	"declared": "4.5.5", "transactional-state": "4.5.6", "txn-capability": "4.5.7", "transaction-error": "4.5.8",
	"sasl-mechanisms": "5.3.3.1", "sasl-init": "5.3.3.2", "sasl-challenge": "5.3.3.3", "sasl-response": "5.3.3.4",
	"sasl-outcome": "5.3.3.5", "sasl-code": "5.3.3.6",
}

func section(name string) string {
	if s, ok := sections[name]; ok {
		return "AMQP 1.0 §" + s
	}
	return "AMQP 1.0"
}

// notes are one-line summaries of the types and fields (the bare XML has no prose).
var notes = map[string]string{
	"open":                                   "negotiates connection parameters; the first frame each peer sends on a connection.",
	"begin":                                  "begins a session on a channel.",
	"attach":                                 "attaches a link to a session.",
	"flow":                                   "updates session flow-control state and, with a handle, link flow-control state.",
	"transfer":                               "carries (part of) a message; the rest of the frame after the performative is payload.",
	"disposition":                            "informs the peer of delivery state changes for a range of deliveries.",
	"detach":                                 "detaches the link endpoint from the session.",
	"end":                                    "ends the session.",
	"close":                                  "signals a connection close; nothing may follow it on the connection.",
	"error":                                  "details of an error condition.",
	"header":                                 "the transport headers of a message (mutable in transit).",
	"properties":                             "the immutable properties of the bare message.",
	"received":                               "the non-terminal state of a partly received delivery, for resumption.",
	"accepted":                               "the terminal outcome: the message was processed successfully.",
	"rejected":                               "the terminal outcome: the message is invalid and cannot be processed.",
	"released":                               "the terminal outcome: the message was not (and will not be) processed.",
	"modified":                               "the terminal outcome: the message was modified but not processed.",
	"source":                                 "the source terminus of a link.",
	"target":                                 "the target terminus of a link.",
	"delete-on-close":                        "lifetime policy: delete the dynamic node when the creating link closes.",
	"delete-on-no-links":                     "lifetime policy: delete the dynamic node when it has no links.",
	"delete-on-no-messages":                  "lifetime policy: delete the dynamic node when it holds no messages.",
	"delete-on-no-links-or-messages":         "lifetime policy: delete the dynamic node when it has neither links nor messages.",
	"sasl-mechanisms":                        "advertises the server's SASL mechanisms.",
	"sasl-init":                              "selects a SASL mechanism and carries the initial response.",
	"sasl-challenge":                         "carries a SASL challenge.",
	"sasl-response":                          "carries a SASL response.",
	"sasl-outcome":                           "ends the SASL exchange with its outcome.",
	"coordinator":                            "the target of a transaction controller link.",
	"declare":                                "the amqp-value body that asks the coordinator for a new transaction.",
	"discharge":                              "the amqp-value body that commits (fail=false) or rolls back a transaction.",
	"declared":                               "the outcome of a successful declare, carrying the transaction id.",
	"transactional-state":                    "the delivery state of work done inside a transaction.",
	"open.max-frame-size":                    "largest frame this peer accepts; at least MIN-MAX-FRAME-SIZE (512).",
	"open.channel-max":                       "highest channel number this peer accepts.",
	"open.idle-time-out":                     "idle timeout this peer wants; convention: advertise half the real timeout.",
	"begin.remote-channel":                   "the peer's channel when answering a begin; absent when initiating.",
	"attach.initial-delivery-count":          "mandatory when role is sender.",
	"attach.max-message-size":                "0 or absent: no limit.",
	"attach.unsettled":                       "delivery-tag → delivery-state of unsettled deliveries, for link recovery.",
	"transfer.delivery-id":                   "required on the first transfer of a delivery.",
	"transfer.delivery-tag":                  "required on the first transfer of a delivery; at most 32 bytes.",
	"transfer.message-format":                "required on the first transfer of a delivery; 0 is the standard format.",
	"transfer.more":                          "true on every transfer of a delivery but the last.",
	"transfer.rcv-settle-mode":               "overrides the link's receiver-settle-mode for this delivery.",
	"disposition.last":                       "absent: equal to first.",
	"detach.closed":                          "true closes the link; false suspends it.",
	"source.dynamic":                         "asks the peer to create a node; the address is then absent.",
	"source.filter":                          "named filters (any described type) restricting the messages the source sends.",
	"source.outcomes":                        "descriptors of the outcomes the source supports.",
	"target.dynamic":                         "asks the peer to create a node; the address is then absent.",
	"header.priority":                        "absent means 4.",
	"header.ttl":                             "time to live in milliseconds.",
	"sasl-init.initial-response":             "PLAIN: authzid NUL authcid NUL passwd.",
	"sasl-init.hostname":                     "the virtual host the client wants.",
	"modified.message-annotations":           "annotations to merge into the message's message-annotations.",
	"discharge.fail":                         "true rolls the transaction back.",
	"transactional-state.outcome":            "the provisional outcome of the delivery inside the transaction.",
	"sasl-mechanisms.sasl-server-mechanisms": "the mechanisms offered, in order of preference.",
}

// kind says how a field is represented and coded.
type kind struct {
	name   string // helper suffix used by the listReader/listWriter methods
	goType string
	ref    bool // nil-able Go type: absent is nil, no Optional wrapper
}

var kinds = map[string]kind{
	"Bool":                 {"Bool", "bool", false},
	"Uint8":                {"Uint8", "uint8", false},
	"Uint16":               {"Uint16", "uint16", false},
	"Uint32":               {"Uint32", "uint32", false},
	"Uint64":               {"Uint64", "uint64", false},
	"String":               {"String", "string", false},
	"Symbol":               {"Symbol", "Symbol", false},
	"Symbols":              {"Symbols", "[]Symbol", true},
	"Binary":               {"Binary", "[]byte", true},
	"DeliveryTag":          {"DeliveryTag", "[]byte", true},
	"Timestamp":            {"Timestamp", "Timestamp", false},
	"Fields":               {"Fields", "Fields", true},
	"Unsettled":            {"Unsettled", "Unsettled", true},
	"FilterSet":            {"FilterSet", "FilterSet", true},
	"Role":                 {"Role", "Role", false},
	"SenderSettleMode":     {"SenderSettleMode", "SenderSettleMode", false},
	"ReceiverSettleMode":   {"ReceiverSettleMode", "ReceiverSettleMode", false},
	"SASLCode":             {"SASLCode", "SASLCode", false},
	"TerminusDurability":   {"TerminusDurability", "TerminusDurability", false},
	"TerminusExpiryPolicy": {"TerminusExpiryPolicy", "TerminusExpiryPolicy", false},
	"Error":                {"Error", "*Error", true},
	"Source":               {"Source", "*Source", true},
	"Target":               {"Target", "LinkTarget", true},
	"DeliveryState":        {"DeliveryState", "DeliveryState", true},
	"Outcome":              {"Outcome", "Outcome", true},
	"MessageID":            {"MessageID", "any", true},
	"Address":              {"Address", "string", false},
	"TxnID":                {"Binary", "[]byte", true},
	"Value":                {"Value", "any", true},
}

// fieldKind maps an XML field type (and requires, for "*") to its kind. Restricted
// types of the XML resolve to their source here; a new type in the XML stops the generator.
func fieldKind(f xField) kind {
	multiple := f.Multiple == "true"
	var k string
	switch f.Type {
	case "boolean":
		k = "Bool"
	case "ubyte":
		k = "Uint8"
	case "ushort":
		k = "Uint16"
	case "uint", "handle", "seconds", "milliseconds", "sequence-no", "delivery-number", "transfer-number", "message-format":
		k = "Uint32"
	case "ulong":
		k = "Uint64"
	case "string":
		k = "String"
	case "symbol", "ietf-language-tag":
		k = "Symbol"
		if multiple {
			k = "Symbols"
		}
	case "binary":
		k = "Binary"
	case "delivery-tag":
		k = "DeliveryTag"
	case "timestamp":
		k = "Timestamp"
	case "fields", "node-properties":
		k = "Fields"
	case "map":
		k = "Unsettled" // attach.unsettled is the only plain map field
	case "filter-set":
		k = "FilterSet"
	case "role", "sender-settle-mode", "receiver-settle-mode", "sasl-code", "terminus-durability", "terminus-expiry-policy":
		k = camel(f.Type)
		if f.Type == "sasl-code" {
			k = "SASLCode"
		}
	case "error":
		k = "Error"
	case "*":
		switch f.Requires {
		case "source":
			k = "Source"
		case "target":
			k = "Target"
		case "delivery-state":
			k = "DeliveryState"
		case "outcome":
			k = "Outcome"
		case "message-id":
			k = "MessageID"
		case "address":
			k = "Address"
		case "txn-id":
			k = "TxnID"
		case "global-tx-id":
			k = "Value"
		}
	}
	if multiple && k != "Symbols" {
		log.Fatalf("gen: multiple field %s of type %s is not handled", f.Name, f.Type)
	}
	kk, ok := kinds[k]
	if !ok {
		log.Fatalf("gen: field %s: no kind for type %q requires %q", f.Name, f.Type, f.Requires)
	}
	return kk
}

// defaultExpr is the Go expression of a field's XML default.
func defaultExpr(f xField, k kind) string {
	switch k.name {
	case "Bool":
		return f.Default // true / false
	case "Uint8", "Uint16", "Uint32", "Uint64":
		if _, err := strconv.ParseUint(f.Default, 10, 64); err != nil {
			log.Fatalf("gen: default %q of %s", f.Default, f.Name)
		}
		return f.Default
	case "SenderSettleMode", "ReceiverSettleMode", "TerminusDurability", "TerminusExpiryPolicy":
		return k.goType + camel(f.Default)
	}
	log.Fatalf("gen: field %s: default %q for kind %s not handled", f.Name, f.Default, k.name)
	return ""
}

// enumTypes become named Go types; the other choice sets become untyped constants.
var enumTypes = map[string]string{
	"role": "bool", "sender-settle-mode": "uint8", "receiver-settle-mode": "uint8", "sasl-code": "uint8",
	"terminus-durability": "uint32", "terminus-expiry-policy": "Symbol",
}

func (g *gen) enum(t typ) {
	name := goTypeName(t.Name)
	if t.Name == "sasl-code" {
		name = "SASLCode"
	}
	base, named := enumTypes[t.Name]
	if named {
		g.p("// %s is the %s restricted type (%s): %s.", name, t.Name, t.Source, section(t.Name))
		g.p("type %s %s", name, base)
		g.p("")
	} else {
		g.p("// Choices of %s (%s, provides %s): %s.", t.Name, t.Source, t.Provides, section(t.Name))
	}
	g.p("const (")
	for _, c := range t.Choices {
		cn := name + camel(c.Name)
		switch {
		case strings.HasSuffix(t.Name, "-error"):
			// amqp:connection:forced → CondConnectionForced: unique across the error sets.
			cn = "Cond" + camel(strings.TrimPrefix(c.Value, "amqp:"))
		case t.Name == "txn-capability":
			cn = "TxnCapability" + camel(c.Name)
		}
		val := c.Value
		switch base {
		case "bool":
		case "uint8", "uint32":
		default:
			val = strconv.Quote(val)
		}
		if named {
			g.p("%s %s = %s", cn, name, val)
		} else {
			g.p("%s Symbol = %s", cn, val)
		}
	}
	g.p(")")
	g.p("")
	if named {
		g.p("func (v %s) String() string {", name)
		g.p("switch v {")
		for _, c := range t.Choices {
			g.p("case %s: return %q", name+camel(c.Name), c.Name)
		}
		g.p("}")
		switch base {
		case "bool":
			g.p("return \"?\"")
		case "Symbol":
			g.p("return string(v)")
		default:
			g.p("return %q + strconv.FormatUint(uint64(v), 10) + \")\"", t.Name+"(")
		}
		g.p("}")
		g.p("")
	}
}

// provides maps XML archetypes to the marker methods of the Go interfaces.
var provides = map[string]string{
	"delivery-state": "isDeliveryState", "outcome": "isOutcome", "target": "isLinkTarget",
	"lifetime-policy": "isLifetimePolicy", "frame": "isPerformative", "sasl-frame": "isSASLFrame",
	"section": "isSection",
}

func fieldComment(t typ, f xField) string {
	var parts []string
	parts = append(parts, f.Type)
	if f.Requires != "" {
		parts = append(parts, "requires "+f.Requires)
	}
	if f.Mandatory == "true" {
		parts = append(parts, "mandatory")
	}
	if f.Multiple == "true" {
		parts = append(parts, "multiple (one value or an array)")
	}
	if f.Default != "" {
		parts = append(parts, "default "+f.Default+" (applied on decode; not sent when equal)")
	}
	s := strings.Join(parts, ", ") + "."
	if n, ok := notes[t.Name+"."+f.Name]; ok {
		s += " " + strings.ToUpper(n[:1]) + n[1:]
	}
	return s
}

func (g *gen) composite(t typ) {
	name := goTypeName(t.Name)
	note := notes[t.Name]
	g.p("// %s is %s (%s, code %#04x), %s:", name, t.Name, t.Descriptor.Name, t.Code, section(t.Name))
	if note != "" {
		g.p("// %s", note)
	}
	g.p("type %s struct {", name)
	for i, f := range t.Fields {
		k := fieldKind(f)
		fn := camel(f.Name)
		goType := k.goType
		if !k.ref && f.Mandatory != "true" && f.Default == "" {
			goType = "Optional[" + goType + "]"
		}
		if i > 0 {
			g.p("")
		}
		g.p("// %s is field %d, %s: %s", fn, i, f.Name, fieldComment(t, f))
		g.p("%s %s", fn, goType)
	}
	g.p("}")
	g.p("")
	g.p("// Descriptor returns %s.", "Descriptor"+name)
	g.p("func (*%s) Descriptor() uint64 { return Descriptor%s }", name, name)
	g.p("")
	for _, pr := range strings.Split(t.Provides, ",") {
		pr = strings.TrimSpace(pr)
		if m, ok := provides[pr]; ok {
			g.p("func (*%s) %s() {}", name, m)
		}
	}
	g.p("")
	// reset sets the zero value with the XML defaults, the state before a decode.
	var defs []string
	for _, f := range t.Fields {
		if f.Default == "" {
			continue
		}
		k := fieldKind(f)
		d := defaultExpr(f, k)
		if d == "false" || d == "0" {
			continue
		}
		defs = append(defs, fmt.Sprintf("%s: %s", camel(f.Name), d))
	}
	g.p("// Reset sets every field to its absent value: zero, or the XML default where one is given.")
	g.p("func (x *%s) Reset() { *x = %s{%s} }", name, name, strings.Join(defs, ", "))
	g.p("")
}

func (g *gen) codec(t typ) {
	name := goTypeName(t.Name)
	g.p("// Encode appends x as a described list (descriptor %#04x, %s), omitting trailing absent", t.Code, t.Descriptor.Name)
	g.p("// fields (AMQP 1.0 Part 1 §1.4). It fails only on values that cannot be encoded (see encoding.AppendValue).")
	g.p("func (x *%s) Encode(b []byte) ([]byte, error) {", name)
	g.p("w := beginComposite(b, Descriptor%s)", name)
	g.p("x.appendFields(&w)")
	g.p("return w.end()")
	g.p("}")
	g.p("")
	g.p("// Decode decodes x from the described value at the start of b, whose descriptor may be numeric")
	g.p("// or symbolic, and returns the number of bytes it used. Absent fields get their defaults; a missing")
	g.p("// mandatory field or a malformed one is a *DecodeError naming the field. Binary fields alias b.")
	g.p("func (x *%s) Decode(b []byte) (int, error) {", name)
	g.p("r := encoding.NewReader(b)")
	g.p("if err := x.decodeFrom(&r); err != nil { return 0, err }")
	g.p("return r.Offset(), nil")
	g.p("}")
	g.p("")
	g.p("func (x *%s) decodeFrom(r *encoding.Reader) error {", name)
	g.p("l, err := openComposite(r, Descriptor%s, %q, %q)", name, t.Descriptor.Name, t.Name)
	g.p("if err != nil { return err }")
	g.p("x.Reset()")
	g.p("return x.decodeFields(&l)")
	g.p("}")
	g.p("")
	if len(t.Fields) == 0 {
		g.p("func (x *%s) appendFields(w *listWriter) {}", name)
		g.p("func (x *%s) decodeFields(r *listReader) error { return nil }", name)
		g.p("")
		return
	}
	g.p("func (x *%s) appendFields(w *listWriter) {", name)
	for _, f := range t.Fields {
		k := fieldKind(f)
		fn := "x." + camel(f.Name)
		switch {
		case f.Mandatory == "true" && k.name == "Symbols":
			// An empty array would read as null: refuse rather than send an invalid frame.
			g.p("w.putRequiredSymbols(%s, %q)", fn, f.Name)
		case f.Mandatory == "true":
			g.p("w.put%s(%s)", k.name, fn)
		case f.Default != "":
			d := defaultExpr(f, k)
			cond := fmt.Sprintf("%s != %s", fn, d)
			if k.name == "TerminusExpiryPolicy" {
				cond += fmt.Sprintf(" && %s != \"\"", fn)
			}
			if k.name == "Bool" && d == "false" {
				cond = fn
			}
			g.p("if %s { w.put%s(%s) } else { w.putNull() }", cond, k.name, fn)
		case k.ref:
			cond := fn + " != nil"
			if k.name == "Symbols" {
				cond = "len(" + fn + ") != 0"
			}
			g.p("if %s { w.put%s(%s) } else { w.putNull() }", cond, k.name, fn)
		default:
			g.p("if %s.Valid { w.put%s(%s.V) } else { w.putNull() }", fn, k.name, fn)
		}
	}
	g.p("}")
	g.p("")
	g.p("func (x *%s) decodeFields(r *listReader) error {", name)
	for i, f := range t.Fields {
		k := fieldKind(f)
		fn := "x." + camel(f.Name)
		g.p("// %d: %s", i, f.Name)
		g.p("if v, ok, err := r.get%s(%q); err != nil {", k.name, f.Name)
		g.p("return err")
		switch {
		case f.Mandatory == "true":
			g.p("} else if !ok {")
			g.p("return r.missing(%q)", f.Name)
			g.p("} else {")
			g.p("%s = v", fn)
		case f.Default != "" || k.ref:
			g.p("} else if ok {")
			g.p("%s = v", fn)
		default:
			g.p("} else if ok {")
			g.p("%s = Optional[%s]{V: v, Valid: true}", fn, k.goType)
		}
		g.p("}")
	}
	g.p("return nil")
	g.p("}")
	g.p("")
}
