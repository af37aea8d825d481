package frames

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/isthmus-iot/isthmus/amqp/encoding"
)

// hx turns an annotated hex dump into bytes: on each line, text after '#' is a comment, and
// "quoted" text stands for its ASCII bytes.
func hx(s string) []byte {
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for line != "" {
			line = strings.TrimLeft(line, " \t")
			if line == "" {
				break
			}
			if line[0] == '"' {
				end := strings.IndexByte(line[1:], '"')
				out = append(out, line[1:end+1]...)
				line = line[end+2:]
				continue
			}
			tok, rest, _ := strings.Cut(line, " ")
			b, err := hex.DecodeString(tok)
			if err != nil {
				panic("hx: " + tok + ": " + err.Error())
			}
			out = append(out, b...)
			line = rest
		}
	}
	return out
}

// mk returns a composite reset to its defaults and then set up by set.
func mk[T any, P interface {
	*T
	Reset()
}](set func(P)) P {
	p := P(new(T))
	p.Reset()
	set(p)
	return p
}

type vector struct {
	name      string
	bytes     string    // annotated hex, see hx
	want      Composite // what the bytes decode to
	canonical bool      // Encode(want) gives exactly these bytes
}

// Byte vectors written from the spec: AMQP 1.0 Part 1 §1.6 for the encodings, §2.7 for the
// performatives, §3.4 for the delivery states, §4.5 for transactions, §5.3.3 for SASL.
var vectors = []vector{
	{"open", `
		00 53 10                   # described: ulong 0x10 = amqp:open:list (§2.7.1)
		c0 41 0a                   # list8, size 65, 10 fields
		a1 02 "c1"                 # 0 container-id: str8 "c1"
		a1 01 "h"                  # 1 hostname: str8 "h"
		70 00 01 00 00             # 2 max-frame-size: uint 65536
		60 00 ff                   # 3 channel-max: ushort 255
		70 00 00 75 30             # 4 idle-time-out: uint 30000 ms
		40                         # 5 outgoing-locales: null
		40                         # 6 incoming-locales: null
		e0 12 01 a3 0f "ANONYMOUS-RELAY"  # 7 offered-capabilities: array8 of 1 sym8
		40                         # 8 desired-capabilities: null
		c1 13 02 a3 07 "product" a1 07 "isthmus"  # 9 properties: map8 {:product "isthmus"}
		`, mk(func(o *Open) {
		o.ContainerID, o.Hostname, o.MaxFrameSize, o.ChannelMax = "c1", Some("h"), 65536, 255
		o.IdleTimeOut = Some[uint32](30000)
		o.OfferedCapabilities = []Symbol{"ANONYMOUS-RELAY"}
		o.Properties = Fields{{Key: Symbol("product"), Value: "isthmus"}}
	}), true},
	{"open defaults", `
		00 53 10 c0 04 01          # open, list8 of 1 field: only the mandatory container-id
		a1 01 "x"                  # container-id "x"; max-frame-size → 4294967295, channel-max → 65535
		`, mk(func(o *Open) { o.ContainerID = "x" }), true},
	{"open symbolic list32 single-symbol", `
		00 a3 0e "amqp:open:list"  # symbolic descriptor (Part 1 §1.5)
		d0 00 00 00 10 00 00 00 08 # list32, size 16, 8 fields
		a1 01 "x"                  # container-id
		40 40 40 40 40 40          # hostname … incoming-locales: null
		a3 01 "A"                  # offered-capabilities: one symbol, not an array (multiple="true")
		`, mk(func(o *Open) { o.ContainerID, o.OfferedCapabilities = "x", []Symbol{"A"} }), false},
	{"begin", `
		00 53 11 c0 11 05          # amqp:begin:list, list8 size 17, 5 fields (§2.7.2)
		60 00 01                   # remote-channel: ushort 1
		43                         # next-outgoing-id: uint0
		70 00 00 13 88             # incoming-window 5000
		70 00 00 13 88             # outgoing-window 5000
		52 ff                      # handle-max: smalluint 255
		`, mk(func(b *Begin) {
		b.RemoteChannel, b.IncomingWindow, b.OutgoingWindow, b.HandleMax = Some[uint16](1), 5000, 5000, 255
	}), true},
	{"begin minimal", `
		00 53 11 c0 07 04          # begin, list8 size 7, 4 fields
		40                         # remote-channel: null (initiating)
		43 52 0a 52 0a             # next-outgoing-id 0, incoming-window 10, outgoing-window 10
		`, mk(func(b *Begin) { b.IncomingWindow, b.OutgoingWindow = 10, 10 }), true},
	{"attach", `
		00 53 12 c0 45 0b          # amqp:attach:list, list8 size 69, 11 fields (§2.7.3)
		a1 01 "l"                  # 0 name "l"
		43                         # 1 handle 0
		41                         # 2 role: true = receiver
		50 01                      # 3 snd-settle-mode: ubyte 1 = settled
		50 01                      # 4 rcv-settle-mode: ubyte 1 = second
		00 53 28 c0 26 08          # 5 source: amqp:source:list, list8 size 38, 8 fields (§3.5.3)
		   a1 01 "q"               #   address "q"
		   40 40 40 40 40          #   durable, expiry-policy, timeout, dynamic, dynamic-node-properties
		   a3 04 "copy"            #   distribution-mode :copy
		   c1 15 02                #   filter: map8 size 21, 2 elements (§3.5.8)
		      a3 03 "sel"          #     key :sel
		      00 80 00 00 46 8c 00 00 00 04 a1 03 "a=1"  # apache.org:selector-filter:string "a=1"
		00 53 29 45                # 6 target: amqp:target:list, list0 (all defaults)
		40 40 40                   # 7 unsettled, 8 incomplete-unsettled, 9 initial-delivery-count
		80 00 00 00 00 00 10 00 00 # 10 max-message-size: ulong 1 MiB
		`, mk(func(a *Attach) {
		a.Name, a.Role, a.SndSettleMode, a.RcvSettleMode = "l", RoleReceiver, SenderSettleModeSettled, ReceiverSettleModeSecond
		a.Source = mk(func(s *Source) {
			s.Address, s.DistributionMode = Some("q"), Some[Symbol]("copy")
			s.Filter = FilterSet{{Key: "sel", Value: &encoding.Described{Descriptor: uint64(0x0000468C00000004), Value: "a=1",
				Raw: hx(`00 80 00 00 46 8c 00 00 00 04 a1 03 "a=1"`)}}}
		})
		a.Target = mk(func(*Target) {})
		a.MaxMessageSize = Some[uint64](1 << 20)
	}), true},
	{"flow", `
		00 53 13 c0 13 09          # amqp:flow:list, list8 size 19, 9 fields (§2.7.4)
		52 0a                      # next-incoming-id 10
		70 00 00 08 00             # incoming-window 2048
		52 01                      # next-outgoing-id 1
		52 64                      # outgoing-window 100
		43                         # handle 0
		52 05                      # delivery-count 5
		52 32                      # link-credit 50
		40                         # available: null
		41                         # drain: true
		`, mk(func(f *Flow) {
		f.NextIncomingID, f.IncomingWindow, f.NextOutgoingID, f.OutgoingWindow = Some[uint32](10), 2048, 1, 100
		f.Handle, f.DeliveryCount, f.LinkCredit, f.Drain = Some[uint32](0), Some[uint32](5), Some[uint32](50), true
	}), true},
	{"transfer", `
		00 53 14 c0 0d 06          # amqp:transfer:list, list8 size 13, 6 fields (§2.7.5)
		43                         # handle 0
		52 07                      # delivery-id 7
		a0 04 01 02 03 04          # delivery-tag: vbin8 of 4 bytes
		43                         # message-format 0
		42                         # settled: false
		41                         # more: true
		`, mk(func(t *Transfer) {
		t.DeliveryID, t.DeliveryTag, t.MessageFormat = Some[uint32](7), []byte{1, 2, 3, 4}, Some[uint32](0)
		t.Settled, t.More = Some(false), true
	}), true},
	{"transfer flags and state", `
		00 53 14 c0 11 0b          # transfer, list8 size 17, 11 fields
		52 01                      # handle 1
		40 40 40 40 40             # delivery-id, delivery-tag, message-format, settled, more: null
		50 01                      # rcv-settle-mode: second
		00 53 24 45                # state: accepted (list0)
		41 41 41                   # resume, aborted, batchable: true
		`, mk(func(t *Transfer) {
		t.Handle, t.RcvSettleMode, t.State = 1, Some(ReceiverSettleModeSecond), &Accepted{}
		t.Resume, t.Aborted, t.Batchable = true, true, true
	}), true},
	{"disposition", `
		00 53 15 c0 29 05          # amqp:disposition:list, list8 size 41, 5 fields (§2.7.6)
		41                         # role: receiver
		52 03                      # first 3
		52 09                      # last 9
		41                         # settled: true
		00 53 25 c0 1d 01          # state: amqp:rejected:list, 1 field (§3.4.3)
		   00 53 1d c0 17 02       #   error: amqp:error:list, 2 fields (§2.8.14)
		      a3 0e "amqp:not-found"  # condition
		      a1 04 "gone"         #     description
		`, mk(func(d *Disposition) {
		d.Role, d.First, d.Last, d.Settled = RoleReceiver, 3, Some[uint32](9), true
		d.State = &Rejected{Error: &Error{Condition: CondNotFound, Description: Some("gone")}}
	}), true},
	{"detach", `
		00 53 16 c0 23 03          # amqp:detach:list, list8 size 35, 3 fields (§2.7.7)
		52 02                      # handle 2
		41                         # closed: true
		00 53 1d c0 1a 01 a3 17 "amqp:link:detach-forced"  # error
		`, mk(func(d *Detach) {
		d.Handle, d.Closed, d.Error = 2, true, &Error{Condition: CondLinkDetachForced}
	}), true},
	{"end", `
		00 53 17 45                # amqp:end:list, list0: no error (§2.7.8)
		`, &End{}, true},
	{"close", `
		00 53 18 c0 3e 01          # amqp:close:list, list8 size 62, 1 field (§2.7.9)
		00 53 1d c0 38 03          # error, 3 fields
		   a3 18 "amqp:connection:redirect"
		   40                      # description: null
		   c1 1a 04                # info: map8 size 26, 4 elements
		      a3 08 "hostname" a1 02 "h2"
		      a3 04 "port" 70 00 00 16 29  # uint 5673
		`, &Close{Error: &Error{Condition: CondConnectionRedirect, Info: Fields{
		{Key: Symbol("hostname"), Value: "h2"}, {Key: Symbol("port"), Value: uint32(5673)}}}}, true},
	{"sasl-mechanisms", `
		00 53 40 c0 15 01          # amqp:sasl-mechanisms:list, 1 field (§5.3.3.1)
		e0 12 02 a3 05 "PLAIN" 09 "ANONYMOUS"  # array8 of 2 sym8
		`, &SASLMechanisms{SASLServerMechanisms: []Symbol{"PLAIN", "ANONYMOUS"}}, true},
	{"sasl-mechanisms single", `
		00 53 40 c0 0c 01 a3 09 "ANONYMOUS"  # one symbol instead of an array
		`, &SASLMechanisms{SASLServerMechanisms: []Symbol{"ANONYMOUS"}}, false},
	{"sasl-init", `
		00 53 41 c0 21 03          # amqp:sasl-init:list, 3 fields (§5.3.3.2)
		a3 05 "PLAIN"              # mechanism
		a0 0a 00 "user" 00 "pass"  # initial-response: authzid NUL authcid NUL passwd
		a1 0b "example.com"        # hostname
		`, &SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00user\x00pass"), Hostname: Some("example.com")}, true},
	{"sasl-challenge", `
		00 53 42 c0 04 01 a0 01 "c"  # amqp:sasl-challenge:list (§5.3.3.3)
		`, &SASLChallenge{Challenge: []byte("c")}, true},
	{"sasl-response", `
		00 53 43 c0 04 01 a0 01 "r"  # amqp:sasl-response:list (§5.3.3.4)
		`, &SASLResponse{Response: []byte("r")}, true},
	{"sasl-outcome auth", `
		00 53 44 c0 03 01 50 01    # amqp:sasl-outcome:list, code 1 = auth (§5.3.3.5)
		`, &SASLOutcome{Code: SASLCodeAuth}, true},
	{"sasl-outcome ok", `
		00 53 44 c0 07 02 50 00 a0 02 "ok"  # code ok, additional-data "ok"
		`, &SASLOutcome{Code: SASLCodeOK, AdditionalData: []byte("ok")}, true},
	{"received", `
		00 53 23 c0 05 02 52 02 53 64  # amqp:received:list: section-number 2, section-offset 100 (§3.4.1)
		`, &Received{SectionNumber: 2, SectionOffset: 100}, true},
	{"accepted", `00 53 24 45  # amqp:accepted:list, list0 (§3.4.2)`, &Accepted{}, true},
	{"rejected", `00 53 25 45  # amqp:rejected:list without error (§3.4.3)`, &Rejected{}, true},
	{"released", `00 53 26 45  # amqp:released:list (§3.4.4)`, &Released{}, true},
	{"modified", `
		00 53 27 c0 11 03          # amqp:modified:list, 3 fields (§3.4.5)
		41 42                      # delivery-failed true, undeliverable-here false
		c1 0c 02 a3 07 "x-opt-a" 55 01  # message-annotations {:x-opt-a 1 (smalllong)}
		`, &Modified{DeliveryFailed: Some(true), UndeliverableHere: Some(false),
		MessageAnnotations: Fields{{Key: Symbol("x-opt-a"), Value: int64(1)}}}, true},
	{"declared", `
		00 53 33 c0 06 01 a0 03 "tx1"  # amqp:declared:list, txn-id (§4.5.5)
		`, &Declared{TxnID: []byte("tx1")}, true},
	{"transactional-state", `
		00 53 34 c0 0a 02 a0 03 "tx1" 00 53 24 45  # amqp:transactional-state:list: txn-id, outcome accepted (§4.5.6)
		`, &TransactionalState{TxnID: []byte("tx1"), Outcome: &Accepted{}}, true},
	{"coordinator", `
		00 53 30 c0 1d 01          # amqp:coordinator:list (§4.5.1)
		e0 1a 01 a3 17 "amqp:local-transactions"  # capabilities: array8 of 1 sym8
		`, &Coordinator{Capabilities: []Symbol{TxnCapabilityLocalTransactions}}, true},
	{"declare", `00 53 31 45  # amqp:declare:list, no global-id (§4.5.2)`, &Declare{}, true},
	{"discharge", `
		00 53 32 c0 07 02 a0 03 "tx1" 41  # amqp:discharge:list: txn-id, fail true (§4.5.3)
		`, &Discharge{TxnID: []byte("tx1"), Fail: Some(true)}, true},
	{"delete-on-close", `00 53 2b 45  # (§3.5.10)`, &DeleteOnClose{}, true},
	{"delete-on-no-links", `00 53 2c 45  # (§3.5.11)`, &DeleteOnNoLinks{}, true},
	{"delete-on-no-messages", `00 53 2d 45  # (§3.5.12)`, &DeleteOnNoMessages{}, true},
	{"delete-on-no-links-or-messages", `00 53 2e 45  # (§3.5.13)`, &DeleteOnNoLinksOrMessages{}, true},
	{"header", `
		00 53 70 c0 08 05          # amqp:header:list (§3.2.1)
		41 50 09 52 64 42 43       # durable, priority 9, ttl 100, first-acquirer false, delivery-count 0
		`, &MessageHeader{Durable: Some(true), Priority: Some[uint8](9), TTL: Some[uint32](100),
		FirstAcquirer: Some(false), DeliveryCount: Some[uint32](0)}, true},
	{"properties", `
		00 53 73 c0 2f 0d          # amqp:properties:list, 13 fields (§3.2.4)
		53 07                      # message-id: ulong 7
		a0 01 "u"                  # user-id
		a1 01 "t"                  # to
		a1 01 "s"                  # subject
		a1 01 "r"                  # reply-to
		a1 01 "c"                  # correlation-id: string
		a3 01 "j"                  # content-type
		a3 01 "z"                  # content-encoding
		83 00 00 00 00 00 00 00 01 # absolute-expiry-time: timestamp 1 ms
		83 00 00 00 00 00 00 00 02 # creation-time
		40                         # group-id: null
		43                         # group-sequence 0
		a1 01 "g"                  # reply-to-group-id
		`, &MessageProperties{MessageID: uint64(7), UserID: []byte("u"), To: Some("t"), Subject: Some("s"),
		ReplyTo: Some("r"), CorrelationID: "c", ContentType: Some[Symbol]("j"), ContentEncoding: Some[Symbol]("z"),
		AbsoluteExpiryTime: Some[Timestamp](1), CreationTime: Some[Timestamp](2), GroupSequence: Some[uint32](0),
		ReplyToGroupID: Some("g")}, true},
	{"error", `
		00 53 1d c0 25 03          # amqp:error:list, 3 fields (§2.8.14)
		a3 13 "amqp:internal-error"  # condition
		a1 04 "boom"               # description
		c1 07 02 a3 01 "k" a1 01 "v"  # info {:k "v"}
		`, &Error{Condition: CondInternalError, Description: Some("boom"), Info: Fields{{Key: Symbol("k"), Value: "v"}}}, true},
	{"source", `
		00 53 28 c0 60 0b          # amqp:source:list, list8 size 96, 11 fields (§3.5.3)
		40                         # address: null (dynamic)
		52 02                      # durable: 2 = unsettled-state
		a3 05 "never"              # expiry-policy
		52 3c                      # timeout 60 s
		41                         # dynamic
		c1 16 02 a3 0f "lifetime-policy" 00 53 2b 45  # dynamic-node-properties {:lifetime-policy delete-on-close}
		40 40                      # distribution-mode, filter
		00 53 26 45                # default-outcome: released
		e0 28 02 a3 12 "amqp:accepted:list" 12 "amqp:released:list"  # outcomes
		e0 08 01 a3 05 "topic"     # capabilities
		`, mk(func(s *Source) {
		s.Durable, s.ExpiryPolicy, s.Timeout, s.Dynamic = TerminusDurabilityUnsettledState, TerminusExpiryPolicyNever, 60, true
		s.DynamicNodeProperties = Fields{{Key: Symbol("lifetime-policy"),
			Value: encoding.Described{Descriptor: uint64(0x2b), Value: encoding.List{}, Raw: hx("00 53 2b 45")}}}
		s.DefaultOutcome = &Released{}
		s.Outcomes = []Symbol{"amqp:accepted:list", "amqp:released:list"}
		s.Capabilities = []Symbol{"topic"}
	}), true},
	{"target", `
		00 53 29 c0 21 07          # amqp:target:list, list8 size 33, 7 fields (§3.5.4)
		a1 03 "q/1"                # address
		40                         # durable: null → none
		a3 0b "link-detach"        # expiry-policy
		40 40 40                   # timeout, dynamic, dynamic-node-properties
		e0 08 01 a3 05 "queue"     # capabilities
		`, mk(func(t *Target) {
		t.Address, t.ExpiryPolicy, t.Capabilities = Some("q/1"), TerminusExpiryPolicyLinkDetach, []Symbol{"queue"}
	}), true},
}

func TestVectors(t *testing.T) {
	seen := map[uint64]bool{}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			b := hx(v.bytes)
			got := newComposite(v.want.Descriptor())
			n, err := got.Decode(b)
			if err != nil {
				t.Fatalf("decode: %v\n% x", err, b)
			}
			if n != len(b) {
				t.Fatalf("decode used %d of %d bytes", n, len(b))
			}
			if !reflect.DeepEqual(got, v.want) {
				t.Fatalf("decoded\n%#v\nwant\n%#v", got, v.want)
			}
			enc, err := v.want.Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			if v.canonical && !bytes.Equal(enc, b) {
				t.Fatalf("encode\n% x\nwant\n% x", enc, b)
			}
			seen[v.want.Descriptor()] = true
		})
	}
	// Every composite of the spec has at least one vector.
	for _, st := range specTypes {
		if st.class == "composite" && !seen[st.code] {
			t.Errorf("no byte vector for %s", st.name)
		}
	}
}

// Frame-level vectors: header + body (+ payload), AMQP 1.0 §2.3.
func TestFrameVectors(t *testing.T) {
	heartbeat := hx(`00 00 00 08  02  00  00 00  # size 8, doff 2, AMQP, channel 0: empty frame`)
	f, n, err := ParseFrame(heartbeat, 512)
	if err != nil || n != 8 || !f.Empty() || f.Type != FrameAMQP {
		t.Fatalf("heartbeat: %+v %d %v", f, n, err)
	}
	if got := AppendEmptyFrame(nil, 0); !bytes.Equal(got, heartbeat) {
		t.Fatalf("AppendEmptyFrame % x", got)
	}

	transfer := hx(`
		00 00 00 1a 02 00 00 05    # size 26, doff 2, AMQP, channel 5
		00 53 14 c0 06 03 43 43 a0 01 "t"  # transfer: handle 0, delivery-id 0, tag "t"
		00 53 75 a0 02 "hi"        # payload: a data section "hi"
		`)
	f, n, err = ParseFrame(transfer, 512)
	if err != nil || n != len(transfer) || f.Channel != 5 {
		t.Fatalf("transfer frame: %+v %d %v", f, n, err)
	}
	p, payload, err := DecodePerformative(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := p.(*Transfer)
	if tr.Handle != 0 || tr.DeliveryID != Some[uint32](0) || string(tr.DeliveryTag) != "t" ||
		!bytes.Equal(payload, hx(`00 53 75 a0 02 "hi"`)) {
		t.Fatalf("transfer %#v payload % x", tr, payload)
	}
	enc, err := AppendFrame(nil, FrameAMQP, 5, tr, payload)
	if err != nil || !bytes.Equal(enc, transfer) {
		t.Fatalf("AppendFrame % x %v", enc, err)
	}

	sasl := hx(`
		00 00 00 10 02 01 00 00    # size 16, doff 2, SASL, (channel ignored)
		00 53 44 c0 03 01 50 00    # sasl-outcome ok
		`)
	f, _, err = ParseFrame(sasl, 512)
	if err != nil || f.Type != FrameSASL {
		t.Fatal(f, err)
	}
	s, err := DecodeSASLFrame(f.Body)
	if err != nil || s.(*SASLOutcome).Code != SASLCodeOK {
		t.Fatal(s, err)
	}
	if enc, _ := AppendFrame(nil, FrameSASL, 0, s, nil); !bytes.Equal(enc, sasl) {
		t.Fatalf("sasl frame % x", enc)
	}

	ext := hx(`
		00 00 00 10 03 00 00 01    # size 16, doff 3: 4 bytes of extended header
		de ad be ef                # extended header, ignored
		00 53 17 45                # end
		`)
	f, _, err = ParseFrame(ext, 512)
	if err != nil || !bytes.Equal(f.Ext, hx(`de ad be ef`)) {
		t.Fatal(f, err)
	}
	if p, _, err := DecodePerformative(f.Body); err != nil || !reflect.DeepEqual(p, &End{}) {
		t.Fatal(p, err)
	}
}
