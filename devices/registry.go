package devices

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Device is one identity of the devices file. A Device returned by a
// Registry is shared: do not modify it.
type Device struct {
	ID        string
	Password  string            // bcrypt hash as written ("" = no password login)
	CertCN    string            // "" = no certificate login
	Publish   []string          // patterns as written ({id} not yet substituted)
	Subscribe []string          // patterns as written
	Labels    map[string]string // free-form, for the admin API and presence events
	Enabled   bool              // key `enabled`, default true
}

// Registry is an immutable snapshot of a devices file, safe for concurrent
// use. A reload builds a new Registry (and Diff says whom to disconnect).
// A nil *Registry is an empty one: nobody logs in, anonymous clients may do
// nothing.
type Registry struct {
	file    string
	devices []*Device // file order
	byID    map[string]*entry
	byCN    map[string]*Device
	anonPub *ACL
	anonSub *ACL

	// The dummy hash that an unknown id is compared with, so that it costs
	// what a known id costs. Made on first use at the cost most hashes of the
	// file have: a fixed cost-10 hash would let a client tell cost-12 devices
	// from unknown ids by the time an answer takes.
	dummyCost int
	dummyOnce sync.Once
	dummy     []byte
}

type entry struct {
	dev      *Device
	pub, sub *ACL
}

func newRegistry(file string) *Registry {
	return &Registry{
		file:      file,
		byID:      map[string]*entry{},
		byCN:      map[string]*Device{},
		anonPub:   denyAll,
		anonSub:   denyAll,
		dummyCost: bcrypt.DefaultCost,
	}
}

// File returns the file name the registry was parsed from.
func (r *Registry) File() string {
	if r == nil {
		return ""
	}
	return r.file
}

// Devices returns every device in file order (a new slice; the devices are
// shared).
func (r *Registry) Devices() []*Device {
	if r == nil {
		return nil
	}
	return append([]*Device(nil), r.devices...)
}

func (r *Registry) entry(id string) *entry {
	if r == nil {
		return nil
	}
	return r.byID[id]
}

// Lookup returns the device with this id, or nil.
func (r *Registry) Lookup(id string) *Device {
	if e := r.entry(id); e != nil {
		return e.dev
	}
	return nil
}

// Publish returns the compiled publish ACL of a known device, nil (which
// allows nothing) for an unknown id. It does not look at Enabled.
func (r *Registry) Publish(id string) *ACL {
	if e := r.entry(id); e != nil {
		return e.pub
	}
	return nil
}

// Subscribe returns the compiled subscribe ACL of a known device, nil (which
// allows nothing) for an unknown id.
func (r *Registry) Subscribe(id string) *ACL {
	if e := r.entry(id); e != nil {
		return e.sub
	}
	return nil
}

// Anonymous returns the ACLs of the optional top-level anonymous: section,
// for clients without credentials when auth.anonymous is true. Without the
// section (or a list in it) they allow nothing.
func (r *Registry) Anonymous() (publish, subscribe *ACL) {
	if r == nil {
		return denyAll, denyAll
	}
	return r.anonPub, r.anonSub
}

// Authenticate checks an id and a password (MQTT user name and password,
// AMQP SASL PLAIN authcid and passwd). Every failure costs one bcrypt
// comparison, so that the time taken does not tell which ids exist; the first
// unknown id after a load costs a second one (making the dummy hash).
// ErrDisabled is returned only for the right password, for the same reason.
// As everywhere bcrypt is used, only the first 72 bytes of a password count.
func (r *Registry) Authenticate(id, password string) (*Device, error) {
	if r == nil {
		return nil, ErrBadCredentials // no ids exist to be revealed
	}
	e := r.byID[id]
	if e == nil || e.dev.Password == "" {
		r.dummyCompare(password)
		return nil, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword([]byte(e.dev.Password), []byte(password)) != nil {
		return nil, ErrBadCredentials
	}
	if !e.dev.Enabled {
		return nil, ErrDisabled
	}
	return e.dev, nil
}

func (r *Registry) dummyCompare(password string) {
	r.dummyOnce.Do(func() {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
		// The only possible errors are a bad cost (dummyCost comes from valid
		// hashes) and a long password (32 bytes).
		r.dummy, _ = bcrypt.GenerateFromPassword(secret, r.dummyCost)
	})
	_ = bcrypt.CompareHashAndPassword(r.dummy, []byte(password))
}

// ByCertificate returns the device that a verified TLS client certificate
// (the leaf) authenticates: the one whose cert_cn equals the Subject Common
// Name or one of the DNS names of the Subject Alternative Name extension.
// Names are compared exactly (case matters). If the CN and the DNS names
// name two different devices the certificate is refused
// (ErrAmbiguousCertificate) rather than one of them chosen. No match:
// ErrBadCredentials; a disabled device: ErrDisabled. Verifying the chain is
// the TLS listener's job.
func (r *Registry) ByCertificate(cert *x509.Certificate) (*Device, error) {
	if cert == nil {
		return nil, fmt.Errorf("%w: no client certificate", ErrBadCredentials)
	}
	if r == nil {
		return nil, ErrBadCredentials
	}
	found := r.byCN[cert.Subject.CommonName] // "" is never a cert_cn
	for _, name := range cert.DNSNames {
		d := r.byCN[name]
		switch {
		case d == nil || d == found:
		case found == nil:
			found = d
		default:
			return nil, &ambiguousError{found.ID, d.ID}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no device has cert_cn %s or one of the DNS names %q", ErrBadCredentials, strconv.Quote(cert.Subject.CommonName), cert.DNSNames)
	}
	if !found.Enabled {
		return nil, ErrDisabled
	}
	return found, nil
}

// Diff returns the ids whose connections must be closed when new replaces
// old: devices that were enabled in old and are removed or disabled in new,
// or whose password hash or cert_cn changed. Changed ACLs need no
// disconnection: they are checked on every publish and delivery. A nil
// Registry counts as empty.
func Diff(old, new *Registry) (kick []string) {
	if old == nil {
		return nil
	}
	for _, d := range old.devices {
		if !d.Enabled {
			continue // it cannot be connected
		}
		n := new.Lookup(d.ID)
		if n == nil || !n.Enabled || n.Password != d.Password || n.CertCN != d.CertCN {
			kick = append(kick, d.ID)
		}
	}
	return kick
}

// ErrEmptyPassword is returned by HashPassword for an empty password.
var ErrEmptyPassword = errors.New("devices: empty password")

// HashPassword returns the bcrypt hash of password for the devices file
// (`isthmus passwd`), at cost bcrypt.DefaultCost when cost <= 0. bcrypt reads
// at most 72 bytes: a longer password is refused rather than cut.
func HashPassword(password []byte, cost int) (string, error) {
	if cost <= 0 {
		cost = bcrypt.DefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return "", fmt.Errorf("devices: bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if len(password) == 0 {
		return "", ErrEmptyPassword
	}
	if len(password) > 72 {
		return "", fmt.Errorf("devices: password is %d bytes, bcrypt uses at most 72: %w", len(password), bcrypt.ErrPasswordTooLong)
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return "", fmt.Errorf("devices: %w", err)
	}
	return string(h), nil
}
