package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Limits enforced by Validate. Protocol fields bound some of them: an MQTT 5
// receive maximum and an MQTT keep-alive are 16-bit, a session expiry interval
// is 32-bit seconds, an AMQP max-frame-size is a uint and at least 512.
const (
	minPacketSize     = 16
	maxPacketSize     = 256 << 20 // [MQTT-2.2.3] a remaining length fits in 4 bytes: 256MiB
	minConnectTimeout = 100 * time.Millisecond
	maxConnectTimeout = 5 * time.Minute
	maxShutdown       = time.Hour
	maxUint16         = 1<<16 - 1
	maxKeepalive      = maxUint16 * time.Second        // [MQTT-3.1.2.10] Keep Alive is a Two Byte Integer of seconds
	maxSessionExpiry  = (1<<32 - 1) * time.Second      // MQTT 5 §3.1.2.11.2 Four Byte Integer of seconds
	minAMQPFrame      = 512                            // AMQP 1.0 §2.7.1 MIN-MAX-FRAME-SIZE
	maxAMQPFrame      = 1<<32 - 1                      // AMQP 1.0 §2.7.1 max-frame-size is a uint
	maxAMQPIdle       = (1<<32 - 1) * time.Millisecond // AMQP 1.0 §2.7.1 idle-time-out is a uint of milliseconds
)

const (
	notYet   = "not supported yet: "
	removeIt = "; remove this key"
)

// Validate checks the whole configuration and returns every problem found as
// Errors, each at the position of the key or value concerned (when the Config
// came from Parse). Parse calls it after Defaults; call it yourself on a
// Config built in code. It reads the TLS files it names but binds nothing.
func (c *Config) Validate() error {
	k := &checker{c: c}
	k.gateway()
	k.log()
	k.mqtt()
	k.amqp()
	k.http()
	k.admin()
	k.auth()
	k.notImplemented()
	k.duplicateListeners()
	return asError(k.errs)
}

// checker collects Validate's errors.
type checker struct {
	c    *Config
	errs Errors
}

// parent strips the last element of a key path: routes[2].from → routes[2] → routes → "".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// where finds the position for an error about path: its value (value errors)
// or its key; for a key that was not written, the nearest written ancestor's
// key, or the top of the file.
func (k *checker) where(path string, value bool) pos {
	o := k.c.origin
	if o == nil {
		return pos{}
	}
	for p := path; p != ""; p = parent(p) {
		if e, ok := o.keys[p]; ok {
			if value && p == path {
				return e.val
			}
			return e.key
		}
	}
	return pos{1, 1}
}

func (k *checker) add(p pos, path, format string, args ...any) {
	file := k.c.Source
	if k.c.origin != nil {
		file = k.c.origin.file
	}
	k.errs = append(k.errs, &Error{File: file, Line: p.line, Col: p.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// keyErr reports a problem with a key as such (it is not allowed, it is missing).
func (k *checker) keyErr(path, format string, args ...any) {
	k.add(k.where(path, false), path, format, args...)
}

// valErr reports a problem with a key's value.
func (k *checker) valErr(path, format string, args ...any) {
	k.add(k.where(path, true), path, format, args...)
}

func (k *checker) line(path string) string {
	if p := k.where(path, false); p.line > 0 {
		return " (line " + strconv.Itoa(p.line) + ")"
	}
	return ""
}

func (k *checker) readFile(name string) ([]byte, error) {
	if o := k.c.origin; o != nil && o.readFile != nil {
		return o.readFile(name)
	}
	return readRegularFile(name)
}

func (k *checker) durationRange(path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		k.valErr(path, "%s is out of range: must be between %s and %s", formatDuration(d), formatDuration(lo), formatDuration(hi))
	}
}

func (k *checker) intRange(path string, v, lo, hi int) {
	if v < lo || v > hi {
		k.valErr(path, "%d is out of range: must be between %d and %d", v, lo, hi)
	}
}

func (k *checker) oneOf(path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	k.valErr(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
}

func (k *checker) gateway() {
	g := k.c.Gateway
	switch {
	case g.ID == "":
		k.valErr("gateway.id", "must not be empty (leave the key out to use the hostname)")
	case strings.ContainsFunc(g.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("+#/", r) }):
		// The id goes into message ids and MQTT topic levels: no wildcards, no separators.
		k.valErr("gateway.id", "%q must not contain spaces, control characters, '+', '#' or '/'", g.ID)
	}
	if g.DataDir == "" {
		k.valErr("gateway.data_dir", "must not be empty (leave the key out for ./data)")
	}
	k.durationRange("gateway.shutdown_timeout", g.ShutdownTimeout, 0, maxShutdown)
}

func (k *checker) log() {
	k.oneOf("log.level", k.c.Log.Level, "debug", "info", "warn", "error")
	if k.c.Log.Format != "" {
		k.oneOf("log.format", k.c.Log.Format, "text", "json")
	}
}

func (k *checker) mqtt() {
	m := k.c.MQTT
	k.listeners("mqtt", "MQTT", m.Listen, m.TLS, ":8883")
	if m.MaxPacketSize < minPacketSize || m.MaxPacketSize > maxPacketSize {
		k.valErr("mqtt.max_packet_size", "%s is out of range: must be between %dB and %s", m.MaxPacketSize, minPacketSize, Size(maxPacketSize))
	}
	k.durationRange("mqtt.connect_timeout", m.ConnectTimeout, minConnectTimeout, maxConnectTimeout)
	if m.MaxConnections < 1 {
		k.valErr("mqtt.max_connections", "must be at least 1, got %d", m.MaxConnections)
	}
	// 0 is refused rather than given a meaning: the broker adapter reads it as "use the default".
	k.durationRange("mqtt.session_expiry_max", m.SessionExpiryMax, time.Second, maxSessionExpiry)
	if m.Retained.Max < 1 {
		k.valErr("mqtt.retained.max", "must be at least 1, got %d", m.Retained.Max)
	}
	k.intRange("mqtt.write_queue", m.WriteQueue, 1, maxUint16)
	k.intRange("mqtt.receive_max", m.ReceiveMax, 1, maxUint16) // MQTT 5 §3.1.2.11.3 Receive Maximum: 1..65535
	k.durationRange("mqtt.keepalive_max", m.KeepaliveMax, 0, maxKeepalive)
}

// listeners checks a protocol section's plain and TLS listeners.
func (k *checker) listeners(section, protocol, listen string, t *TLS, tlsExample string) {
	if listen != "" {
		k.listen(section+".listen", listen)
	}
	if t == nil {
		return
	}
	if t.Listen == "" {
		k.keyErr(section+".tls.listen", "required: the address of the %s TLS listener, such as %q", protocol, tlsExample)
	} else {
		k.listen(section+".tls.listen", t.Listen)
	}
	k.tlsFiles(section+".tls", t)
}

// amqp checks the AMQP section (the server role, SPEC §4).
func (k *checker) amqp() {
	a := k.c.AMQP
	k.listeners("amqp", "AMQP", a.Listen, a.TLS, ":5671")
	seen := map[string]bool{}
	for i, mech := range a.SASL {
		path := "amqp.sasl[" + strconv.Itoa(i) + "]"
		switch {
		case mech != "ANONYMOUS" && mech != "PLAIN" && mech != "EXTERNAL":
			k.valErr(path, "%q is not a supported SASL mechanism: ANONYMOUS, PLAIN or EXTERNAL", mech)
		case seen[mech]:
			k.valErr(path, "%s is listed twice", mech)
		}
		seen[mech] = true
	}
	if a.MaxFrameSize != 0 && (a.MaxFrameSize < minAMQPFrame || a.MaxFrameSize > maxAMQPFrame) {
		k.valErr("amqp.max_frame_size", "%s is out of range: must be between %dB and %dB", a.MaxFrameSize, minAMQPFrame, int64(maxAMQPFrame))
	}
	if a.MaxMessageSize < 0 {
		k.valErr("amqp.max_message_size", "must not be negative")
	}
	k.durationRange("amqp.idle_timeout", a.IdleTimeout, 0, maxAMQPIdle)
	if a.MaxConnections < 1 {
		k.valErr("amqp.max_connections", "%d is out of range: at least 1", a.MaxConnections)
	}
}

func (k *checker) http() {
	h := k.c.HTTP
	if h.Listen != "" {
		k.listen("http.listen", h.Listen)
	}
	if h.TLS != nil {
		if h.TLS.Listen != "" {
			k.keyErr("http.tls.listen", "not used: the WebSocket endpoint serves TLS on http.listen; remove this key")
		}
		if h.Listen == "" {
			k.keyErr("http.tls", "http.listen is not set, so nothing would serve TLS; set http.listen or remove http.tls")
		}
		k.tlsFiles("http.tls", h.TLS)
	}
	k.urlPath("http.mqtt_path", h.MQTTPath)
	if h.AMQPPath != "" {
		k.urlPath("http.amqp_path", h.AMQPPath)
		if h.AMQPPath == h.MQTTPath {
			k.valErr("http.amqp_path", "%q is also http.mqtt_path%s: the two protocols need different paths", h.AMQPPath, k.line("http.mqtt_path"))
		}
	}
	for i, o := range h.AllowedOrigins {
		k.origin("http.allowed_origins["+strconv.Itoa(i)+"]", o)
	}
}

func (k *checker) urlPath(path, p string) {
	switch {
	case !strings.HasPrefix(p, "/"):
		k.valErr(path, "%q must start with '/'", p)
	case strings.ContainsAny(p, "?# \t"):
		k.valErr(path, "%q must be a plain URL path (no query, fragment or spaces)", p)
	}
}

// origin checks one allowed_origins entry: an Origin header value as browsers
// send it (RFC 6454 §6.1: scheme://host[:port], no path), or "*" for any.
func (k *checker) origin(path, o string) {
	if o == "*" {
		return
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		k.valErr(path, "%q is not an origin: write scheme://host[:port], such as \"https://dashboard.example\", or \"*\" for any", o)
	}
}

func (k *checker) admin() {
	if k.c.Admin.Listen != "" {
		k.listen("admin.listen", k.c.Admin.Listen)
	}
}

func (k *checker) auth() {
	a := k.c.Auth
	if !a.Anonymous && a.DevicesFile == "" {
		msg := "nobody could connect: set auth.devices_file to a devices file (docs/security.md), or auth.anonymous: true to let clients in without credentials"
		if k.c.origin.present("auth.anonymous") || k.c.origin == nil {
			k.valErr("auth.anonymous", "%s", msg)
		} else {
			k.keyErr("auth.anonymous", "not set, so false, and %s", msg)
		}
	}
	for _, p := range []struct{ path, v string }{
		{"auth.presence.amqp_address", a.Presence.AMQPAddress},
		{"auth.presence.mqtt_topic", a.Presence.MQTTTopic},
	} {
		if strings.ContainsAny(p.v, "#+\x00") || strings.HasSuffix(p.v, "/") {
			k.valErr(p.path, "%q must be a plain topic name: no wildcards, no trailing /", p.v)
		}
	}
	l := k.c.Limits
	for _, n := range []struct {
		path string
		v    int
	}{{"limits.connect_rate", l.ConnectRate}, {"limits.connect_burst", l.ConnectBurst}, {"limits.publish_rate", l.PublishRate}, {"limits.publish_burst", l.PublishBurst}} {
		if n.v < 0 {
			k.valErr(n.path, "must not be negative (0: unlimited)")
		}
	}
	if l.ConnectRate > 0 && l.ConnectBurst == 0 {
		k.valErr("limits.connect_burst", "must be at least 1 when limits.connect_rate is set")
	}
	if l.PublishRate > 0 && l.PublishBurst == 0 {
		k.valErr("limits.publish_burst", "must be at least 1 when limits.publish_rate is set")
	}
	if l.ConnectPacketSize != 0 && l.ConnectPacketSize < minPacketSize {
		k.valErr("limits.connect_packet_size", "%s is too small: at least %dB", l.ConnectPacketSize, minPacketSize)
	}
}

// notImplemented refuses the sections whose engines do not exist yet, rather
// than accepting a file that would silently do less than it says.
func (k *checker) notImplemented() {
	c := k.c
	seen := map[string]string{}
	for i, q := range c.Queues {
		path := "queues[" + strconv.Itoa(i) + "]"
		switch {
		case (q.Name == "") == (q.Match == ""):
			k.keyErr(path, "give exactly one of name (a queue) or match (a pattern: matching addresses become queues on first use)")
		case q.Name != "":
			if prev, dup := seen[q.Name]; dup {
				k.valErr(path+".name", "%q is also %s", q.Name, prev)
			}
			seen[q.Name] = path + ".name"
			if strings.ContainsAny(q.Name, "#+") {
				k.valErr(path+".name", "%q: a queue name has no wildcards; use match for a pattern", q.Name)
			}
		}
		if q.Durable {
			k.keyErr(path+".durable", notYet+"durable queues (on disk) are not implemented in this version; queues are in memory"+removeIt)
		}
		if q.Overflow != "" {
			k.oneOf(path+".overflow", q.Overflow, "reject", "drop-oldest")
		}
		if q.MaxMessages < 0 {
			k.valErr(path+".max_messages", "must not be negative (0: no limit)")
		}
		if q.MaxBytes < 0 {
			k.valErr(path+".max_bytes", "must not be negative (0: no limit)")
		}
		if q.TTL < 0 {
			k.valErr(path+".ttl", "must not be negative (0: messages do not expire)")
		}
		if q.AutoDelete != 0 && q.Match == "" {
			k.keyErr(path+".auto_delete", "only for match: queues (created on first use)")
		}
	}
	if len(c.Uplinks) > 0 {
		k.keyErr("uplinks", notYet+"uplinks (outgoing AMQP connections) are not implemented in this version"+removeIt)
	}
	k.oneOf("unroutable", c.Unroutable, "accept", "release", "reject")
}

// listen checks a listen address: host:port with a numeric port, as
// net.Listen takes it; an empty host listens on every interface.
func (k *checker) listen(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		k.valErr(path, "%q is not host:port (such as \"127.0.0.1:1883\", \":1883\" or \"[::1]:1883\")", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		k.valErr(path, "port %q in %q must be a number from 0 to 65535", port, addr)
	}
	if strings.ContainsFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		k.valErr(path, "host %q in %q contains spaces", host, addr)
	}
}

// duplicateListeners finds two listeners on the same port that would fail to
// bind at start: same host, or one of them on every interface.
func (k *checker) duplicateListeners() {
	type listener struct{ path, addr, host, port string }
	var all []listener
	add := func(path, addr string) {
		if addr == "" {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "0" { // port 0 picks a free port: never a clash
			return
		}
		if n, err := strconv.Atoi(port); err == nil {
			port = strconv.Itoa(n) // ":01883" is ":1883"
		}
		all = append(all, listener{path, addr, host, port})
	}
	c := k.c
	add("mqtt.listen", c.MQTT.Listen)
	if c.MQTT.TLS != nil {
		add("mqtt.tls.listen", c.MQTT.TLS.Listen)
	}
	add("http.listen", c.HTTP.Listen)
	add("admin.listen", c.Admin.Listen)
	add("amqp.listen", c.AMQP.Listen)
	if c.AMQP.TLS != nil {
		add("amqp.tls.listen", c.AMQP.TLS.Listen)
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	for i, b := range all {
		for _, a := range all[:i] {
			if a.port == b.port && (a.host == b.host || wildcard(a.host) || wildcard(b.host)) {
				k.valErr(b.path, "address %q conflicts with %s %q%s: two listeners cannot share a port", b.addr, a.path, a.addr, k.line(a.path))
				break
			}
		}
	}
}

// tlsFiles checks that cert and key are set, readable and form a pair that
// crypto/tls loads, and that client_ca, if set, holds PEM certificates.
func (k *checker) tlsFiles(path string, t *TLS) {
	var certPEM []byte
	switch {
	case t.Cert == "":
		k.keyErr(path+".cert", "required: the PEM certificate (chain) file for this TLS endpoint")
	default:
		if b, ok := k.certificates(path+".cert", t.Cert); ok {
			certPEM = b
		}
	}
	switch {
	case t.Key == "":
		k.keyErr(path+".key", "required: the PEM private key file for the certificate")
	default:
		b, err := k.readFile(t.Key)
		if err != nil {
			k.valErr(path+".key", "%v", err)
			break
		}
		if certPEM == nil {
			break
		}
		if _, err := tls.X509KeyPair(certPEM, b); err != nil {
			k.valErr(path+".key", "%s and %s do not load as a TLS key pair: %v", t.Cert, t.Key, strings.TrimPrefix(err.Error(), "tls: "))
		}
	}
	if t.ClientCA != "" {
		k.certificates(path+".client_ca", t.ClientCA)
	}
}

// certificates reads a PEM file that must hold at least one certificate and
// nothing that fails to parse as one.
func (k *checker) certificates(path, file string) ([]byte, bool) {
	b, err := k.readFile(file)
	if err != nil {
		k.valErr(path, "%v", err)
		return nil, false
	}
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			k.valErr(path, "%s: certificate %d does not parse: %v", file, n+1, err)
			return nil, false
		}
		n++
	}
	if n == 0 {
		k.valErr(path, "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
		return nil, false
	}
	return b, true
}
