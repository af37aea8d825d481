package devices

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func mustParse(t *testing.T, src string) *Registry {
	t.Helper()
	r, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%v\n--- source:\n%s", err, src)
	}
	return r
}

func hash(t *testing.T, password string) string {
	t.Helper()
	h, err := HashPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashPassword(t *testing.T) {
	h := hash(t, "s3cret")
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != bcrypt.MinCost {
		t.Errorf("cost %d, %v", cost, err)
	}
	if msg := checkHash(h); msg != "" {
		t.Errorf("the devices file refuses a hash HashPassword made: %s", msg)
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")) != nil || bcrypt.CompareHashAndPassword([]byte(h), []byte("s3creT")) == nil {
		t.Error("round trip failed")
	}
	if h2 := hash(t, "s3cret"); h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	// The default cost, once (about 50 ms).
	h, err := HashPassword([]byte("x"), 0)
	if cost, _ := bcrypt.Cost([]byte(h)); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("cost 0 gave cost %d, %v", cost, err)
	}
	for _, tc := range []struct {
		pw   []byte
		cost int
		want string
	}{
		{nil, 4, "empty password"},
		{[]byte(strings.Repeat("a", 73)), 4, "73 bytes"},
		{[]byte("x"), 3, "cost 3"},
		{[]byte("x"), 32, "cost 32"},
	} {
		if _, err := HashPassword(tc.pw, tc.cost); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HashPassword(%d bytes, %d) = %v, want %q", len(tc.pw), tc.cost, err, tc.want)
		}
	}
	if _, err := HashPassword([]byte(strings.Repeat("a", 72)), 4); err != nil {
		t.Errorf("72 bytes: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	r, err := Load("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Authenticate("sensor-42", "s3cret")
	if err != nil || d == nil || d.ID != "sensor-42" {
		t.Fatalf("right password: %v, %v", d, err)
	}
	if d, err := r.Authenticate("backend-service", "backend-pw"); err != nil || d.ID != "backend-service" {
		t.Errorf("backend-service: %v", err)
	}
	for _, tc := range []struct {
		id, pw string
		want   error
	}{
		{"sensor-42", "wrong", ErrBadCredentials},
		{"sensor-42", "", ErrBadCredentials},
		{"sensor-42", "s3cret ", ErrBadCredentials},
		{"sensor-42", "backend-pw", ErrBadCredentials}, // another device's password
		{"Sensor-42", "s3cret", ErrBadCredentials},     // ids are case-sensitive
		{"nobody", "s3cret", ErrBadCredentials},
		{"", "", ErrBadCredentials},
		{"camera-7", "", ErrBadCredentials}, // certificate only
		{"camera-7", "anything", ErrBadCredentials},
		{"old-sensor", "disabled-pw", ErrDisabled},
		{"old-sensor", "wrong", ErrBadCredentials}, // disabled is told only to the right password
	} {
		d, err := r.Authenticate(tc.id, tc.pw)
		if d != nil || err != tc.want {
			t.Errorf("Authenticate(%q, %q) = %v, %v; want %v", tc.id, tc.pw, d, err, tc.want)
		}
	}
	// The unknown-id path compared against a hash at the file's cost.
	if r.dummy == nil {
		t.Fatal("no dummy hash made for unknown ids")
	}
	if cost, _ := bcrypt.Cost(r.dummy); cost != 4 {
		t.Errorf("dummy hash cost %d, want the file's 4", cost)
	}
}

func TestCommonCost(t *testing.T) {
	h4a, h4b := hash(t, "a"), hash(t, "b")
	h5, err := HashPassword([]byte("c"), 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hashes []string
		want   int
	}{
		{nil, bcrypt.DefaultCost},
		{[]string{h4a, h4b, h5}, 4},
		{[]string{h4a, h5}, 5}, // a tie goes to the higher cost
	} {
		var devs []*Device
		for _, h := range tc.hashes {
			devs = append(devs, &Device{Password: h})
		}
		if got := commonCost(devs); got != tc.want {
			t.Errorf("%d hashes: cost %d, want %d", len(tc.hashes), got, tc.want)
		}
	}
}

// TestAuthenticateTiming: an unknown id takes about as long as a known id
// with a wrong password (one bcrypt comparison at the same cost), not the
// microseconds a map miss takes.
func TestAuthenticateTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	h, err := HashPassword([]byte("pw"), 8) // about 15 ms: far above scheduling noise
	if err != nil {
		t.Fatal(err)
	}
	r := mustParse(t, "devices:\n  - id: known\n    password: \""+h+"\"\n")
	r.Authenticate("warm-up", "x") // makes the dummy hash
	measure := func(id string) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			r.Authenticate(id, "wrong")
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := measure("known"), measure("unknown")
	if unknown < known/3 || unknown > known*3 {
		t.Errorf("unknown id took %v, known id with wrong password %v", unknown, known)
	}
	t.Logf("known %v, unknown %v", known, unknown)
}

// cert makes a self-signed certificate with this CN and DNS names, parsed
// back from DER as a TLS listener would see it.
func cert(t *testing.T, cn string, dns ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"isthmus test"}},
		DNSNames:     dns,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestByCertificate(t *testing.T) {
	r := mustParse(t, `
devices:
  - id: sensor-42
    cert_cn: sensor-42
  - id: camera-7
    cert_cn: cam7.plant-1.example
  - id: old
    cert_cn: old.example
    enabled: false
  - id: pw-only
    password: "`+hash(t, "x")+`"
`)
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		id   string
		err  error
	}{
		{"CN", cert(t, "sensor-42"), "sensor-42", nil},
		{"SAN", cert(t, "Camera Seven", "cam7.plant-1.example"), "camera-7", nil},
		{"SAN among others", cert(t, "", "unrelated.example", "cam7.plant-1.example"), "camera-7", nil},
		{"CN and SAN agree", cert(t, "sensor-42", "sensor-42", "unrelated.example"), "sensor-42", nil},
		{"no match", cert(t, "sensor-43", "sensor-43.example"), "", ErrBadCredentials},
		{"case differs", cert(t, "Sensor-42"), "", ErrBadCredentials},
		{"empty", cert(t, ""), "", ErrBadCredentials},
		{"pw-only id as CN", cert(t, "pw-only"), "", ErrBadCredentials},
		{"disabled", cert(t, "old.example"), "", ErrDisabled},
		{"ambiguous", cert(t, "sensor-42", "cam7.plant-1.example"), "", ErrAmbiguousCertificate},
		{"ambiguous SANs", cert(t, "x", "sensor-42", "cam7.plant-1.example"), "", ErrAmbiguousCertificate},
		{"nil", nil, "", ErrBadCredentials},
	} {
		d, err := r.ByCertificate(tc.cert)
		switch {
		case tc.err != nil && (d != nil || !errors.Is(err, tc.err)):
			t.Errorf("%s: %v, %v; want %v", tc.name, d, err, tc.err)
		case tc.err == nil && (err != nil || d == nil || d.ID != tc.id):
			t.Errorf("%s: %v, %v; want %s", tc.name, d, err, tc.id)
		}
		if errors.Is(err, ErrAmbiguousCertificate) && (!errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), `"sensor-42"`)) {
			t.Errorf("%s: %v does not match ErrBadCredentials or name the ids", tc.name, err)
		}
	}
}

func TestDiff(t *testing.T) {
	h1, h2 := hash(t, "one"), hash(t, "two")
	old := mustParse(t, `
devices:
  - {id: same, password: "`+h1+`", publish: [a]}
  - {id: removed, cert_cn: removed}
  - {id: disabled, cert_cn: disabled}
  - {id: new-password, password: "`+h1+`"}
  - {id: new-cn, cert_cn: cn-1}
  - {id: new-acl, cert_cn: acl, publish: [a]}
  - {id: new-labels, cert_cn: labels, labels: {a: b}}
  - {id: was-disabled, cert_cn: wd, enabled: false}
  - {id: was-disabled-removed, cert_cn: wdr, enabled: false}
  - {id: cn-removed, password: "`+h1+`", cert_cn: cr}
`)
	new := mustParse(t, `
devices:
  - {id: added, cert_cn: added}
  - {id: same, password: "`+h1+`", publish: [a]}
  - {id: disabled, cert_cn: disabled, enabled: false}
  - {id: new-password, password: "`+h2+`"}
  - {id: new-cn, cert_cn: cn-2}
  - {id: new-acl, cert_cn: acl, publish: [b]}
  - {id: new-labels, cert_cn: labels, labels: {a: c}}
  - {id: was-disabled, cert_cn: wd}
  - {id: cn-removed, password: "`+h1+`"}
`)
	want := []string{"removed", "disabled", "new-password", "new-cn", "cn-removed"}
	if got := Diff(old, new); !slices.Equal(got, want) {
		t.Errorf("Diff = %q, want %q", got, want)
	}
	if got := Diff(old, old); len(got) != 0 {
		t.Errorf("Diff with itself = %q", got)
	}
	if got := Diff(nil, new); len(got) != 0 {
		t.Errorf("Diff from nil = %q", got)
	}
	wantAll := []string{"same", "removed", "disabled", "new-password", "new-cn", "new-acl", "new-labels", "cn-removed"}
	if got := Diff(old, nil); !slices.Equal(got, wantAll) {
		t.Errorf("Diff to nil = %q, want %q", got, wantAll)
	}
}

// TestNilRegistry: a nil *Registry (no devices file) is an empty one.
func TestNilRegistry(t *testing.T) {
	var r *Registry
	pub, sub := r.Anonymous()
	if r.Lookup("a") != nil || r.Publish("a") != nil || r.Subscribe("a") != nil || len(r.Devices()) != 0 || r.File() != "" ||
		pub == nil || sub == nil || pub.AllowsTopic("a") || sub.AllowsFilter("a") {
		t.Error("nil registry is not empty")
	}
	if _, err := r.Authenticate("a", "b"); err != ErrBadCredentials {
		t.Errorf("Authenticate: %v", err)
	}
	if _, err := r.ByCertificate(cert(t, "a")); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("ByCertificate: %v", err)
	}
}
