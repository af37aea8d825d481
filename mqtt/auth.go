package mqtt

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/isthmus-iot/isthmus/mqtt/wire"
)

// Auth decides who may connect and what each client may do. The broker asks
// it once per CONNECT and on every publish, subscribe and delivery, so Allow
// must be cheap. Nil Options.Auth admits everyone to everything.
type Auth interface {
	// Authenticate returns the identity a CONNECT is known by ("" for an
	// anonymous client) or an error, which refuses the connection with
	// CONNACK 0x86 (MQTT 5) or 0x04 (3.1.1), bad user name or password.
	Authenticate(req *ConnectRequest) (identity string, err error)
	// Allow reports whether identity may publish to topic (write) or
	// subscribe to the filter, or receive a message on the topic (!write).
	Allow(identity, topicOrFilter string, write bool) bool
}

// ConnectRequest is what a client presented to connect.
type ConnectRequest struct {
	ClientID        string
	Username        string
	Password        []byte
	UsernameFlag    bool
	PasswordFlag    bool
	ProtocolVersion byte
	Transport       string // TransportTCP, TransportTLS, TransportWS, TransportWSS
	RemoteAddr      string
	// TLS is the client's TLS state, nil without TLS. On an mTLS listener
	// its PeerCertificates were verified against the client CA.
	TLS *tls.ConnectionState
}

// ClientInfo describes a connected MQTT client (Broker.Clients, presence).
type ClientInfo struct {
	ClientID        string
	Identity        string // "" for anonymous
	Transport       string
	RemoteAddr      string
	ProtocolVersion byte
	Connected       time.Time
	MessagesIn      uint64 // PUBLISH packets received from the client
}

// ErrIdentityMismatch refuses a CONNECT whose client id belongs to a session
// of another identity: taking the session over would hand that identity's
// queued messages and subscriptions to someone else.
var ErrIdentityMismatch = errors.New("client id in use by another identity")

// ErrWillNotAllowed refuses a CONNECT whose will topic the identity may not
// publish to.
var ErrWillNotAllowed = errors.New("will topic not allowed for this identity")

// clientState is the broker's bookkeeping of a connected client.
type clientState struct {
	info    ClientInfo
	in      atomic.Uint64
	limiter *rate.Limiter // nil: unlimited
}

// clients maps each connected client's connection to its state. Keyed by the
// connection, not the *mochi.Client, so that Broker.serve can forget a client
// mochi dropped without calling OnDisconnect (an error writing its CONNACK).
type clients struct {
	m sync.Map // net.Conn (*wire.Conn) → *clientState
}

func (cs *clients) get(cl *mochi.Client) *clientState {
	if cl.Net.Conn == nil {
		return nil
	}
	if v, ok := cs.m.Load(cl.Net.Conn); ok {
		return v.(*clientState)
	}
	return nil
}

// identity is the identity a client authenticated as: OnConnectAuthenticate
// stores it as the mochi client's user name, which also survives in an
// offline session, so deliveries to it are checked against the right ACL.
func identity(cl *mochi.Client) string { return string(cl.Properties.Username) }

// connTLS returns the TLS state under an MQTT connection, or nil.
func connTLS(c net.Conn) *tls.ConnectionState {
	if wc, ok := c.(*wire.Conn); ok {
		c = wc.NetConn()
	}
	switch t := c.(type) {
	case *tls.Conn:
		st := t.ConnectionState()
		return &st
	case interface {
		TLSConnectionState() (tls.ConnectionState, bool)
	}:
		if st, ok := t.TLSConnectionState(); ok {
			return &st
		}
	}
	return nil
}

// admit asks Options.Auth about a CONNECT, refuses a client id held by
// another identity's session and a will topic the identity may not publish
// to, and returns the identity, or the CONNACK code of the refusal.
func (h *hook) admit(cl *mochi.Client, pk packets.Packet) (string, packets.Code, error) {
	b := h.b
	a := b.opts.Auth
	if a == nil {
		return "", packets.CodeSuccess, nil
	}
	req := &ConnectRequest{
		ClientID:        cl.ID,
		Username:        string(pk.Connect.Username),
		Password:        pk.Connect.Password,
		UsernameFlag:    pk.Connect.UsernameFlag,
		PasswordFlag:    pk.Connect.PasswordFlag,
		ProtocolVersion: pk.ProtocolVersion,
		Transport:       cl.Net.Listener,
		RemoteAddr:      cl.Net.Remote,
		TLS:             connTLS(cl.Net.Conn),
	}
	id, err := a.Authenticate(req)
	if err != nil {
		return "", packets.ErrBadUsernameOrPassword, err
	}
	if old, ok := b.srv.Clients.Get(cl.ID); ok && old != cl && !bytes.Equal(old.Properties.Username, []byte(id)) {
		return "", packets.ErrClientIdentifierNotValid, ErrIdentityMismatch
	}
	// mochi publishes a will without asking OnACLCheck: check it now, as
	// Mosquitto does, rather than let a will reach a topic the client may
	// not publish to.
	if pk.Connect.WillFlag && !a.Allow(id, pk.Connect.WillTopic, true) {
		return "", packets.ErrNotAuthorized, ErrWillNotAllowed
	}
	return id, packets.CodeSuccess, nil
}

// refuse answers a refused CONNECT with the reason code that says why: MQTT 5
// 0x86 (credentials), 0x85 (client id of another identity) or 0x87 (will
// topic); MQTT 3.1.1 has only 0x02 (identifier rejected) and 0x05 (not
// authorized, what Mosquitto answers a wrong password with). mochi's own
// refusal from OnConnectAuthenticate could only say 0x86.
func (h *hook) refuse(cl *mochi.Client, pk packets.Packet, code packets.Code, err error) error {
	h.b.m.rejected("not_authorized")
	// The user name is logged (it is an id, not a secret); the password never.
	h.b.log.Info("MQTT client refused", "client_id", cl.ID, "username", string(pk.Connect.Username),
		"remote", cl.Net.Remote, "transport", cl.Net.Listener, "reason_code", code.Code, "error", err)
	if pk.ProtocolVersion < 5 {
		if code == packets.ErrClientIdentifierNotValid {
			code = packets.Err3ClientIdentifierNotValid
		} else {
			code = packets.Err3NotAuthorized
		}
	}
	_ = h.b.srv.SendConnack(cl, code, false, nil)
	return code
}

// OnConnectAuthenticate records a client that OnConnect admitted (mochi asks
// only after OnConnect returned nil).
func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	b := h.b
	id := identity(cl)
	st := &clientState{info: ClientInfo{
		ClientID: cl.ID, Identity: id, Transport: cl.Net.Listener, RemoteAddr: cl.Net.Remote,
		ProtocolVersion: pk.ProtocolVersion, Connected: time.Now(),
	}}
	if r := b.opts.PublishRate; r > 0 {
		st.limiter = rate.NewLimiter(rate.Limit(r), max(b.opts.PublishBurst, 1))
	}
	if cl.Net.Conn != nil {
		b.clients.m.Store(cl.Net.Conn, st)
	}
	if f := b.opts.OnConnected; f != nil {
		f(st.info)
	}
	return true
}

// OnACLCheck asks Options.Auth. The gateway's own client ($isthmus) and
// mochi's inline publishes are not checked.
func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	switch {
	case write && topic == refusedQuiet:
		return false
	case write && topic == sysRefused:
		h.b.m.refused("publish")
		return false
	}
	a := h.b.opts.Auth
	if a == nil || cl.Net.Inline {
		return true
	}
	if !a.Allow(identity(cl), topic, write) {
		if write {
			h.b.m.refused("publish")
		} else if h.b.clients.get(cl) != nil {
			h.b.m.refused("subscribe")
		}
		return false
	}
	return true
}

// sysRefused stands for the topic of a client PUBLISH to $SYS/…. mochi
// v2.7.9 drops such a publish without answering, so a QoS 1 or 2 publisher
// waits for its PUBACK forever; under this name the publish reaches
// OnACLCheck, which refuses it like any ACL refusal (MQTT 5: PUBACK 0x87).
// A NUL cannot occur in a topic a client sends [MQTT-4.7.3-2].
const sysRefused = "\x00$SYS"

// refusedQuiet stands for the topic of a publish already refused and
// answered (or its connection closed) in screenPublish; OnACLCheck refuses it
// without counting it again.
const refusedQuiet = "\x00refused"

// screenPublish runs on every packet a client sends, before mochi handles it.
// It resolves an MQTT 5 topic alias, which mochi does only after its ACL
// check (which would then see an empty topic), and renames $SYS publishes.
// A 3.1.1 or 3.1 QoS 1/2 publish the ACL refuses closes the connection here:
// mochi would send those clients a DISCONNECT, which only MQTT 5 servers may
// send, and log the refused packet, payload included, as a warning.
func (h *hook) screenPublish(cl *mochi.Client, pk *packets.Packet) {
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline {
		return
	}
	if pk.TopicName == "" && pk.Properties.TopicAliasFlag && pk.Properties.TopicAlias > 0 {
		pk.TopicName = cl.State.TopicAliases.Inbound.Set(pk.Properties.TopicAlias, "")
	}
	if len(pk.TopicName) >= len(mochi.SysPrefix) && strings.EqualFold(pk.TopicName[:len(mochi.SysPrefix)], mochi.SysPrefix) {
		pk.TopicName = sysRefused
	}
	if cl.Properties.ProtocolVersion >= 5 || pk.FixedHeader.Qos == 0 || pk.TopicName == "" {
		return
	}
	if pk.TopicName == sysRefused || (h.b.opts.Auth != nil && !h.b.opts.Auth.Allow(identity(cl), pk.TopicName, true)) {
		h.b.m.refused("publish")
		h.b.log.Info("MQTT publish refused by the ACL; 3.1.1 has no way to say so: connection closed [MQTT-3.3.5-2]",
			"client_id", cl.ID, "identity", identity(cl), "topic", pk.TopicName)
		cl.Stop(packets.ErrNotAuthorized)
		// What mochi still processes is a QoS 0 publish it drops quietly.
		pk.FixedHeader.Qos, pk.PacketID = 0, 0
		pk.TopicName, pk.Payload = refusedQuiet, nil
	}
}

// screenConnect lets a CONNECT with an empty password through to
// authentication: mochi v2.7.9 refuses it as a protocol error (0x82, not
// even a 3.1.1 return code), but it is a valid CONNECT [MQTT-3.1.3.5] with
// a wrong password, to be answered 0x86 / 0x05. No device has an empty
// password, so it is then handled as a user name without a password.
func screenConnect(pk *packets.Packet) {
	if pk.FixedHeader.Type == packets.Connect && pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
}

// throttle holds a client's publish until its rate allows it: its reads
// pause, so a flooding client slows down instead of losing messages.
func (h *hook) throttle(cl *mochi.Client) {
	st := h.b.clients.get(cl)
	if st == nil {
		return
	}
	st.in.Add(1)
	if st.limiter == nil {
		return
	}
	r := st.limiter.Reserve()
	if d := r.Delay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-h.b.done:
			t.Stop()
		}
	}
}

// clientGone forgets a client that disconnected and reports it.
func (h *hook) clientGone(cl *mochi.Client, err error) {
	if cl.Net.Conn != nil {
		h.b.connGone(cl.Net.Conn, err)
	}
}

// connGone forgets the client on connection c, once, and reports it.
func (b *Broker) connGone(c net.Conn, err error) {
	v, ok := b.clients.m.LoadAndDelete(c)
	if !ok {
		return
	}
	st := v.(*clientState)
	if f := b.opts.OnDisconnected; f != nil {
		info := st.info
		info.MessagesIn = st.in.Load()
		f(info, err)
	}
}

// Clients lists the connected MQTT clients.
func (b *Broker) Clients() []ClientInfo {
	var out []ClientInfo
	b.clients.m.Range(func(_, v any) bool {
		st := v.(*clientState)
		info := st.info
		info.MessagesIn = st.in.Load()
		out = append(out, info)
		return true
	})
	return out
}

// Kick disconnects the client with this client id (MQTT 5: DISCONNECT with
// reason 0x98 administrative action) and reports whether it was connected.
// Its session stays, as after any disconnect.
func (b *Broker) Kick(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok || cl.Net.Inline || cl.Closed() || b.clients.get(cl) == nil {
		return false
	}
	b.disconnect(cl, packets.ErrAdministrativeAction)
	return true
}

// KickIdentity disconnects every client of an identity (MQTT 5: DISCONNECT
// 0x87 not authorized) and removes their sessions, so that a device removed
// from or disabled in the devices file keeps nothing. It returns how many
// were connected.
func (b *Broker) KickIdentity(identity string) int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || string(cl.Properties.Username) != identity {
			continue
		}
		if !cl.Closed() {
			n++
			b.disconnect(cl, packets.ErrNotAuthorized)
		}
		cl.ClearInflights()
		b.srv.UnsubscribeClient(cl)
		b.srv.Clients.Delete(cl.ID)
	}
	return n
}

// disconnect ends a client's connection, telling an MQTT 5 client why.
func (b *Broker) disconnect(cl *mochi.Client, code packets.Code) {
	if cl.Properties.ProtocolVersion < 5 {
		cl.Stop(code)
		return
	}
	_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(goodbyeTimeout))
	_ = b.srv.DisconnectClient(cl, code)
}
