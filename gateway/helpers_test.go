package gateway

// Client-side helpers shared by the test files: hand-built MQTT packets (for
// exact reason codes and for what well-behaved clients never send), an MQTT 5
// client on paho.golang, and go-amqp connections, links and messages.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/eclipse/paho.golang/paho"
)

// ---- hand-built MQTT packets ----------------------------------------------------------------------

type will struct {
	topic, payload string
	qos            byte
}

func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func remainingLength(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

func packet(typeAndFlags byte, body []byte) []byte {
	return append(append([]byte{typeAndFlags}, remainingLength(len(body))...), body...)
}

// mqttConnect describes a hand-built CONNECT.
type mqttConnect struct {
	version    byte // 4 (3.1.1) or 5
	clientID   string
	keepAlive  uint16 // seconds
	user, pass string
	withUser   bool
	withPass   bool
	keep       bool  // clean session / clean start off (v5: session expiry of an hour)
	will       *will // nil for no will; v5 sends it without will properties
}

// connectCreds is a clean CONNECT with a user name and password, keep-alive 30s.
func connectCreds(version byte, id, user, pass string) mqttConnect {
	return mqttConnect{version: version, clientID: id, keepAlive: 30, user: user, pass: pass, withUser: true, withPass: true}
}

// connectV4 is an MQTT 3.1.1 CONNECT (clean session, no credentials).
func connectV4(id string, keepalive uint16, w *will) []byte {
	return mqttConnect{version: 4, clientID: id, keepAlive: keepalive, will: w}.bytes()
}

func (p mqttConnect) String() string {
	return fmt.Sprintf("v%d CONNECT id=%q user=%q(%v)", p.version, p.clientID, p.user, p.withUser)
}

func (p mqttConnect) bytes() []byte {
	flags := byte(0)
	if !p.keep {
		flags |= 0x02
	}
	payload := mqttString(p.clientID)
	if p.will != nil {
		flags |= 0x04 | p.will.qos<<3
		if p.version == 5 {
			payload = append(payload, 0) // no will properties
		}
		payload = append(payload, mqttString(p.will.topic)...)
		payload = append(payload, mqttString(p.will.payload)...)
	}
	if p.withUser {
		flags |= 0x80
		payload = append(payload, mqttString(p.user)...)
	}
	if p.withPass {
		flags |= 0x40
		payload = append(payload, mqttString(p.pass)...)
	}
	body := append(mqttString("MQTT"), p.version, flags, byte(p.keepAlive>>8), byte(p.keepAlive))
	if p.version == 5 {
		if p.keep {
			body = append(body, 5, 0x11, 0, 0, 0x0e, 0x10) // session expiry interval 3600
		} else {
			body = append(body, 0)
		}
	}
	return packet(0x10, append(body, payload...))
}

// publishPacket is a PUBLISH of either version.
func publishPacket(version byte, topic string, qos byte, id uint16, payload []byte) []byte {
	body := mqttString(topic)
	if qos > 0 {
		body = append(body, byte(id>>8), byte(id))
	}
	if version == 5 {
		body = append(body, 0)
	}
	return packet(0x30|qos<<1, append(body, payload...))
}

// readPacket reads one MQTT packet: its first byte and its body.
func readPacket(c net.Conn, within time.Duration) (byte, []byte, error) {
	c.SetReadDeadline(time.Now().Add(within))
	defer c.SetReadDeadline(time.Time{})
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		return 0, nil, err
	}
	typ := one[0]
	n, mult := 0, 1
	for i := 0; ; i++ {
		if _, err := io.ReadFull(c, one[:]); err != nil {
			return 0, nil, err
		}
		n += int(one[0]&0x7f) * mult
		mult *= 128
		if one[0]&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("malformed remaining length")
		}
	}
	body := make([]byte, n)
	_, err := io.ReadFull(c, body)
	return typ, body, err
}

// connack sends p on c and returns the CONNACK reason code (3.1.1: return
// code) and session present.
func connack(t *testing.T, c net.Conn, p mqttConnect) (byte, bool) {
	t.Helper()
	if _, err := c.Write(p.bytes()); err != nil {
		t.Fatalf("%s: write: %v", p, err)
	}
	typ, body, err := readPacket(c, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: no CONNACK: %v", p, err)
	}
	if typ != 0x20 || len(body) < 2 {
		t.Fatalf("%s: got packet %#x %x, want CONNACK", p, typ, body)
	}
	return body[1], body[0]&1 == 1
}

// connectOK sends p on c and checks the CONNACK accepts it.
func connectOK(t *testing.T, c net.Conn, p mqttConnect) {
	t.Helper()
	if code, _ := connack(t, c, p); code != 0 {
		t.Fatalf("%s: CONNACK code %#02x, want 0", p, code)
	}
}

// dialConnect sends p on a new connection to addr and returns the CONNACK
// reason code (3.1.1: return code) and session present.
func dialConnect(t *testing.T, addr string, p mqttConnect) (net.Conn, byte, bool) {
	t.Helper()
	c := dial(t, addr)
	code, present := connack(t, c, p)
	return c, code, present
}

// waitClosed reads c until the server closes it; it fails when that takes
// longer than limit. It returns how long it took and what the server sent.
func waitClosed(c net.Conn, limit time.Duration) (time.Duration, []byte, error) {
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	var data []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		data = append(data, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return time.Since(start), data, fmt.Errorf("still open after %v", limit)
			}
			return time.Since(start), data, nil
		}
	}
}

// closedWithin is waitClosed that fails t when c is still open after limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) (time.Duration, []byte) {
	t.Helper()
	took, data, err := waitClosed(c, limit)
	if err != nil {
		t.Fatalf("connection %v (sent %x)", err, data)
	}
	return took, data
}

// ---- paho.golang (MQTT 5) ------------------------------------------------------------------------

// v5Client is an MQTT 5 client whose deliveries and server DISCONNECT arrive
// on channels.
type v5Client struct {
	*paho.Client
	id   string
	conn net.Conn
	msgs chan *paho.Publish
	disc chan *paho.Disconnect
}

type v5Opts struct {
	user, pass string   // user "" sends no user name
	keep       bool     // CleanStart false with a session expiry of an hour
	conn       net.Conn // nil: dial addr over TCP
}

// v5Try connects an MQTT 5 client and returns the CONNACK (nil if none).
func v5Try(t *testing.T, addr, id string, o v5Opts) (*v5Client, *paho.Connack, error) {
	t.Helper()
	conn := o.conn
	if conn == nil {
		var err error
		if conn, err = net.Dial("tcp", addr); err != nil {
			t.Fatalf("dial: %v", err)
		}
	}
	c := &v5Client{id: id, conn: conn, msgs: make(chan *paho.Publish, 100), disc: make(chan *paho.Disconnect, 1)}
	c.Client = paho.NewClient(paho.ClientConfig{ClientID: id, Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) {
			c.msgs <- p.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disc <- d },
	})
	cp := &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: !o.keep}
	if o.conn != nil {
		// paho.golang v0.23 sends its first PINGREQ at once from its pinger
		// goroutine, and writes a packet's header and body with net.Buffers:
		// one writev on a TCP socket, but separate Writes on a TLS or
		// WebSocket connection, where the PINGREQ can land between them. The
		// gateway then rightly refuses the garbled SUBSCRIBE (seen as
		// "82 40 c0 00 00 01 …": the PINGREQ inside it). No keepalive, no pinger.
		cp.KeepAlive = 0
	}
	if o.user != "" {
		cp.UsernameFlag, cp.Username, cp.PasswordFlag, cp.Password = true, o.user, true, []byte(o.pass)
	}
	if o.keep {
		expiry := uint32(3600)
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil || ca == nil || ca.ReasonCode != 0 {
		conn.Close()
		return nil, ca, err
	}
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{})
		<-c.Done()
		conn.Close()
	})
	return c, ca, nil
}

// v5 connects an MQTT 5 client; it disconnects at cleanup.
func v5(t *testing.T, addr, id string, o v5Opts) *v5Client {
	t.Helper()
	c, ca, err := v5Try(t, addr, id, o)
	if c == nil {
		t.Fatalf("v5 connect %s as %q: %v %+v", id, o.user, err, ca)
	}
	return c
}

// subscribe sends one SUBSCRIBE with every filter and returns the SUBACK codes.
func (c *v5Client) subscribe(t *testing.T, qos byte, filters ...string) []byte {
	t.Helper()
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: qos})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sa, err := c.Subscribe(ctx, s)
	if sa == nil {
		t.Fatalf("subscribe %v: %v", filters, err)
	}
	return sa.Reasons
}

// subscribed subscribes to filters at qos and fails t unless every one is
// granted at qos.
func (c *v5Client) subscribed(t *testing.T, qos byte, filters ...string) {
	t.Helper()
	got := c.subscribe(t, qos, filters...)
	ok := len(got) == len(filters)
	for _, code := range got {
		ok = ok && code == qos
	}
	if !ok {
		t.Fatalf("%s SUBACK %x for %q", c.id, got, filters)
	}
}

// publish returns the PUBACK/PUBREC reason code (0 for QoS 0).
func (c *v5Client) publish(t *testing.T, topic string, qos byte, payload []byte) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
	if pr == nil {
		if qos == 0 && err == nil {
			return 0
		}
		t.Fatalf("publish %s qos %d: %v", topic, qos, err)
	}
	return pr.ReasonCode
}

// published publishes at QoS 1 and fails t unless the PUBACK is a success.
func (c *v5Client) published(t *testing.T, topic string, payload []byte) {
	t.Helper()
	if rc := c.publish(t, topic, 1, payload); rc != 0 {
		t.Fatalf("%s publish to %s: PUBACK %#02x", c.id, topic, rc)
	}
}

func showPub(p *paho.Publish) string { return fmt.Sprintf("%q on %s", p.Payload, p.Topic) }

// ---- go-amqp -------------------------------------------------------------------------------------

func saslAnonymous() *goamqp.ConnOptions {
	return &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous()}
}

func saslPlain(id, pw string) *goamqp.ConnOptions {
	return &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain(id, pw)}
}

// amqpDial connects to url (amqp:// or amqps://) within 5s.
func amqpDial(url string, opts *goamqp.ConnOptions) (*goamqp.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return goamqp.Dial(ctx, url, opts)
}

// amqpConnect dials url and begins a session; the connection closes at cleanup.
func amqpConnect(t *testing.T, url string, opts *goamqp.ConnOptions) (*goamqp.Conn, *goamqp.Session) {
	t.Helper()
	c, err := amqpDial(url, opts)
	if err != nil {
		t.Fatalf("go-amqp dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.NewSession(ctx, nil)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	return c, s
}

// amqpSession is an anonymous plaintext session to the AMQP listener at addr.
func amqpSession(t *testing.T, addr string) *goamqp.Session {
	t.Helper()
	_, s := amqpConnect(t, "amqp://"+addr, saslAnonymous())
	return s
}

// amqpRefused dials url and reports msg as an error when the connection
// succeeds; it returns the dial error.
func amqpRefused(t *testing.T, url string, opts *goamqp.ConnOptions, msg string) error {
	t.Helper()
	c, err := amqpDial(url, opts)
	if err == nil {
		c.Close()
		t.Error(msg)
	}
	return err
}

// amqpCondition returns the AMQP error condition carried by err: a link or
// connection error from the peer, or a rejected outcome.
func amqpCondition(err error) goamqp.ErrCond {
	var le *goamqp.LinkError
	if errors.As(err, &le) && le.RemoteErr != nil {
		return le.RemoteErr.Condition
	}
	var ce *goamqp.ConnError
	if errors.As(err, &ce) && ce.RemoteErr != nil {
		return ce.RemoteErr.Condition
	}
	var e *goamqp.Error
	if errors.As(err, &e) {
		return e.Condition
	}
	return ""
}

// amqpClosedWith waits for the peer to close c and returns the condition.
func amqpClosedWith(t *testing.T, c *goamqp.Conn, within time.Duration, what string) goamqp.ErrCond {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(within):
		t.Fatalf("%s: AMQP connection still open after %v", what, within)
	}
	return amqpCondition(c.Err())
}

// attachRefused checks that an attach (what) failed with
// amqp:unauthorized-access; a link that did attach is closed.
func attachRefused(t *testing.T, what string, link interface{ Close(context.Context) error }, err error) {
	t.Helper()
	if err == nil {
		link.Close(context.Background())
		t.Errorf("%s attached", what)
	} else if c := amqpCondition(err); c != goamqp.ErrCondUnauthorizedAccess {
		t.Errorf("%s: %v (condition %q), want amqp:unauthorized-access", what, err, c)
	}
}

// newReceiver attaches a receiving link; nil opts means a credit of 100.
func newReceiver(s *goamqp.Session, source string, opts *goamqp.ReceiverOptions) (*goamqp.Receiver, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if opts == nil {
		opts = &goamqp.ReceiverOptions{Credit: 100}
	}
	return s.NewReceiver(ctx, source, opts)
}

// receiverCredit attaches a receiving link with credit or fails t.
func receiverCredit(t *testing.T, s *goamqp.Session, source string, credit int32) *goamqp.Receiver {
	t.Helper()
	r, err := newReceiver(s, source, &goamqp.ReceiverOptions{Credit: credit})
	if err != nil {
		t.Fatalf("receiver on %q: %v", source, err)
	}
	return r
}

func receiver(t *testing.T, s *goamqp.Session, source string) *goamqp.Receiver {
	t.Helper()
	return receiverCredit(t, s, source, 100)
}

// dynamicReceiver attaches a receiver with a dynamic source (AMQP 1.0
// §3.5.3): a temporary queue, whose address it returns, under $tmp/.
func dynamicReceiver(t *testing.T, s *goamqp.Session) (*goamqp.Receiver, string) {
	t.Helper()
	r, err := newReceiver(s, "", &goamqp.ReceiverOptions{DynamicAddress: true, Credit: 10})
	if err != nil {
		t.Fatalf("dynamic receiver: %v", err)
	}
	addr := r.Address()
	if !strings.HasPrefix(addr, "$tmp/") {
		t.Fatalf("dynamic address %q, want $tmp/…", addr)
	}
	return r, addr
}

func newSender(s *goamqp.Session, target string) (*goamqp.Sender, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.NewSender(ctx, target, nil)
}

// sender attaches a sending link or fails t.
func sender(t *testing.T, s *goamqp.Session, target string) *goamqp.Sender {
	t.Helper()
	snd, err := newSender(s, target)
	if err != nil {
		t.Fatalf("sender to %q: %v", target, err)
	}
	return snd
}

// send sends body, with properties.to when to is not "", and waits up to 5s
// for the outcome.
func send(snd *goamqp.Sender, to, body string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := goamqp.NewMessage([]byte(body))
	if to != "" {
		m.Properties = &goamqp.MessageProperties{To: &to}
	}
	return snd.Send(ctx, m, nil)
}

// receive waits 5s for one message, or fails t.
func receive(t *testing.T, r *goamqp.Receiver) *goamqp.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := r.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

// tryReceive waits up to d for one message and accepts it; nil if none came.
func tryReceive(r *goamqp.Receiver, d time.Duration) *goamqp.Message {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := r.Receive(ctx, nil)
	if err != nil {
		return nil
	}
	_ = r.AcceptMessage(context.Background(), m) // a no-op for a pre-settled transfer
	return m
}
