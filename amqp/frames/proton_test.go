package frames

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var record = flag.Bool("record", false, "rewrite testdata/proton/*.c2s|s2c from live Proton peers")

// decoded is everything one direction of a recorded connection carried.
type decoded struct {
	headers  []ProtocolHeader
	sasl     []SASLFrame
	perfs    []Performative
	channels []uint16 // channel of each perfs entry
	empty    int      // empty frames (heartbeats)
	messages []*Message
	payloads [][]byte // the encoded message of each messages entry
}

// decodeStream splits one direction of a connection into protocol headers and frames and decodes
// every frame; transfers are reassembled per (channel, handle) and decoded as messages. Every
// performative and SASL frame must also survive Encode → Decode unchanged.
func decodeStream(t *testing.T, stream []byte) *decoded {
	t.Helper()
	d := &decoded{}
	partial := map[[2]uint32][]byte{}
	for off := 0; off < len(stream); {
		b := stream[off:]
		if len(b) >= 4 && string(b[:4]) == "AMQP" {
			h, err := ParseProtocolHeader(b)
			if err != nil {
				t.Fatalf("offset %d: protocol header: %v", off, err)
			}
			d.headers = append(d.headers, h)
			off += ProtocolHeaderSize
			continue
		}
		f, n, err := ParseFrame(b, 1<<24)
		if err != nil {
			t.Fatalf("offset %d: frame: %v", off, err)
		}
		off += n
		switch {
		case f.Type == FrameSASL:
			s, err := DecodeSASLFrame(f.Body)
			if err != nil {
				t.Fatalf("offset %d: sasl frame: %v", off, err)
			}
			checkReencode(t, s)
			d.sasl = append(d.sasl, s)
		case f.Empty():
			d.empty++
		default:
			p, payload, err := DecodePerformative(f.Body)
			if err != nil {
				t.Fatalf("offset %d: performative: %v\n% x", off, err, f.Body)
			}
			checkReencode(t, p)
			d.perfs = append(d.perfs, p)
			d.channels = append(d.channels, f.Channel)
			if tr, ok := p.(*Transfer); ok {
				key := [2]uint32{uint32(f.Channel), tr.Handle}
				partial[key] = append(partial[key], payload...)
				if tr.More {
					continue
				}
				whole := partial[key]
				delete(partial, key)
				if tr.Aborted {
					continue
				}
				m := new(Message)
				if err := m.Decode(whole); err != nil {
					t.Fatalf("offset %d: message: %v\n% x", off, err, whole)
				}
				checkMessageReencode(t, m, whole)
				d.messages = append(d.messages, m)
				d.payloads = append(d.payloads, whole)
			}
		}
	}
	return d
}

// checkReencode encodes a decoded value with this package and decodes it again: the result must
// equal the first decode (values from other implementations use other, equally legal, encodings,
// so bytes are not compared here).
func checkReencode(t *testing.T, c Composite) {
	t.Helper()
	b, err := c.Encode(nil)
	if err != nil {
		t.Fatalf("re-encode %T: %v", c, err)
	}
	c2 := reflect.New(reflect.TypeOf(c).Elem()).Interface().(interface {
		Composite
		Decode([]byte) (int, error)
	})
	n, err := c2.Decode(b)
	if err != nil || n != len(b) {
		t.Fatalf("decode of re-encoded %T: n=%d/%d %v\n% x", c, n, len(b), err, b)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("%T changed in re-encoding:\n%#v\n%#v", c, c, c2)
	}
}

// checkMessageReencode re-emits a decoded message from its raw bare message (the forwarding path):
// the bare bytes must reappear unchanged and the result must decode to the same message.
func checkMessageReencode(t *testing.T, m *Message, orig []byte) {
	t.Helper()
	if m.Bare != nil && !bytes.Contains(orig, m.Bare) {
		t.Fatal("Bare is not a part of the original message")
	}
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bare != nil && !bytes.Contains(b, m.Bare) {
		t.Fatal("re-encoded message lost the bare message bytes")
	}
	var m2 Message
	if err := m2.Decode(b); err != nil {
		t.Fatalf("decode of re-encoded message: %v", err)
	}
	m2.Bare, m.Bare = nil, nil
	if !reflect.DeepEqual(m, &m2) {
		t.Fatalf("message changed in re-encoding:\n%#v\n%#v", m, &m2)
	}
}

// protonScenario is one Proton client run against a Proton server, recorded through the proxy.
type protonScenario struct {
	name   string
	server []string // python script and args; "{port}" is replaced
	client []string // "{addr}" is the proxy address
	// done is optional: clients that never exit on their own (server.py) are stopped after this.
	timeout time.Duration
}

func TestProtonLive(t *testing.T) {
	py := protonPython(t)
	ex := protonExamples(t)
	rich, _ := filepath.Abs("testdata/proton/rich.py")

	// rich.py: one client connection against rich.py's server.
	t.Run("rich", func(t *testing.T) {
		port := freePort(t)
		startPeer(t, py, rich, "server", "127.0.0.1:"+port)
		waitListening(t, "127.0.0.1:"+port)
		rec := newRecorder(t, "127.0.0.1:"+port)
		if out, ok := runPeer(t, 60*time.Second, py, rich, "client", rec.addr()); !ok {
			t.Fatalf("rich.py client did not finish:\n%s", out)
		}
		saveAndCheck(t, "rich", rec.take())
		// tx_send.py from the Proton examples, against rich.py acting as the coordinator.
		if out, ok := runPeer(t, 60*time.Second, py, ex+"/tx_send.py", "-a", rec.addr()+"/examples", "-m", "4", "-b", "2"); !ok {
			t.Fatalf("tx_send.py did not finish:\n%s", out)
		}
		saveAndCheck(t, "tx_send", rec.take())
	})

	// The Proton example broker with the example clients.
	t.Run("broker", func(t *testing.T) {
		port := freePort(t)
		startPeer(t, py, ex+"/broker.py", "-a", "127.0.0.1:"+port)
		waitListening(t, "127.0.0.1:"+port)
		rec := newRecorder(t, "127.0.0.1:"+port)
		addr := rec.addr() + "/examples"
		for _, c := range []struct {
			name string
			args []string
		}{
			{"simple_send", []string{ex + "/simple_send.py", "-a", addr, "-m", "3"}},
			{"simple_recv", []string{ex + "/simple_recv.py", "-a", addr, "-m", "3"}},
			{"colour_send", []string{ex + "/colour_send.py", "-a", addr, "-m", "4"}},
			{"selected_recv", []string{ex + "/selected_recv.py", "-a", addr, "-m", "2"}},
		} {
			if out, ok := runPeer(t, 60*time.Second, py, c.args...); !ok {
				t.Fatalf("%s did not finish:\n%s", c.name, out)
			}
			saveAndCheck(t, c.name, rec.take())
		}
		// server.py (request/response with a dynamic reply queue) runs until stopped.
		startPeer(t, py, ex+"/server.py", "-a", addr)
		time.Sleep(time.Second)
		if out, ok := runPeer(t, 60*time.Second, py, ex+"/client.py", "-a", addr); !ok {
			t.Fatalf("client.py did not finish:\n%s", out)
		}
		saveAndCheck(t, "client_server", rec.take())
	})
}

// saveAndCheck decodes every recorded session and, with -record, writes it to testdata/proton.
func saveAndCheck(t *testing.T, name string, sessions []transcript) {
	t.Helper()
	if len(sessions) == 0 {
		t.Fatalf("%s: no connection recorded", name)
	}
	for i, s := range sessions {
		n := name
		if len(sessions) > 1 {
			n = fmt.Sprintf("%s-%d", name, i)
		}
		c2s, s2c := decodeStream(t, s.c2s), decodeStream(t, s.s2c)
		checkScenario(t, name, c2s, s2c)
		if *record {
			for dir, b := range map[string][]byte{"c2s": s.c2s, "s2c": s.s2c} {
				if err := os.WriteFile(filepath.Join("testdata/proton", n+"."+dir), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestProtonTranscripts decodes the committed recordings (no peer needed).
func TestProtonTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/proton/*.c2s")
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata/proton (run go test -run TestProtonLive -record)")
	}
	sort.Strings(files)
	for _, f := range files {
		base := strings.TrimSuffix(f, ".c2s")
		name := filepath.Base(base)
		t.Run(name, func(t *testing.T) {
			c2sRaw, err := os.ReadFile(base + ".c2s")
			if err != nil {
				t.Fatal(err)
			}
			s2cRaw, err := os.ReadFile(base + ".s2c")
			if err != nil {
				t.Fatal(err)
			}
			scenario := name
			if i := strings.LastIndexByte(name, '-'); i > 0 {
				scenario = name[:i]
			}
			checkScenario(t, scenario, decodeStream(t, c2sRaw), decodeStream(t, s2cRaw))
		})
	}
}

// checkScenario asserts what each recorded scenario is known to contain.
func checkScenario(t *testing.T, name string, c2s, s2c *decoded) {
	t.Helper()
	// Every Proton connection: SASL header, sasl-init/mechanisms/outcome, AMQP header, open ... close.
	if len(c2s.headers) == 0 || len(s2c.headers) == 0 {
		t.Fatalf("%s: no protocol header", name)
	}
	if len(c2s.perfs) == 0 || len(s2c.perfs) == 0 {
		t.Fatalf("%s: no performatives (c2s %d, s2c %d)", name, len(c2s.perfs), len(s2c.perfs))
	}
	if _, ok := c2s.perfs[0].(*Open); !ok {
		t.Fatalf("%s: first client performative is %T, not open", name, c2s.perfs[0])
	}
	if _, ok := s2c.perfs[0].(*Open); !ok {
		t.Fatalf("%s: first server performative is %T, not open", name, s2c.perfs[0])
	}
	if c2s.headers[0].ID == ProtocolSASL {
		if len(c2s.sasl) == 0 || len(s2c.sasl) < 2 {
			t.Fatalf("%s: SASL header without SASL frames", name)
		}
		if _, ok := s2c.sasl[0].(*SASLMechanisms); !ok {
			t.Fatalf("%s: first SASL frame from the server is %T", name, s2c.sasl[0])
		}
		if o, ok := s2c.sasl[len(s2c.sasl)-1].(*SASLOutcome); !ok || o.Code != SASLCodeOK {
			t.Fatalf("%s: last SASL frame from the server is %#v", name, s2c.sasl[len(s2c.sasl)-1])
		}
	}
	switch name {
	case "rich":
		checkRich(t, c2s, s2c)
	case "tx_send":
		checkTxSend(t, c2s, s2c)
	case "simple_send":
		if len(c2s.messages) != 3 {
			t.Fatalf("simple_send sent %d messages", len(c2s.messages))
		}
		for i, m := range c2s.messages {
			v, _ := m.Value.(Fields)
			if m.BodyType != BodyValue || !reflect.DeepEqual(v, Fields{{Key: "sequence", Value: int64(i + 1)}}) {
				t.Fatalf("simple_send message %d body %#v", i, m.Value)
			}
		}
	case "simple_recv":
		if len(s2c.messages) != 3 {
			t.Fatalf("simple_recv got %d messages", len(s2c.messages))
		}
	case "selected_recv":
		src := findAttach(t, c2s, RoleReceiver).Source
		f, ok := src.Filter.Get("selector")
		if !ok || f.Descriptor != Symbol("apache.org:selector-filter:string") || f.Value != "colour = 'green'" {
			t.Fatalf("selected_recv filter %#v", src.Filter)
		}
		// broker.py does not apply selectors: what it delivers is not checked.
	case "client_server":
		// Either client.py (a dynamic reply queue) or server.py (an anonymous-relay sender).
		var dynamic *Attach
		for _, p := range c2s.perfs {
			if a, ok := p.(*Attach); ok && a.Role == RoleReceiver && a.Source != nil && a.Source.Dynamic {
				dynamic = a
			}
		}
		if dynamic != nil {
			var addr string
			for _, p := range s2c.perfs {
				if a, ok := p.(*Attach); ok && a.Name == dynamic.Name && a.Source != nil {
					addr = a.Source.Address.V
				}
			}
			if addr == "" || len(c2s.messages) != 4 || len(s2c.messages) != 4 {
				t.Fatalf("client.py: dynamic address %q, %d requests, %d responses", addr, len(c2s.messages), len(s2c.messages))
			}
			for i, m := range c2s.messages {
				resp, _ := s2c.messages[i].Value.(string)
				if m.Properties.ReplyTo.V != addr || resp != strings.ToUpper(m.Value.(string)) {
					t.Fatalf("client.py request %d: reply-to %q, response %q", i, m.Properties.ReplyTo.V, resp)
				}
			}
		} else {
			var anonymous bool
			for _, p := range c2s.perfs {
				if a, ok := p.(*Attach); ok && a.Role == RoleSender {
					tg, _ := a.Target.(*Target)
					anonymous = tg != nil && !tg.Address.Valid
				}
			}
			if !anonymous || len(c2s.messages) != 4 || !c2s.messages[0].Properties.To.Valid {
				t.Fatalf("server.py: anonymous sender %v, %d responses", anonymous, len(c2s.messages))
			}
		}
	}
}

func findAttach(t *testing.T, d *decoded, role Role) *Attach {
	t.Helper()
	for _, p := range d.perfs {
		if a, ok := p.(*Attach); ok && a.Role == role {
			return a
		}
	}
	t.Fatalf("no %v attach", role)
	return nil
}

func checkRich(t *testing.T, c2s, s2c *decoded) {
	t.Helper()
	open := c2s.perfs[0].(*Open)
	if !open.IdleTimeOut.Valid || open.IdleTimeOut.V == 0 {
		t.Fatalf("rich open has no idle-time-out: %#v", open)
	}
	if !reflect.DeepEqual(open.OfferedCapabilities, []Symbol{"ANONYMOUS-RELAY"}) ||
		!reflect.DeepEqual(open.DesiredCapabilities, []Symbol{"DELAYED_DELIVERY"}) {
		t.Fatalf("rich open capabilities %v %v", open.OfferedCapabilities, open.DesiredCapabilities)
	}
	if p, _ := open.Properties.Get(Symbol("product")); p != "rich.py" {
		t.Fatalf("rich open properties %#v", open.Properties)
	}
	if len(c2s.messages) != 5 {
		t.Fatalf("rich sent %d messages, want 5", len(c2s.messages))
	}
	m := c2s.messages[0]
	if m.Header == nil || !m.Header.Durable.V || m.Header.Priority.V != 7 || m.Header.TTL.V != 30000 ||
		!m.Header.FirstAcquirer.V || m.Header.DeliveryCount.V != 2 {
		t.Fatalf("rich header %#v", m.Header)
	}
	p := m.Properties
	if p == nil || p.Subject.V != "all-sections" || p.To.V != "rich" || p.ReplyTo.V != "replies" ||
		!bytes.Equal(p.UserID, []byte("anonymous")) || p.ContentType.V != "application/octet-stream" ||
		p.ContentEncoding.V != "identity" || p.AbsoluteExpiryTime.V != 1700000060500 ||
		p.CreationTime.V != 1700000000250 || p.GroupID.V != "group" || p.GroupSequence.V != 7 ||
		p.ReplyToGroupID.V != "reply-group" {
		t.Fatalf("rich properties %#v", p)
	}
	if fmt.Sprint(p.MessageID) != "0f0e0d0c-0b0a-0908-0706-050403020100" || !bytes.Equal(p.CorrelationID.([]byte), []byte("corr-bin")) {
		t.Fatalf("rich ids %#v %#v", p.MessageID, p.CorrelationID)
	}
	if v, _ := m.DeliveryAnnotations.Get(Symbol("x-opt-delivery")); v != int32(1) {
		t.Fatalf("rich delivery annotations %#v", m.DeliveryAnnotations)
	}
	if v, _ := m.MessageAnnotations.Get(uint64(5)); v != "ulong key" {
		t.Fatalf("rich message annotations %#v", m.MessageAnnotations)
	}
	if v, _ := m.ApplicationProperties.Get("n"); v != int64(42) {
		t.Fatalf("rich application properties %#v", m.ApplicationProperties)
	}
	if m.BodyType != BodyData || string(m.Data[0]) != "binary data section" {
		t.Fatalf("rich body %v %q", m.BodyType, m.Data)
	}
	if c2s.messages[1].BodyType != BodyValue || c2s.messages[2].BodyType != BodySequence ||
		c2s.messages[3].Value != "amqp-value string" || c2s.messages[1].Properties.MessageID != uint64(12345) {
		t.Fatalf("rich bodies %#v %#v %#v", c2s.messages[1], c2s.messages[2], c2s.messages[3])
	}
	big := c2s.messages[4]
	if len(big.Data) != 1 || len(big.Data[0]) != 102400 || big.Data[0][300] != 300%256 {
		t.Fatalf("rich big message: %d sections", len(big.Data))
	}
	more := 0
	for _, p := range c2s.perfs {
		if tr, ok := p.(*Transfer); ok && tr.More {
			more++
		}
	}
	if more == 0 {
		t.Fatal("rich: the 100 KiB message was not split into several transfers")
	}
	// The server settles the 5 messages with accepted, rejected, released, modified, accepted
	// (in delivery-id order; the dispositions themselves may come in any order).
	states := map[uint32]string{}
	for _, p := range s2c.perfs {
		d, ok := p.(*Disposition)
		if !ok || d.Role != RoleReceiver {
			continue
		}
		var st string
		switch s := d.State.(type) {
		case *Accepted:
			st = "accepted"
		case *Rejected:
			if s.Error == nil || s.Error.Condition != CondInvalidField || s.Error.Description.V != "rejected by rich.py" {
				t.Fatalf("rich rejected %#v", s.Error)
			}
			if v, _ := s.Error.Info.Get(Symbol("field")); v != "subject" {
				t.Fatalf("rich rejected info %#v", s.Error.Info)
			}
			st = "rejected"
		case *Released:
			st = "released"
		case *Modified:
			if !s.DeliveryFailed.V || !s.UndeliverableHere.V {
				t.Fatalf("rich modified %#v", s)
			}
			if v, _ := s.MessageAnnotations.Get(Symbol("x-opt-modified")); v != "yes" {
				t.Fatalf("rich modified annotations %#v", s.MessageAnnotations)
			}
			st = "modified"
		default:
			t.Fatalf("rich disposition state %T", d.State)
		}
		for id := d.First; ; id++ {
			states[id] = st
			if !d.Last.Valid || id == d.Last.V {
				break
			}
		}
	}
	if got := strings.Join([]string{states[0], states[1], states[2], states[3], states[4]}, " "); got != "accepted rejected released modified accepted" {
		t.Fatalf("rich outcomes %s", got)
	}
	// Receiving link with a selector and capabilities; dynamic receiver with a lifetime policy.
	var selector, dynamic bool
	for _, p := range c2s.perfs {
		a, ok := p.(*Attach)
		if !ok || a.Role != RoleReceiver || a.Source == nil {
			continue
		}
		if f, ok := a.Source.Filter.Get("selector"); ok && f.Value == "colour = 'green'" {
			selector = reflect.DeepEqual(a.Source.Capabilities, []Symbol{"queue", "shared"})
		}
		if a.Source.Dynamic {
			lp, ok := a.Source.DynamicNodeProperties.Get(Symbol("lifetime-policy"))
			pol, err := DecodeComposite(lp)
			_, isDOC := pol.(*DeleteOnClose)
			dynamic = ok && err == nil && isDOC
		}
	}
	if !selector || !dynamic {
		t.Fatalf("rich: selector+capabilities %v, dynamic lifetime-policy %v", selector, dynamic)
	}
	if len(s2c.messages) != 4 {
		t.Fatalf("rich: server sent %d messages, want 2 on each receiving link", len(s2c.messages))
	}
}

func checkTxSend(t *testing.T, c2s, s2c *decoded) {
	t.Helper()
	var coordinator bool
	for _, p := range c2s.perfs {
		if a, ok := p.(*Attach); ok {
			if c, ok := a.Target.(*Coordinator); ok {
				coordinator = slices.Contains(c.Capabilities, TxnCapabilityLocalTransactions)
			}
		}
	}
	if !coordinator {
		t.Fatal("tx_send: no coordinator attach")
	}
	var declares, discharges, txnTransfers int
	for i, m := range c2s.messages {
		body, err := DecodeComposite(m.Value)
		if err != nil {
			continue // an ordinary message on the transactional sender
		}
		switch body := body.(type) {
		case *Declare:
			declares++
		case *Discharge:
			discharges++
			if len(body.TxnID) == 0 {
				t.Fatalf("tx_send discharge %d without txn-id", i)
			}
		}
	}
	for _, p := range c2s.perfs {
		if tr, ok := p.(*Transfer); ok {
			if ts, ok := tr.State.(*TransactionalState); ok && len(ts.TxnID) > 0 {
				txnTransfers++
			}
		}
	}
	var declared int
	for _, p := range s2c.perfs {
		if d, ok := p.(*Disposition); ok {
			if dd, ok := d.State.(*Declared); ok && strings.HasPrefix(string(dd.TxnID), "txn-") {
				declared++
			}
		}
	}
	if declares != 2 || discharges != 2 || declared != 2 || txnTransfers != 4 {
		t.Fatalf("tx_send: declares %d discharges %d declared %d transactional transfers %d",
			declares, discharges, declared, txnTransfers)
	}
}
