package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/ws"
)

// The test clients (pub, sub, bench) speak MQTT 3.1.1 through paho and
// AMQP 1.0 through the project's own client, over TCP, TLS or WebSocket.

const supportedSchemes = "mqtt://HOST[:1883], mqtts://HOST[:8883], ws://HOST:PORT/mqtt, wss://HOST:PORT/mqtt, " +
	"amqp://HOST[:5672], amqps://HOST[:5671], ws://HOST:PORT/amqp, wss://HOST:PORT/amqp"

type protocol int

const (
	protoMQTT protocol = iota + 1
	protoAMQP
)

func (p protocol) String() string {
	if p == protoMQTT {
		return "MQTT"
	}
	return "AMQP"
}

// endpoint is a parsed --url.
type endpoint struct {
	raw   string
	u     *url.URL
	proto protocol
	ws    bool // WebSocket transport
	tls   bool // mqtts, amqps, wss
}

// usageErr is a command-line mistake: exit 2 with the message.
type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

func parseEndpoint(raw string) (endpoint, error) {
	if raw == "" {
		return endpoint{}, usageErr{"--url is required; supported forms: " + supportedSchemes}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return endpoint{}, usageErr{fmt.Sprintf("bad URL %q; supported forms: %s", raw, supportedSchemes)}
	}
	ep := endpoint{raw: raw, u: u}
	switch strings.ToLower(u.Scheme) {
	case "mqtt":
		ep.proto = protoMQTT
	case "mqtts":
		ep.proto, ep.tls = protoMQTT, true
	case "amqp":
		ep.proto = protoAMQP
	case "amqps":
		ep.proto, ep.tls = protoAMQP, true
	case "ws", "wss":
		ep.ws, ep.tls = true, u.Scheme == "wss"
		// The path says which protocol runs inside, as the gateway's
		// http.mqtt_path and http.amqp_path do.
		switch {
		case strings.Contains(strings.ToLower(u.Path), "amqp"):
			ep.proto = protoAMQP
		case strings.Contains(strings.ToLower(u.Path), "mqtt"):
			ep.proto = protoMQTT
		default:
			return endpoint{}, usageErr{fmt.Sprintf("URL %q: a WebSocket URL must end in the protocol's path (…/mqtt or …/amqp); supported forms: %s", raw, supportedSchemes)}
		}
	default:
		return endpoint{}, usageErr{fmt.Sprintf("URL scheme %q is not supported; supported forms: %s", u.Scheme, supportedSchemes)}
	}
	return ep, nil
}

// hostPort is the address dialled, for error messages.
func (ep endpoint) hostPort() string {
	if ep.u.Port() != "" {
		return ep.u.Host
	}
	port := map[string]string{"mqtt": "1883", "mqtts": "8883", "amqp": "5672", "amqps": "5671", "ws": "80", "wss": "443"}[strings.ToLower(ep.u.Scheme)]
	return net.JoinHostPort(ep.u.Hostname(), port)
}

// clientOpts are the connection flags common to pub, sub and bench.
type clientOpts struct {
	username, password string
	cacert             string
	insecure           bool
	clientID           string
}

func (o *clientOpts) tlsConfig(ep endpoint) (*tls.Config, error) {
	if !ep.tls {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: ep.u.Hostname(), InsecureSkipVerify: o.insecure, MinVersion: tls.VersionTLS12}
	if o.cacert != "" {
		pem, err := os.ReadFile(o.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", o.cacert)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// connectError names the address when nobody listens there.
func connectError(ep endpoint, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("cannot connect to %s at %s: connection refused (is the broker running there?)", ep.proto, ep.hostPort())
	}
	return fmt.Errorf("cannot connect to %s at %s: %w", ep.proto, ep.raw, err)
}

// dialMQTT connects a paho MQTT 3.1.1 client with a clean session.
func dialMQTT(ctx context.Context, ep endpoint, o *clientOpts, tweak func(*paho.ClientOptions)) (paho.Client, error) {
	tlsConf, err := o.tlsConfig(ep)
	if err != nil {
		return nil, err
	}
	u := *ep.u
	u.User = nil
	opts := paho.NewClientOptions().AddBroker(u.String()).
		SetClientID(o.clientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetWriteTimeout(10 * time.Second)
	if tlsConf != nil {
		opts.SetTLSConfig(tlsConf)
	}
	user, pass := o.username, o.password
	if user == "" && ep.u.User != nil {
		user = ep.u.User.Username()
		pass, _ = ep.u.User.Password()
	}
	if user != "" {
		opts.SetUsername(user).SetPassword(pass)
	}
	if tweak != nil {
		tweak(opts)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return nil, connectError(ep, ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return nil, connectError(ep, err)
	}
	return c, nil
}

// dialAMQP opens an AMQP 1.0 connection: TCP/TLS through amqp.Dial, or the
// AMQP WebSocket binding (subprotocol amqp) through ws.Dial.
func dialAMQP(ctx context.Context, ep endpoint, o *clientOpts) (*amqp.Conn, error) {
	tlsConf, err := o.tlsConfig(ep)
	if err != nil {
		return nil, err
	}
	user, pass := o.username, o.password
	if user == "" && ep.u.User != nil {
		user = ep.u.User.Username()
		pass, _ = ep.u.User.Password()
	}
	copts := &amqp.ConnOptions{ContainerID: o.clientID, TLSConfig: tlsConf, Hostname: ep.u.Hostname()}
	if user != "" {
		copts.SASL = amqp.SASLPlain(user, pass)
	} else {
		copts.SASL = amqp.SASLAnonymous()
	}
	u := *ep.u
	u.User = nil
	if !ep.ws {
		c, err := amqp.Dial(ctx, u.String(), copts)
		if err != nil {
			return nil, connectError(ep, err)
		}
		return c, nil
	}
	nc, err := ws.Dial(ctx, u.String(), []string{"amqp"}, tlsConf)
	if err != nil {
		return nil, connectError(ep, err)
	}
	c, err := amqp.NewConn(ctx, nc, copts)
	if err != nil {
		nc.Close()
		return nil, connectError(ep, err)
	}
	return c, nil
}

// randomID gives client ids and bench topics that do not collide between
// runs.
func randomID(prefix string) string {
	return fmt.Sprintf("%s-%d-%x", prefix, os.Getpid(), time.Now().UnixNano()&0xffffff)
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
