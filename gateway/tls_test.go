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
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "isthmus test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, usage x509.ExtKeyUsage, ip bool) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	p.caFile = write("ca.crt", "CERTIFICATE", caDER)
	srvDER, srvKey := issue("127.0.0.1", x509.ExtKeyUsageServerAuth, true)
	p.certFile = write("server.crt", "CERTIFICATE", srvDER)
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	p.keyFile = write("server.key", "EC PRIVATE KEY", keyDER)
	cliDER, cliKey := issue("sensor-42", x509.ExtKeyUsageClientAuth, false)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

// TestTLSAndMutualTLS: mqtts with a client CA accepts a client certificate
// from that CA and refuses a client without one, and TLS below 1.2; wss
// carries MQTT over WebSocket over TLS.
func TestTLSAndMutualTLS(t *testing.T) {
	p := newPKI(t)
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  tls: {listen: 127.0.0.1:0, cert: "+p.certFile+", key: "+p.keyFile+", client_ca: "+p.caFile+"}\n"+
		"http:\n  listen: 127.0.0.1:0\n  tls: {cert: "+p.certFile+", key: "+p.keyFile+"}\n")
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
		"amqp:\n  listen: 127.0.0.1:0\n  tls: {listen: 127.0.0.1:0, cert: "+p.certFile+", key: "+p.keyFile+"}\n", 1))
	var addr string
	for _, l := range g.Listeners() {
		if l.Name == "amqp.tls.listen" {
			addr = l.Addr.String()
		}
	}
	if addr == "" {
		t.Fatal("no amqp.tls.listen bound")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := goamqp.Dial(ctx, "amqps://"+addr, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous(), TLSConfig: &tls.Config{RootCAs: p.pool}})
	if err != nil {
		t.Fatalf("amqps dial: %v", err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := receiver(t, s, "secure/#")
	snd, err := s.NewSender(ctx, "secure/1", nil)
	if err != nil {
		t.Fatal(err)
	}
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
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
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
		ack := make([]byte, 4)
		if _, err := io.ReadFull(c, ack); err != nil {
			c.Close()
			return nil, err
		}
		if ack[3] != 0 {
			c.Close()
			return nil, fmt.Errorf("CONNACK % x", ack)
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

	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Reload(g.Config()); err == nil || !strings.Contains(err.Error(), "mqtt.tls") {
		t.Fatalf("reload with a broken key: %v, want an error naming mqtt.tls", err)
	}
	if c, err := handshake(two, two.client); err != nil {
		t.Fatalf("a failed reload must keep the certificate in force: %v", err)
	} else {
		c.Close()
	}
}
