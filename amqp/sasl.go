package amqp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// SASL mechanism names. AMQP 1.0 §5.3.3.1; RFC 4505 (ANONYMOUS), RFC 4616 (PLAIN), RFC 4422
// Appendix A (EXTERNAL).
const (
	mechAnonymous = "ANONYMOUS"
	mechPlain     = "PLAIN"
	mechExternal  = "EXTERNAL"
)

// maxSASLFrame is the largest SASL frame accepted. AMQP 1.0 §5.3.1 limits frames before open to
// 512 bytes; input is accepted up to 4 KiB so that long PLAIN credentials from lenient clients pass.
// Frames this side sends stay within 512.
const maxSASLFrame = 4096

// Authenticator checks credentials for SASL PLAIN and EXTERNAL on a server.
type Authenticator interface {
	// Authenticate returns the identity the peer is known by, or an error that fails the SASL
	// exchange: a *SASLError chooses the outcome code, any other error gives code auth.
	Authenticate(ctx context.Context, req *AuthRequest) (identity string, err error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, req *AuthRequest) (string, error)

// Authenticate calls f(ctx, req).
func (f AuthenticatorFunc) Authenticate(ctx context.Context, req *AuthRequest) (string, error) {
	return f(ctx, req)
}

// AuthRequest holds what a peer presented in its SASL exchange.
type AuthRequest struct {
	Mechanism  string // "PLAIN" or "EXTERNAL"
	Username   string // PLAIN authcid
	Password   string // PLAIN passwd
	Authzid    string // PLAIN authzid, or EXTERNAL's initial response
	Hostname   string // sasl-init hostname
	RemoteAddr net.Addr
	TLS        *tls.ConnectionState // nil without TLS; EXTERNAL needs verified chains
}

// SASLConfig is a client's SASL choice (ConnOptions.SASL). The zero value means no SASL layer,
// unless the URL has user info.
type SASLConfig struct {
	Mechanism string
	Username  string
	Password  string
	Authzid   string
}

// SASLPlain authenticates with user name and password (RFC 4616).
func SASLPlain(username, password string) SASLConfig {
	return SASLConfig{Mechanism: mechPlain, Username: username, Password: password}
}

// SASLAnonymous runs SASL ANONYMOUS (RFC 4505): what Proton and uamqp do without credentials.
func SASLAnonymous() SASLConfig { return SASLConfig{Mechanism: mechAnonymous} }

// SASLExternal authenticates with the TLS client certificate; authzid may be empty.
func SASLExternal(authzid string) SASLConfig {
	return SASLConfig{Mechanism: mechExternal, Authzid: authzid}
}

func (cfg SASLConfig) initialResponse() []byte {
	switch cfg.Mechanism {
	case mechPlain:
		// RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd
		b := make([]byte, 0, len(cfg.Authzid)+len(cfg.Username)+len(cfg.Password)+2)
		b = append(b, cfg.Authzid...)
		b = append(b, 0)
		b = append(b, cfg.Username...)
		b = append(b, 0)
		return append(b, cfg.Password...)
	case mechExternal:
		return []byte(cfg.Authzid)
	case mechAnonymous:
		return []byte("anonymous")
	}
	return nil
}

// readSASLFrame reads the next SASL frame body during the handshake.
func (c *Conn) readSASLFrame() (frames.SASLFrame, error) {
	f, err := c.fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	if f.Type != frames.FrameSASL {
		return nil, errorf(frames.CondConnectionFramingError, "expected a SASL frame")
	}
	sf, err := frames.DecodeSASLFrame(bytes.Clone(f.Body))
	if err != nil {
		return nil, err
	}
	if c.cfg.trace {
		c.log.Debug("frame received", "performative", fmt.Sprintf("%T%+v", sf, sf))
	}
	return sf, nil
}

// serverSASL runs the server side of the SASL exchange after the SASL headers were exchanged:
// mechanisms, init, [challenge/response], outcome. AMQP 1.0 §5.3.2.
func (c *Conn) serverSASL(ctx context.Context, srv *Server) (Identity, error) {
	mechs := srv.mechanismsFor(c.tlsState)
	syms := make([]frames.Symbol, len(mechs))
	for i, m := range mechs {
		syms[i] = frames.Symbol(m)
	}
	if err := c.writeFrameSync(nil, frames.FrameSASL, &frames.SASLMechanisms{SASLServerMechanisms: syms}); err != nil {
		return Identity{}, err
	}
	sf, err := c.readSASLFrame()
	if err != nil {
		return Identity{}, err
	}
	init, ok := sf.(*frames.SASLInit)
	if !ok {
		return Identity{}, c.saslFail(frames.SASLCodeSysPerm, fmt.Errorf("expected sasl-init, got %T", sf))
	}
	mech := string(init.Mechanism)
	if !slices.Contains(mechs, mech) {
		// A client must choose an offered mechanism (amqpnetlite#217).
		return Identity{}, c.saslFail(frames.SASLCodeAuth, fmt.Errorf("mechanism %q was not offered", mech))
	}
	id := Identity{Mechanism: mech}
	req := &AuthRequest{Mechanism: mech, Hostname: init.Hostname.Or(""), RemoteAddr: c.nc.RemoteAddr(), TLS: c.tlsState}
	switch mech {
	case mechAnonymous:
		// RFC 4505: the optional trace information is not an identity.
	case mechPlain:
		resp := init.InitialResponse
		if resp == nil {
			// RFC 4616 §2 / RFC 4422 §5: without an initial response the server sends an empty
			// challenge and the credentials come in the response.
			if err := c.writeFrameSync(nil, frames.FrameSASL, &frames.SASLChallenge{Challenge: []byte{}}); err != nil {
				return Identity{}, err
			}
			sf, err := c.readSASLFrame()
			if err != nil {
				return Identity{}, err
			}
			r, ok := sf.(*frames.SASLResponse)
			if !ok {
				return Identity{}, c.saslFail(frames.SASLCodeSysPerm, fmt.Errorf("expected sasl-response, got %T", sf))
			}
			resp = r.Response
		}
		parts := bytes.Split(resp, []byte{0})
		if len(parts) != 3 || len(parts[1]) == 0 {
			return Identity{}, c.saslFail(frames.SASLCodeAuth, errors.New("malformed PLAIN response"))
		}
		req.Authzid, req.Username, req.Password = string(parts[0]), string(parts[1]), string(parts[2])
		if srv.opts.Authenticator == nil {
			return Identity{}, c.saslFail(frames.SASLCodeAuth, errors.New("PLAIN without an authenticator"))
		}
		name, err := srv.opts.Authenticator.Authenticate(ctx, req)
		if err != nil {
			return Identity{}, c.authFail(err)
		}
		id.Name, id.Authzid = name, req.Authzid
	case mechExternal:
		if c.tlsState == nil || len(c.tlsState.VerifiedChains) == 0 {
			return Identity{}, c.saslFail(frames.SASLCodeAuth, errors.New("EXTERNAL without a verified client certificate"))
		}
		req.Authzid = string(init.InitialResponse)
		id.Authzid = req.Authzid
		if srv.opts.Authenticator != nil {
			name, err := srv.opts.Authenticator.Authenticate(ctx, req)
			if err != nil {
				return Identity{}, c.authFail(err)
			}
			id.Name = name
		} else {
			id.Name = c.tlsState.VerifiedChains[0][0].Subject.CommonName
		}
	}
	if err := c.writeFrameSync(nil, frames.FrameSASL, &frames.SASLOutcome{Code: frames.SASLCodeOK}); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func (c *Conn) authFail(err error) error {
	var se *SASLError
	if errors.As(err, &se) {
		return c.saslFail(se.Code, err)
	}
	return c.saslFail(frames.SASLCodeAuth, err)
}

// saslFail sends a failing outcome (rather than just closing: rabbitmq-amqp1.0#47) and returns
// the error.
func (c *Conn) saslFail(code frames.SASLCode, err error) error {
	_ = c.writeFrameSync(nil, frames.FrameSASL, &frames.SASLOutcome{Code: code})
	return &SASLError{Code: code, Err: err}
}

// clientSASL runs the client side: pick the configured mechanism from the server's list, send
// init, answer challenges with nothing more to say, read the outcome. AMQP 1.0 §5.3.2.
func (c *Conn) clientSASL(cfg SASLConfig) error {
	sf, err := c.readSASLFrame()
	if err != nil {
		return err
	}
	m, ok := sf.(*frames.SASLMechanisms)
	if !ok {
		return fmt.Errorf("amqp: expected sasl-mechanisms, got %T", sf)
	}
	if !slices.Contains(m.SASLServerMechanisms, frames.Symbol(cfg.Mechanism)) {
		return &SASLError{Code: frames.SASLCodeAuth, Err: fmt.Errorf("server does not offer %s (offers %v)", cfg.Mechanism, m.SASLServerMechanisms)}
	}
	init := &frames.SASLInit{Mechanism: frames.Symbol(cfg.Mechanism), InitialResponse: cfg.initialResponse()}
	if c.cfg.hostname != "" {
		init.Hostname = frames.Some(c.cfg.hostname)
	}
	if err := c.writeFrameSync(nil, frames.FrameSASL, init); err != nil {
		return err
	}
	for {
		sf, err := c.readSASLFrame()
		if err != nil {
			return err
		}
		switch f := sf.(type) {
		case *frames.SASLChallenge:
			if err := c.writeFrameSync(nil, frames.FrameSASL, &frames.SASLResponse{Response: cfg.initialResponse()}); err != nil {
				return err
			}
		case *frames.SASLOutcome:
			if f.Code != frames.SASLCodeOK {
				return &SASLError{Code: f.Code}
			}
			return nil
		default:
			return fmt.Errorf("amqp: unexpected %T during SASL", sf)
		}
	}
}
