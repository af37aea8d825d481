package amqp

// TLS: a ClientHello on the AMQP port (amqps), the AMQP TLS header (id 2, AMQP 1.0 §5.2), and
// SASL EXTERNAL with the verified client certificate.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		pool:   pool,
		server: leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}),
		client: leaf(3, "device-7", x509.ExtKeyUsageClientAuth, nil),
	}
}

func (p *testPKI) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
}

func (p *testPKI) clientConfig(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{p.client}
	}
	return c
}

func TestTLSExternalAndAutodetect(t *testing.T) {
	pki := newTestPKI(t)
	ids := make(chan Identity, 10)
	auth := AuthenticatorFunc(func(_ context.Context, r *AuthRequest) (string, error) {
		if r.Mechanism == "PLAIN" && r.Password == "pw" {
			return r.Username, nil
		}
		if r.Mechanism == "EXTERNAL" && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			return "cert:" + r.TLS.VerifiedChains[0][0].Subject.CommonName, nil
		}
		return "", errors.New("no")
	})
	_, url, _ := startServer(t, ServerOptions{TLSConfig: pki.serverConfig(), Authenticator: auth,
		OnConnOpen: func(c *Conn) error { ids <- c.Identity(); return nil }})
	amqps := strings.Replace(url, "amqp://", "amqps://", 1)
	ctx := ctxT(t, 10*time.Second)

	// amqps with a client certificate and SASL EXTERNAL: the identity is the certificate's CN.
	c := dialOwn(t, amqps, &ConnOptions{TLSConfig: pki.clientConfig(true), SASL: SASLExternal("")})
	if id := <-ids; id.Mechanism != "EXTERNAL" || id.Name != "cert:device-7" {
		t.Fatalf("identity %+v", id)
	}
	if c.TLSState() == nil {
		t.Fatal("no TLS state on the client")
	}
	sess := ownSession(t, c)
	if _, err := sess.NewSender(ctx, "sink-tls", nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	// go-amqp over amqps with EXTERNAL.
	gc, err := goamqp.Dial(ctx, amqps, &goamqp.ConnOptions{TLSConfig: pki.clientConfig(true), SASLType: goamqp.SASLTypeExternal("")})
	if err != nil {
		t.Fatalf("go-amqp amqps EXTERNAL: %v", err)
	}
	<-ids
	_ = gc.Close()

	// Without a client certificate EXTERNAL is not offered.
	if c, err := Dial(ctx, amqps, &ConnOptions{TLSConfig: pki.clientConfig(false), SASL: SASLExternal("")}); err == nil {
		_ = c.Close()
		t.Fatal("EXTERNAL without a client certificate succeeded")
	}
	// PLAIN inside TLS without a client certificate works.
	c2 := dialOwn(t, "amqps://dev:pw@"+strings.TrimPrefix(url, "amqp://"), &ConnOptions{TLSConfig: pki.clientConfig(false)})
	if id := <-ids; id.Mechanism != "PLAIN" || id.Name != "dev" {
		t.Fatalf("identity %+v", id)
	}
	_ = c2.Close()

	// The AMQP TLS header: "AMQP" 2 1 0 0, echoed, then TLS, then SASL inside it.
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "amqp://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frames.AppendProtocolHeader(nil, frames.ProtocolTLS)); err != nil {
		t.Fatal(err)
	}
	var h [8]byte
	if _, err := io.ReadFull(nc, h[:]); err != nil {
		t.Fatal(err)
	}
	if ph, err := frames.ParseProtocolHeader(h[:]); err != nil || ph.ID != frames.ProtocolTLS {
		t.Fatalf("TLS header answered with %q", h[:])
	}
	tc := tls.Client(nc, pki.clientConfig(true))
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	c3, err := NewConn(ctx, tc, &ConnOptions{SASL: SASLExternal("")})
	if err != nil {
		t.Fatalf("NewConn after the TLS header: %v", err)
	}
	if id := <-ids; id.Name != "cert:device-7" {
		t.Fatalf("identity %+v", id)
	}
	if err := c3.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTLSExternalDefaultIdentity: without an Authenticator, EXTERNAL takes the verified leaf
// certificate's common name.
func TestTLSExternalDefaultIdentity(t *testing.T) {
	pki := newTestPKI(t)
	ids := make(chan Identity, 1)
	_, url, _ := startServer(t, ServerOptions{TLSConfig: pki.serverConfig(), OnConnOpen: func(c *Conn) error { ids <- c.Identity(); return nil }})
	c := dialOwn(t, strings.Replace(url, "amqp://", "amqps://", 1), &ConnOptions{TLSConfig: pki.clientConfig(true), SASL: SASLExternal("")})
	if id := <-ids; id.Mechanism != "EXTERNAL" || id.Name != "device-7" {
		t.Fatalf("identity %+v", id)
	}
	_ = c.Close()
}

func TestTLSRefusedWithoutConfig(t *testing.T) {
	pki := newTestPKI(t)
	_, url, _ := startServer(t, ServerOptions{AllowAnonymous: true})
	ctx := ctxT(t, 10*time.Second)
	if c, err := Dial(ctx, strings.Replace(url, "amqp://", "amqps://", 1), &ConnOptions{TLSConfig: pki.clientConfig(false)}); err == nil {
		_ = c.Close()
		t.Fatal("TLS accepted by a server without TLSConfig")
	}
	p := rawDial(t, url)
	p.write(frames.AppendProtocolHeader(nil, frames.ProtocolTLS))
	if h := p.readHeader(); h.ID == frames.ProtocolTLS {
		t.Fatal("TLS header echoed without TLS configured")
	}
	p.expectEOF()
}
