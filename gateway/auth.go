package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/config"
	"github.com/isthmus-iot/isthmus/devices"
	"github.com/isthmus-iot/isthmus/mqtt"
)

// authority answers who a client is and what it may do, for both protocols,
// from the devices file (SPEC §7). Without a devices file every client is
// anonymous and may do anything (local mode); config validation makes sure
// that happens only with auth.anonymous: true.
type authority struct {
	log       *slog.Logger
	anonymous atomic.Bool
	reg       atomic.Pointer[devices.Registry] // nil: no devices file
	verified  atomic.Pointer[credCache]        // for the registry in reg
	sum       [sha256.Size]byte                // of the file content last read; guarded by Server.devMu
}

// credCache remembers, per registry, the last password each device logged in
// with, as an HMAC under a key that lives only in this process. A reconnect
// with the same password (all devices after a restart of the network, say)
// then costs a hash instead of a bcrypt comparison: at cost 10 that is about
// 70 ms of a Raspberry Pi's core per login, so 10,000 devices would otherwise
// take minutes to get back in.
type credCache struct {
	reg *devices.Registry
	key [32]byte
	m   sync.Map // device id → [sha256.Size]byte
}

func (c *credCache) mac(id, password string) (sum [sha256.Size]byte) {
	h := hmac.New(sha256.New, c.key[:])
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(password))
	h.Sum(sum[:0])
	return sum
}

// bcryptSlots bounds the bcrypt comparisons running at once, so that a flood
// of logins with wrong passwords leaves cores for the traffic of clients
// already connected; further logins wait their turn (within connect_timeout).
var bcryptSlots = make(chan struct{}, max(1, runtime.NumCPU()/2))

// password checks id and password against reg, through the cache.
func (a *authority) password(reg *devices.Registry, id, password string) (*devices.Device, error) {
	c := a.verified.Load()
	if c == nil || c.reg != reg {
		c = &credCache{reg: reg}
		_, _ = rand.Read(c.key[:])
		a.verified.Store(c)
	}
	mac := c.mac(id, password)
	if v, ok := c.m.Load(id); ok && hmac.Equal(mac[:], v.([]byte)) {
		if d := reg.Lookup(id); d != nil && d.Enabled {
			return d, nil
		}
	}
	bcryptSlots <- struct{}{}
	d, err := reg.Authenticate(id, password)
	<-bcryptSlots
	if err == nil {
		c.m.Store(id, mac[:])
	}
	return d, err
}

var (
	errCredentialsRequired = errors.New("credentials required: anonymous access is off (auth.anonymous: false)")
	errUnknownCertificate  = errors.New("the client certificate matches no device's cert_cn")
)

// loadDevices reads the devices file named by cfg, if any.
func loadDevices(cfg *config.Config) (*devices.Registry, [sha256.Size]byte, error) {
	if cfg.Auth.DevicesFile == "" {
		return nil, [sha256.Size]byte{}, nil
	}
	data, err := readDevicesFile(cfg.Auth.DevicesFile)
	if err != nil {
		return nil, [sha256.Size]byte{}, cfg.At("auth.devices_file", err.Error())
	}
	sum := sha256.Sum256(data)
	reg, err := devices.Parse(cfg.Auth.DevicesFile, data)
	if err != nil {
		return nil, sum, err
	}
	return reg, sum, nil
}

// readDevicesFile reads at most one byte more than a devices file may hold,
// so that devices.Parse can refuse a larger one without this process reading
// a mistyped /dev/zero to the end.
func readDevicesFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, devices.MaxFileSize+1))
}

// Authenticate implements mqtt.Auth: a verified client certificate whose CN
// or SAN is a device's cert_cn, else user name and password, else anonymous
// when allowed. A user name is a claim of identity, never ignored: with a
// devices file, a wrong one is refused even where anonymous access is on.
func (a *authority) Authenticate(req *mqtt.ConnectRequest) (string, error) {
	reg := a.reg.Load()
	if reg == nil {
		if a.anonymous.Load() {
			return "", nil
		}
		return "", errCredentialsRequired
	}
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 {
		d, err := reg.ByCertificate(req.TLS.VerifiedChains[0][0])
		switch {
		case err == nil && (!req.UsernameFlag || req.Username == d.ID):
			return d.ID, nil
		case err == nil:
			return "", fmt.Errorf("user name %q differs from the certificate's device %q", req.Username, d.ID)
		case errors.Is(err, devices.ErrDisabled):
			return "", err
		}
		// A certificate of the client CA that names no device: the CA vouches
		// for the transport only; credentials may still identify the client.
	}
	if req.UsernameFlag {
		d, err := a.password(reg, req.Username, string(req.Password))
		if err != nil {
			return "", err
		}
		return d.ID, nil
	}
	if a.anonymous.Load() {
		return "", nil
	}
	return "", errCredentialsRequired
}

// Allow implements mqtt.Auth. It runs on every delivery: two atomic loads,
// a map lookup and an allocation-free match.
func (a *authority) Allow(identity, topic string, write bool) bool {
	reg := a.reg.Load()
	if reg == nil {
		return true
	}
	var acl *devices.ACL
	switch {
	case identity == "" && write:
		acl, _ = reg.Anonymous()
	case identity == "":
		_, acl = reg.Anonymous()
	case write:
		acl = reg.Publish(identity)
	default:
		acl = reg.Subscribe(identity)
	}
	if acl == nil { // removed from the devices file
		return false
	}
	if write {
		return acl.AllowsTopic(topic)
	}
	return acl.AllowsFilter(topic)
}

// amqpAuthenticator checks SASL PLAIN and EXTERNAL against the same devices.
func (a *authority) amqpAuthenticator() amqp.Authenticator {
	return amqp.AuthenticatorFunc(func(_ context.Context, req *amqp.AuthRequest) (string, error) {
		id, err := a.amqpAuthenticate(req)
		if err != nil {
			// As for MQTT: the user name is an id, not a secret; the password is never logged.
			a.log.Info("AMQP client refused", "mechanism", req.Mechanism, "username", req.Username,
				"remote", req.RemoteAddr.String(), "error", err)
		}
		return id, err
	})
}

func (a *authority) amqpAuthenticate(req *amqp.AuthRequest) (string, error) {
	reg := a.reg.Load()
	if reg == nil {
		return "", errors.New("no devices file: PLAIN and EXTERNAL have no identities to check")
	}
	switch req.Mechanism {
	case "PLAIN":
		if req.Authzid != "" && req.Authzid != req.Username {
			return "", fmt.Errorf("authzid %q differs from authcid %q: acting for another identity is not supported", req.Authzid, req.Username)
		}
		if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 {
			// As on MQTT: a client certificate naming a device binds the connection to it.
			if d, err := reg.ByCertificate(req.TLS.VerifiedChains[0][0]); err == nil && d.ID != req.Username {
				return "", fmt.Errorf("user name %q differs from the certificate's device %q", req.Username, d.ID)
			}
		}
		d, err := a.password(reg, req.Username, req.Password)
		if err != nil {
			return "", err
		}
		return d.ID, nil
	case "EXTERNAL":
		if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 {
			return "", errors.New("EXTERNAL without a verified client certificate")
		}
		d, err := reg.ByCertificate(req.TLS.VerifiedChains[0][0])
		if err != nil {
			if errors.Is(err, devices.ErrDisabled) {
				return "", err
			}
			return "", errUnknownCertificate
		}
		if req.Authzid != "" && req.Authzid != d.ID {
			return "", fmt.Errorf("authzid %q differs from the certificate's device %q", req.Authzid, d.ID)
		}
		return d.ID, nil
	}
	return "", &amqp.SASLError{Code: frames.SASLCodeSysPerm, Err: fmt.Errorf("mechanism %s not handled", req.Mechanism)}
}

// amqpIdentity is who an AMQP connection authenticated as: "" for anonymous
// (SASL ANONYMOUS or no SASL layer).
func amqpIdentity(c *amqp.Conn) string {
	if id := c.Identity(); id.Mechanism == "PLAIN" || id.Mechanism == "EXTERNAL" {
		return id.Name
	}
	return ""
}

// unauthorized is the AMQP refusal of an ACL check.
func unauthorized(what string) *amqp.Error {
	return &amqp.Error{Condition: frames.CondUnauthorizedAccess, Description: what + " is not allowed for this identity (devices file ACL)"}
}

// setDevices installs a new registry and disconnects every identity that was
// removed, disabled or got new credentials. It returns the ids kicked.
func (s *Server) setDevices(reg *devices.Registry, sum [sha256.Size]byte) []string {
	a := &s.auth
	old := a.reg.Swap(reg)
	a.sum = sum
	if old == nil || reg == nil {
		return nil
	}
	kick := devices.Diff(old, reg)
	for _, id := range kick {
		n := s.broker.KickIdentity(id)
		n += s.kickAMQPIdentity(id)
		s.log.Info("device removed or changed in the devices file: disconnected", "device", id, "connections", n)
	}
	return kick
}

// watchDevices reloads the devices file when its content changes (polled:
// no inotify on every board, and editors replace files in ways watchers miss).
func (s *Server) watchDevices(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cfg := s.cfg.Load()
		if cfg.Auth.DevicesFile == "" {
			continue
		}
		data, err := readDevicesFile(cfg.Auth.DevicesFile)
		if err != nil {
			continue
		}
		s.devMu.Lock()
		same := sha256.Sum256(data) == s.auth.sum
		s.devMu.Unlock()
		if !same {
			_ = s.reloadDevices(cfg)
		}
	}
}

// reloadDevices loads the devices file again and applies it, keeping the old
// registry when the file has errors.
func (s *Server) reloadDevices(cfg *config.Config) error {
	reg, sum, err := loadDevices(cfg)
	if err != nil {
		s.devMu.Lock()
		s.auth.sum = sum // do not retry the same broken content every tick
		s.devMu.Unlock()
		s.log.Error("devices file not reloaded; the previous one stays in force", "file", cfg.Auth.DevicesFile, "error", err)
		s.reloadFailed.Inc()
		return err
	}
	s.applyDevices(cfg, reg, sum)
	return nil
}

// applyDevices installs a registry read from cfg's devices file.
func (s *Server) applyDevices(cfg *config.Config, reg *devices.Registry, sum [sha256.Size]byte) {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	kicked := s.setDevices(reg, sum)
	n := 0
	if reg != nil {
		n = len(reg.Devices())
	}
	s.log.Info("devices file loaded", "file", cfg.Auth.DevicesFile, "devices", n, "disconnected", len(kicked))
}
