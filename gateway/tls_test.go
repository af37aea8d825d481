package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// certSerial numbers the certificates of a test run: no two share a serial.
var certSerial atomic.Int64

// signed creates the certificate tmpl for a new P-256 key, signed by parent,
// or self-signed when parent is nil.
func signed(t *testing.T, tmpl *x509.Certificate, parent *testCA) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(certSerial.Add(1))
	issuer, issuerKey := tmpl, key
	if parent != nil {
		issuer, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func newCA(t *testing.T, cn string) *testCA {
	t.Helper()
	cert, key := signed(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil)
	return &testCA{cert: cert, key: key}
}

// issueFor signs a certificate for cn valid from notBefore to notAfter; a
// server certificate is for the IP address 127.0.0.1.
func (ca *testCA) issueFor(t *testing.T, cn string, usage x509.ExtKeyUsage, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	cert, key := signed(t, tmpl, ca)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}

// issue signs a certificate for cn valid from an hour ago to an hour ahead.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	return ca.issueFor(t, cn, usage, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// clientCert is a client certificate for cn.
func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	return ca.issue(t, cn, x509.ExtKeyUsageClientAuth)
}

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate for CN sensor-42; the CA and server files are PEM in dir.
type testPKI struct {
	*testCA
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{testCA: newCA(t, "isthmus test CA"), dir: t.TempDir(), pool: x509.NewCertPool()}
	p.pool.AddCert(p.cert)
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(p.dir, name)
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	p.caFile = write("ca.crt", "CERTIFICATE", p.cert.Raw)
	srv := p.issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	p.certFile = write("server.crt", "CERTIFICATE", srv.Certificate[0])
	keyDER, err := x509.MarshalECPrivateKey(srv.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	p.keyFile = write("server.key", "EC PRIVATE KEY", keyDER)
	p.client = p.clientCert(t, "sensor-42")
	return p
}

// tlsYAML is a flow-style tls section for the PKI's server certificate.
func (p *testPKI) tlsYAML(listen, clientCA bool) string {
	s := "{"
	if listen {
		s += "listen: 127.0.0.1:0, "
	}
	s += "cert: " + p.certFile + ", key: " + p.keyFile
	if clientCA {
		s += ", client_ca: " + p.caFile
	}
	return s + "}"
}

// tlsConf trusts the PKI's CA for 127.0.0.1 and presents certs[0] if given;
// version, unless 0, is the only TLS version offered.
func (p *testPKI) tlsConf(version uint16, certs ...tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1"}
	if len(certs) > 0 {
		// Present the certificate whatever CAs the server asks for: Go's
		// client would otherwise withhold one from a CA not on the list.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	if version != 0 {
		c.MinVersion, c.MaxVersion = version, version
	}
	return c
}

// clientConf is tlsConf presenting a new client certificate for cn.
func (p *testPKI) clientConf(t *testing.T, cn string) *tls.Config {
	t.Helper()
	return p.tlsConf(0, p.clientCert(t, cn))
}

// tlsClient does a TLS handshake on a fresh TCP connection to addr.
func tlsClient(t *testing.T, addr string, conf *tls.Config) (*tls.Conn, error) {
	t.Helper()
	raw := dial(t, addr)
	c := tls.Client(raw, conf)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c, c.HandshakeContext(ctx)
}

// TestTLSAndMutualTLS: mqtts with a client CA accepts a client certificate
// from that CA and refuses a client without one, and TLS below 1.2; wss
// carries MQTT over WebSocket over TLS.
func TestTLSAndMutualTLS(t *testing.T) {
	p := newPKI(t)
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  tls: "+p.tlsYAML(true, true)+"\n"+
		"http:\n  listen: 127.0.0.1:0\n  tls: "+p.tlsYAML(false, false)+"\n")
	if g.mqtts == "" {
		t.Fatal("no mqtt.tls.listen bound")
	}
	got := make(chan pahov3.Message, 2)
	good := v3(t, g.mqtts, "mtls-client", func(o *pahov3.ClientOptions) {
		o.Servers = nil
		o.AddBroker("ssl://" + g.mqtts)
		o.SetTLSConfig(&tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}})
	})
	wait(t, good.Subscribe("secure/#", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe over TLS")

	// wss: paho over WebSocket over TLS, server-authenticated only.
	web := v3(t, g.http, "wss-client", func(o *pahov3.ClientOptions) {
		o.Servers = nil
		o.AddBroker("wss://" + g.http + "/mqtt")
		o.SetTLSConfig(&tls.Config{RootCAs: p.pool})
	})
	wait(t, web.Publish("secure/x", 1, false, "over wss"), "publish over wss")
	if m := recv(t, got, "message over mTLS"); string(m.Payload()) != "over wss" {
		t.Fatalf("got %q", m.Payload())
	}
	if v := g.metric(t, `isthmus_connections{protocol="mqtt",transport="wss"}`); v != 1 {
		t.Errorf("wss connections gauge = %v, want 1", v)
	}

	for name, conf := range map[string]*tls.Config{
		"no client certificate": {RootCAs: p.pool},
		"TLS 1.1":               {RootCAs: p.pool, Certificates: []tls.Certificate{p.client}, MaxVersion: tls.VersionTLS11},
	} {
		c, err := tls.Dial("tcp", g.mqtts, conf)
		if err == nil {
			// TLS 1.3 reports a missing client certificate on first read.
			c.SetDeadline(time.Now().Add(3 * time.Second))
			c.Write(connectV4("intruder", 30, nil))
			_, err = c.Read(make([]byte, 4))
			c.Close()
		}
		if err == nil {
			t.Errorf("%s: connection was accepted", name)
		}
	}
}

// TestAMQPOverTLS: go-amqp reaches the bridge over amqps with the test CA,
// and a plaintext AMQP header on the amqps port gets nowhere.
func TestAMQPOverTLS(t *testing.T) {
	p := newPKI(t)
	g := startGateway(t, strings.Replace(bridgeYAML, "amqp:\n  listen: 127.0.0.1:0\n",
		"amqp:\n  listen: 127.0.0.1:0\n  tls: "+p.tlsYAML(true, false)+"\n", 1))
	addr := g.listenerAddr(t, "amqp.tls.listen")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, s := amqpConnect(t, "amqps://"+addr, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous(), TLSConfig: &tls.Config{RootCAs: p.pool}})
	r := receiver(t, s, "secure/#")
	snd := sender(t, s, "secure/1")
	go snd.Send(ctx, goamqp.NewMessage([]byte("over amqps")), nil)
	if m := receive(t, r); string(m.GetData()) != "over amqps" {
		t.Fatalf("got %q", m.GetData())
	}

	plain := dial(t, addr)
	plain.Write([]byte("AMQP\x00\x01\x00\x00"))
	if _, data := closedWithin(t, plain, 5*time.Second); len(data) >= 8 && string(data[:4]) == "AMQP" {
		t.Fatalf("the amqps port answered a plaintext AMQP header: %q", data)
	}
}

// TestTLSReload: certificates, keys and client CAs are read again on reload.
// New handshakes get the new server certificate and trust only the new client
// CA; a connection made before keeps working; a reload naming a broken file
// fails and keeps the old material.
func TestTLSReload(t *testing.T) {
	one, two := newPKI(t), newPKI(t)
	dir := t.TempDir()
	cert, key, ca := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.crt")
	install := func(p *testPKI) {
		t.Helper()
		for src, dst := range map[string]string{p.certFile: cert, p.keyFile: key, p.caFile: ca} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dst, string(b))
		}
	}
	install(one)
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  tls: {listen: 127.0.0.1:0, cert: "+cert+", key: "+key+", client_ca: "+ca+"}\n")
	handshake := func(p *testPKI, client tls.Certificate) (*tls.Conn, error) {
		c, err := tls.Dial("tcp", g.mqtts, &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{client}})
		if err != nil {
			return nil, err
		}
		// TLS 1.3 reports a refused client certificate on the first read.
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(connectV4("reload-"+p.dir[len(p.dir)-6:], 30, nil)); err != nil {
			c.Close()
			return nil, err
		}
		typ, body, err := readPacket(c, 3*time.Second)
		if err == nil && (typ != 0x20 || len(body) < 2 || body[1] != 0) {
			err = fmt.Errorf("CONNACK %#x % x", typ, body)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		c.SetDeadline(time.Time{})
		return c, nil
	}
	before, err := handshake(one, one.client)
	if err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	defer before.Close()

	install(two)
	if _, err := g.Reload(g.Config()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if c, err := handshake(one, one.client); err == nil {
		c.Close()
		t.Fatal("after the reload the old server certificate and client CA still work")
	}
	after, err := handshake(two, two.client)
	if err != nil {
		t.Fatalf("new certificate and client CA after reload: %v", err)
	}
	after.Close()
	if c, err := handshake(two, one.client); err == nil {
		c.Close()
		t.Fatal("a client certificate of the old CA is still trusted after the reload")
	}
	// The connection made before the reload still talks: PINGREQ → PINGRESP.
	before.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := before.Write([]byte{0xC0, 0}); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 2)
	if _, err := io.ReadFull(before, resp); err != nil || resp[0] != 0xD0 {
		t.Fatalf("old connection after reload: % x, %v", resp, err)
	}

	writeFile(t, key, "not a key")
	if _, err := g.Reload(g.Config()); err == nil || !strings.Contains(err.Error(), "mqtt.tls") {
		t.Fatalf("reload with a broken key: %v, want an error naming mqtt.tls", err)
	}
	if c, err := handshake(two, two.client); err != nil {
		t.Fatalf("a failed reload must keep the certificate in force: %v", err)
	} else {
		c.Close()
	}
}
