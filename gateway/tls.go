package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/isthmus-iot/isthmus/config"
)

// tlsMaterial is one listener's loaded certificate and client CA pool.
type tlsMaterial struct {
	cert     *tls.Certificate
	clientCA *x509.CertPool
}

// certStore holds the TLS material per listener kind ("mqtt", "http"). The
// tls.Configs handed to listeners read it per handshake, so a reload replaces
// certificates and client CAs without new sockets.
type certStore struct {
	byKind [3]atomic.Pointer[tlsMaterial]
}

func kindIndex(kind string) int {
	switch kind {
	case "http":
		return 1
	case "amqp":
		return 2
	}
	return 0
}

// load reads every configured certificate first and stores them only if all
// loaded, so a bad file on reload keeps the old material.
func (cs *certStore) load(cfg *config.Config) error {
	var next [3]*tlsMaterial
	for i, t := range []struct {
		key string
		tls *config.TLS
	}{{"mqtt.tls", cfg.MQTT.TLS}, {"http.tls", cfg.HTTP.TLS}, {"amqp.tls", cfg.AMQP.TLS}} {
		if t.tls == nil {
			continue
		}
		m, err := loadTLS(t.key, t.tls)
		if err != nil {
			return err
		}
		next[i] = m
	}
	for i := range next {
		cs.byKind[i].Store(next[i])
	}
	return nil
}

func loadTLS(key string, t *config.TLS) (*tlsMaterial, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: loading certificate %s and key %s: %w", key, t.Cert, t.Key, err)
	}
	m := &tlsMaterial{cert: &cert}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("%s.client_ca: %w", key, err)
		}
		m.clientCA = x509.NewCertPool()
		if !m.clientCA.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.client_ca: %s holds no PEM certificate", key, t.ClientCA)
		}
	}
	return m, nil
}

// config returns the tls.Config for a listener kind: TLS 1.2 at least, and
// mutual TLS when a client CA is configured.
func (cs *certStore) config(kind string) *tls.Config {
	slot := &cs.byKind[kindIndex(kind)]
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		m := slot.Load()
		if m == nil {
			return nil, fmt.Errorf("no TLS certificate configured for %s", kind)
		}
		c := &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*m.cert},
		}
		if kind == "http" {
			// WebSocket upgrades need HTTP/1.1 (RFC 6455 §4.1); no h2.
			c.NextProtos = []string{"http/1.1"}
		}
		if m.clientCA != nil {
			c.ClientCAs = m.clientCA
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return c, nil
	}
	return base
}
