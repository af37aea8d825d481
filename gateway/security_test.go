package gateway

// Devices and security (SPEC §7) end to end, with real clients: paho 3.1.1,
// paho.golang (MQTT 5), go-amqp, and raw packets where an exact reason code
// is the point. Every gateway here reads a devices file made by secDevices.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"
	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
	"github.com/isthmus-iot/isthmus/devices"
	"github.com/isthmus-iot/isthmus/ws"
)

// Passwords of the test devices: distinctive strings, so that
// TestSecurityNoSecretsInLogs can look for them.
const (
	secPW42      = "pw42-Kx7Hq2vB"
	secPW7       = "pw7-Lm3Rw9cN"
	secPWBackend = "pwBackend-Tz4Nc8"
	secPWMonitor = "pwMonitor-Yb6Vd1"
	secPWOff     = "pwOff-Qa5Pe3"
	secPWWrong   = "pwWrong-Jg8Ux4sM"
)

// secDev is one entry of a devices file.
type secDev struct {
	id, pw, cn string
	disabled   bool
	pub, sub   []string
	labels     string // YAML flow mapping; "" for none
}

// secDefaultDevs: two sensors confined to their own topics, a backend that
// commands them and reads everything under devices/, a monitor that may only
// watch presence, and a disabled device.
func secDefaultDevs() []secDev {
	return []secDev{
		{id: "sensor-42", pw: secPW42, cn: "sensor-42", pub: []string{"devices/{id}/#"}, sub: []string{"devices/{id}/commands/#"}, labels: "{site: plant-1}"},
		{id: "sensor-7", pw: secPW7, pub: []string{"devices/{id}/#"}, sub: []string{"devices/{id}/commands/#"}},
		{id: "backend", pw: secPWBackend, pub: []string{"devices/+/commands/#", "commands/#"}, sub: []string{"devices/#"}},
		{id: "monitor", pw: secPWMonitor, sub: []string{"$SYS/isthmus/presence/#", "$events/presence"}},
		{id: "disabled-1", pw: secPWOff, disabled: true, pub: []string{"devices/{id}/#"}, sub: []string{"devices/{id}/#"}},
	}
}

// secEdit returns devs with the device id changed by edit, or without it when edit returns false.
func secEdit(devs []secDev, id string, edit func(*secDev) bool) []secDev {
	var out []secDev
	for _, d := range devs {
		if d.id == id && !edit(&d) {
			continue
		}
		out = append(out, d)
	}
	return out
}

var secHashes sync.Map // password → bcrypt hash at cost 4, shared by the tests

func secHash(t *testing.T, pw string) string {
	t.Helper()
	if h, ok := secHashes.Load(pw); ok {
		return h.(string)
	}
	h, err := devices.HashPassword([]byte(pw), 4)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	secHashes.Store(pw, h)
	return h
}

func secQuoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// secDevicesYAML renders a devices file; anon is the YAML of its anonymous
// section, "" for none.
func secDevicesYAML(t *testing.T, anon string, devs []secDev) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("devices:\n")
	for _, d := range devs {
		fmt.Fprintf(&b, "  - id: %s\n", d.id)
		if d.pw != "" {
			fmt.Fprintf(&b, "    password: %q\n", secHash(t, d.pw))
		}
		if d.cn != "" {
			fmt.Fprintf(&b, "    cert_cn: %s\n", d.cn)
		}
		if d.disabled {
			b.WriteString("    enabled: false\n")
		}
		fmt.Fprintf(&b, "    publish: %s\n    subscribe: %s\n", secQuoted(d.pub), secQuoted(d.sub))
		if d.labels != "" {
			fmt.Fprintf(&b, "    labels: %s\n", d.labels)
		}
	}
	if anon != "" {
		b.WriteString("anonymous: " + anon + "\n")
	}
	return b.String()
}

// secDevices writes a devices file into a fresh temporary directory.
func secDevices(t *testing.T, anon string, devs []secDev) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "devices.yaml")
	writeFile(t, path, secDevicesYAML(t, anon, devs))
	return path
}

func secAuth(path string, anonymous bool) string {
	return fmt.Sprintf("auth:\n  anonymous: %v\n  devices_file: %s\n", anonymous, path)
}

// secAMQPYAML is bridgeYAML with PLAIN offered on the plaintext AMQP listener.
var secAMQPYAML = strings.Replace(bridgeYAML, "amqp:\n  listen: 127.0.0.1:0\n", "amqp:\n  listen: 127.0.0.1:0\n  plain_without_tls: true\n", 1)

// secRefused are the MQTT versions with the CONNACK code each refuses a
// client with: 0x86 bad user name or password (5), 0x05 not authorized (3.1.1).
var secRefused = []struct{ version, refused byte }{{5, 0x86}, {4, 0x05}}

// secIDRefused: the CONNACK codes for a client id held by another identity's
// session: 0x85 client identifier not valid (5), 0x02 identifier rejected (3.1.1).
var secIDRefused = []struct{ version, refused byte }{{5, 0x85}, {4, 0x02}}

// secNotAuthorized: the CONNACK codes for a will topic outside the ACL:
// 0x87 not authorized (5), 0x05 (3.1.1).
var secNotAuthorized = []struct{ version, refused byte }{{5, 0x87}, {4, 0x05}}

// secExpectCode connects with p and reports what when the CONNACK code is not want.
func secExpectCode(t *testing.T, addr string, p mqttConnect, want byte, what string) {
	t.Helper()
	if _, code, _ := dialConnect(t, addr, p); code != want {
		t.Errorf("%s, MQTT %d: CONNACK %#02x, want %#02x", what, p.version, code, want)
	}
}

// ---- admin API ----

type secAPIConn struct {
	Protocol   string    `json:"protocol"`
	ID         string    `json:"id"`
	Identity   string    `json:"identity"`
	ClientID   string    `json:"client_id"`
	Transport  string    `json:"transport"`
	Remote     string    `json:"remote"`
	Connected  time.Time `json:"connected"`
	MessagesIn uint64    `json:"messages_in"`
}

type secAPIDevice struct {
	ID          string            `json:"id"`
	Enabled     bool              `json:"enabled"`
	Labels      map[string]string `json:"labels"`
	Online      bool              `json:"online"`
	Connections int               `json:"connections"`
	Connects    uint64            `json:"connects"`
	LastSeen    *time.Time        `json:"last_seen"`
	MessagesIn  uint64            `json:"messages_in"`
}

// secAPI calls the admin API; a 200 answer's JSON goes into out unless it is nil.
func secAPI(t *testing.T, g *testGateway, method, path string, out any) int {
	t.Helper()
	code, body := httpDo(t, method, "http://"+g.admin+path)
	if out != nil && code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, body)
		}
	}
	return code
}

// secGet GETs path into out, or fails t unless the answer is 200.
func secGet(t *testing.T, g *testGateway, path string, out any) {
	t.Helper()
	if code := secAPI(t, g, "GET", path, out); code != 200 {
		t.Fatalf("GET %s: %d", path, code)
	}
}

func secConnections(t *testing.T, g *testGateway) []secAPIConn {
	t.Helper()
	var v struct {
		Connections []secAPIConn `json:"connections"`
	}
	secGet(t, g, "/api/v1/connections", &v)
	return v.Connections
}

func secDevicesAPI(t *testing.T, g *testGateway) map[string]secAPIDevice {
	t.Helper()
	var v struct {
		Devices []secAPIDevice `json:"devices"`
	}
	secGet(t, g, "/api/v1/devices", &v)
	m := map[string]secAPIDevice{}
	for _, d := range v.Devices {
		m[d.ID] = d
	}
	return m
}

// ============================================================================

// TestSecurityMQTTPassword: user name = device id and bcrypt-checked
// password; every refusal is CONNACK 0x86 (MQTT 5) or 0x05 (3.1.1), read off
// the wire. With anonymous access on, a client without credentials gets in
// under the anonymous ACL, but a user name is still checked.
func TestSecurityMQTTPassword(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, false))

	cases := []struct {
		name       string
		user, pass string
		withUser   bool
		v5, v4     byte
		note       string
	}{
		{"right password", "sensor-42", secPW42, true, 0x00, 0x00, ""},
		{"wrong password", "sensor-42", secPWWrong, true, 0x86, 0x05, ""},
		{"another device's password", "sensor-42", secPW7, true, 0x86, 0x05, ""},
		{"unknown id", "sensor-999", secPW42, true, 0x86, 0x05, ""},
		{"disabled device, right password", "disabled-1", secPWOff, true, 0x86, 0x05, ""},
		{"empty password", "sensor-42", "", true, 0x86, 0x05, " (a zero-length password is a password present [MQTT-3.1.2-19]/[MQTT-3.1.3-5]; " +
			"mochi's ConnectValidate answers 0x82, which in 3.1.1 is not even a CONNACK return code (0-5))"},
		{"no credentials, anonymous off", "", "", false, 0x86, 0x05, ""},
	}
	refusals := 0 // with the not-authorized code
	for _, tc := range cases {
		for _, v := range []struct {
			version byte
			want    byte
		}{{5, tc.v5}, {4, tc.v4}} {
			p := mqttConnect{version: v.version, clientID: fmt.Sprintf("pw-%d", v.version), keepAlive: 30, user: tc.user, pass: tc.pass, withUser: tc.withUser, withPass: tc.withUser}
			c, code, _ := dialConnect(t, g.mqtt, p)
			if code != v.want {
				t.Errorf("%s, MQTT %d: CONNACK code %#02x, want %#02x%s", tc.name, v.version, code, v.want, tc.note)
			}
			if code == 0x86 || (v.version == 4 && code == 0x05) {
				refusals++
			}
			if code != 0 {
				// A refused client is disconnected [MQTT-3.2.2-5].
				if _, data := closedWithin(t, c, 3*time.Second); len(data) != 0 {
					t.Errorf("%s: sent %x after a refusing CONNACK", tc.name, data)
				}
			}
			c.Close()
		}
	}
	if v := g.metric(t, `isthmus_connections_rejected_total{protocol="mqtt",reason="not_authorized"}`); v != float64(refusals) {
		t.Errorf("not_authorized rejections counted: %v, want %d", v, refusals)
	}

	// Real clients: paho 3.1.1 and paho.golang with the right password, and
	// paho 3.1.1 refused with a wrong one.
	v3(t, g.mqtt, "paho3-ok", func(o *pahov3.ClientOptions) { o.SetUsername("sensor-7").SetPassword(secPW7) })
	v5(t, g.mqtt, "paho5-ok", v5Opts{user: "sensor-7", pass: secPW7})
	bad := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + g.mqtt).SetClientID("paho3-bad").
		SetUsername("sensor-7").SetPassword(secPWWrong).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := bad.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() == nil {
		t.Errorf("paho 3.1.1 with a wrong password connected")
		bad.Disconnect(0)
	}
	if _, ca, _ := v5Try(t, g.mqtt, "paho5-bad", v5Opts{user: "sensor-7", pass: secPWWrong}); ca == nil || ca.ReasonCode != 0x86 {
		t.Errorf("paho.golang with a wrong password: CONNACK %+v, want 0x86", ca)
	}

	// Anonymous on, with the devices file's anonymous ACL.
	path2 := secDevices(t, `{publish: ["public/#"], subscribe: ["public/#"]}`, secDefaultDevs())
	ga := startGateway(t, secAuth(path2, true))
	for _, v := range secRefused {
		secExpectCode(t, ga.mqtt, connectCreds(v.version, "anon-wrong", "sensor-42", secPWWrong), v.refused, "anonymous on, user name with a wrong password")
		secExpectCode(t, ga.mqtt, connectCreds(v.version, "anon-unknown", "nobody", "x"), v.refused, "anonymous on, unknown user name")
		secExpectCode(t, ga.mqtt, mqttConnect{version: v.version, clientID: "anon-none", keepAlive: 30}, 0, "anonymous on, no credentials")
	}
	anon := v5(t, ga.mqtt, "anon-5", v5Opts{})
	if got := anon.subscribe(t, 1, "public/#", "#", "devices/sensor-42/commands/#"); !bytes.Equal(got, []byte{1, 0x87, 0x87}) {
		t.Errorf("anonymous SUBACK codes %x, want 01 87 87", got)
	}
	if rc := anon.publish(t, "public/x", 1, []byte("hi")); rc != 0 {
		t.Errorf("anonymous publish to public/x: PUBACK %#02x, want 0", rc)
	}
	if rc := anon.publish(t, "devices/sensor-42/commands/x", 1, []byte("hi")); rc != 0x87 {
		t.Errorf("anonymous publish to devices/sensor-42/commands/x: PUBACK %#02x, want 0x87", rc)
	}
	if m := recv(t, anon.msgs, "anonymous's own public message"); m.Topic != "public/x" {
		t.Errorf("anonymous received %s, want public/x", showPub(m))
	}
	expectNone(t, anon.msgs, 200*time.Millisecond, "anonymous client", showPub)
}

// TestSecurityMQTTACL: publish and subscribe are checked against the
// device's patterns, filters as filters (`#` is no way around a prefix).
func TestSecurityMQTTACL(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, false))

	// SUBACK codes, MQTT 5: one SUBSCRIBE with every filter.
	filters := []string{
		"devices/sensor-42/commands/#",
		"#",
		"+/#",
		"devices/+/commands/#",
		"devices/sensor-42/#",
		"$SYS/#",
		"$share/g/devices/sensor-42/commands/#",
		"devices/sensor-420/commands/#",
		"devices/sensor-42/commands/+/x",
		"$SYS/isthmus/presence/#",
	}
	want5 := []byte{1, 0x87, 0x87, 0x87, 0x87, 0x87, 1, 0x87, 1, 0x87}
	acl5 := v5(t, g.mqtt, "acl5", v5Opts{user: "sensor-42", pass: secPW42})
	if got := acl5.subscribe(t, 1, filters...); !bytes.Equal(got, want5) {
		for i, f := range filters {
			if i >= len(got) || got[i] != want5[i] {
				t.Errorf("MQTT 5 SUBACK for %q: %x, want %#02x", f, got, want5[i])
			}
		}
	}
	// MQTT 3.1.1: 0x80 for each refused filter.
	acl3 := v3(t, g.mqtt, "acl3", func(o *pahov3.ClientOptions) { o.SetUsername("sensor-42").SetPassword(secPW42) })
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := acl3.SubscribeMultiple(m, nil)
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("3.1.1 SUBSCRIBE: no SUBACK")
	}
	res := tok.(*pahov3.SubscribeToken).Result()
	for i, f := range filters {
		want := byte(1)
		if want5[i] == 0x87 {
			want = 0x80
		}
		if res[f] != want {
			t.Errorf("MQTT 3.1.1 SUBACK for %q: %#02x, want %#02x", f, res[f], want)
		}
	}

	// Publish, MQTT 5: PUBACK / PUBREC 0x87 outside the ACL.
	backend := v5(t, g.mqtt, "backend", v5Opts{user: "backend", pass: secPWBackend})
	backend.subscribed(t, 1, "devices/#")
	s42 := v5(t, g.mqtt, "s42", v5Opts{user: "sensor-42", pass: secPW42})
	s42.subscribed(t, 1, "devices/sensor-42/commands/#")
	for _, p := range []struct {
		topic string
		qos   byte
		want  byte
	}{
		{"devices/sensor-42/telemetry", 1, 0},
		{"devices/sensor-42/telemetry", 2, 0},
		{"devices/sensor-7/telemetry", 1, 0x87},
		{"devices/sensor-7/telemetry", 2, 0x87},
		{"devices/sensor-420/telemetry", 1, 0x87},
		{"commands/x", 1, 0x87},
	} {
		if rc := s42.publish(t, p.topic, p.qos, []byte("v5 "+p.topic)); rc != p.want {
			t.Errorf("sensor-42 MQTT 5 publish to %s at QoS %d: reason %#02x, want %#02x", p.topic, p.qos, rc, p.want)
		}
	}
	// A $SYS topic is outside every ACL here, so a QoS 1 publish to it must
	// be answered like any refused publish [MQTT-3.3.4-1]: PUBACK 0x87.
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		pr, err := s42.Publish(ctx, &paho.Publish{Topic: "$SYS/isthmus/presence/sensor-7", QoS: 1, Payload: []byte("fake")})
		if pr == nil || pr.ReasonCode != 0x87 {
			t.Errorf("MQTT 5 QoS 1 publish to $SYS/isthmus/presence/sensor-7 (not granted): %+v %v; want PUBACK 0x87, "+
				"a QoS 1 PUBLISH must be acknowledged [MQTT-3.3.4-1] (mochi alone drops a client PUBLISH to $SYS with no PUBACK)", pr, err)
		}
	}()
	// QoS 0 outside: silently dropped, the connection stays.
	s42.publish(t, "devices/sensor-7/telemetry", 0, []byte("qos0 outside"))
	s42.publish(t, "devices/sensor-42/telemetry", 0, []byte("qos0 inside"))
	got := map[string]int{}
	for i := 0; i < 3; i++ {
		p := recv(t, backend.msgs, "backend delivery")
		got[string(p.Payload)+" @"+p.Topic]++
	}
	expectNone(t, backend.msgs, 300*time.Millisecond, "backend after the allowed publishes", showPub)
	for _, w := range []string{"v5 devices/sensor-42/telemetry @devices/sensor-42/telemetry", "qos0 inside @devices/sensor-42/telemetry"} {
		if got[w] == 0 {
			t.Errorf("backend did not get %q; got %v", w, got)
		}
	}
	if got["v5 devices/sensor-42/telemetry @devices/sensor-42/telemetry"] != 2 {
		t.Errorf("backend deliveries %v: want the QoS 1 and QoS 2 allowed publishes once each", got)
	}

	// MQTT 3.1.1: QoS 0 outside dropped, connection kept; QoS 1 outside
	// disconnects without a PUBACK.
	c, code, _ := dialConnect(t, g.mqtt, connectCreds(4, "raw-s42", "sensor-42", secPW42))
	if code != 0 {
		t.Fatalf("3.1.1 CONNACK %#02x", code)
	}
	c.Write(publishPacket(4, "devices/sensor-7/telemetry", 0, 0, []byte("v4 qos0 outside")))
	c.Write(publishPacket(4, "devices/sensor-42/telemetry", 1, 7, []byte("v4 qos1 inside")))
	if typ, body, err := readPacket(c, 5*time.Second); err != nil || typ != 0x40 || len(body) < 2 || body[1] != 7 {
		t.Fatalf("3.1.1 PUBACK for an allowed QoS 1 publish: %#x %x %v", typ, body, err)
	}
	if p := recv(t, backend.msgs, "3.1.1 allowed publish"); string(p.Payload) != "v4 qos1 inside" {
		t.Errorf("backend got %s, want the allowed 3.1.1 publish only (QoS 0 outside must be dropped)", showPub(p))
	}
	c.Write(publishPacket(4, "devices/sensor-7/telemetry", 1, 8, []byte("v4 qos1 outside")))
	if _, data := closedWithin(t, c, 3*time.Second); bytes.Contains(data, []byte{0x40, 0x02, 0x00, 0x08}) {
		t.Errorf("3.1.1 QoS 1 publish outside the ACL was acknowledged: %x", data)
	}
	expectNone(t, backend.msgs, 300*time.Millisecond, "backend after the refused 3.1.1 publishes", showPub)

	// Deliveries: the backend's command to sensor-42 arrives; one to sensor-7
	// reaches sensor-7, not sensor-42.
	s7 := v5(t, g.mqtt, "s7", v5Opts{user: "sensor-7", pass: secPW7})
	s7.subscribed(t, 1, "devices/sensor-7/commands/#")
	backend.published(t, "devices/sensor-42/commands/x", []byte("for 42"))
	backend.published(t, "devices/sensor-7/commands/x", []byte("for 7"))
	if p := recv(t, s42.msgs, "command for sensor-42"); p.Topic != "devices/sensor-42/commands/x" || string(p.Payload) != "for 42" {
		t.Errorf("sensor-42 got %s", showPub(p))
	}
	if p := recv(t, s7.msgs, "command for sensor-7"); p.Topic != "devices/sensor-7/commands/x" {
		t.Errorf("sensor-7 got %s", showPub(p))
	}
	expectNone(t, s42.msgs, 300*time.Millisecond, "sensor-42 after sensor-7's command", showPub)
	// The backend itself is subscribed to devices/# and sees both commands.
	for i := 0; i < 2; i++ {
		recv(t, backend.msgs, "backend sees its own commands")
	}
}

// TestSecurityClientIDTakeover: a client id held by another identity's
// session (connected or offline) is refused; the same identity resumes its
// session.
func TestSecurityClientIDTakeover(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, true))

	// Live session of sensor-42 under id "shared".
	live := v5(t, g.mqtt, "shared", v5Opts{user: "sensor-42", pass: secPW42})
	for _, v := range secIDRefused {
		secExpectCode(t, g.mqtt, connectCreds(v.version, "shared", "sensor-7", secPW7), v.refused, "sensor-7 taking over sensor-42's connected client id")
		secExpectCode(t, g.mqtt, mqttConnect{version: v.version, clientID: "shared", keepAlive: 30}, v.refused, "anonymous client taking over sensor-42's client id")
	}
	select {
	case d := <-live.disc:
		t.Fatalf("sensor-42 was disconnected by a refused takeover: %+v", d)
	case <-time.After(100 * time.Millisecond):
	}
	if !g.broker.ClientConnected("shared") {
		t.Fatal("sensor-42's connection is gone after refused takeovers")
	}
	if rc := live.publish(t, "devices/sensor-42/alive", 1, []byte("x")); rc != 0 {
		t.Errorf("sensor-42 publish after refused takeovers: %#02x", rc)
	}

	// Offline persistent session of sensor-42 (3.1.1, clean session off).
	durable := connectCreds(4, "durable-42", "sensor-42", secPW42)
	durable.keep = true
	c, code, _ := dialConnect(t, g.mqtt, durable)
	if code != 0 {
		t.Fatalf("CONNACK %#02x", code)
	}
	sub := append([]byte{0, 1}, mqttString("devices/sensor-42/commands/#")...)
	c.Write(packet(0x82, append(sub, 1)))
	if typ, body, err := readPacket(c, 5*time.Second); err != nil || typ != 0x90 || len(body) != 3 || body[2] != 1 {
		t.Fatalf("SUBACK %#x %x %v", typ, body, err)
	}
	c.Write([]byte{0xe0, 0})
	c.Close()
	eventually(t, "durable-42 offline", func() bool { return !g.broker.ClientConnected("durable-42") })
	for _, v := range secIDRefused {
		p := connectCreds(v.version, "durable-42", "sensor-7", secPW7)
		p.keep = true
		secExpectCode(t, g.mqtt, p, v.refused, "sensor-7 taking over sensor-42's offline session")
	}
	// A command queued while away reaches sensor-42 when it resumes.
	backend := v5(t, g.mqtt, "backend", v5Opts{user: "backend", pass: secPWBackend})
	backend.published(t, "devices/sensor-42/commands/wake", []byte("queued"))
	c, code, present := dialConnect(t, g.mqtt, durable)
	if code != 0 || !present {
		t.Fatalf("sensor-42 resuming its session: CONNACK code %#02x session present %v, want 0 and true", code, present)
	}
	typ, body, err := readPacket(c, 5*time.Second)
	if err != nil || typ>>4 != 3 || !bytes.Contains(body, []byte("queued")) {
		t.Fatalf("resumed session: packet %#x %q %v, want the queued command", typ, body, err)
	}
	c.Write([]byte{0xe0, 0})
}

// TestSecurityMutualTLS: on an mTLS listener a certificate whose CN is a
// device's cert_cn logs in as that device without a user name; an unknown CN
// needs credentials; a user name naming another device is refused.
func TestSecurityMutualTLS(t *testing.T) {
	p := newPKI(t)
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, false)+
		"mqtt:\n  listen: 127.0.0.1:0\n  connect_timeout: 700ms\n  max_packet_size: 64KiB\n  tls: "+p.tlsYAML(true, true)+"\n")
	tlsDial := func(conf *tls.Config) net.Conn {
		c, err := tlsClient(t, g.mqtts, conf)
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		return c
	}
	cert42, certUnknown := p.clientConf(t, "sensor-42"), p.clientConf(t, "intruder-9")

	// sensor-42 by certificate alone, MQTT 5 (paho.golang) — its ACL applies.
	c42 := v5(t, "", "mtls-42", v5Opts{conn: tlsDial(cert42)})
	if got := c42.subscribe(t, 1, "devices/sensor-42/commands/#", "devices/sensor-7/commands/#"); !bytes.Equal(got, []byte{1, 0x87}) {
		t.Errorf("certificate-authenticated sensor-42 SUBACK %x, want 01 87", got)
	}
	if rc := c42.publish(t, "devices/sensor-7/x", 1, nil); rc != 0x87 {
		t.Errorf("certificate-authenticated sensor-42 publishing to sensor-7's topic: %#02x, want 0x87", rc)
	}
	var identity string
	for _, c := range secConnections(t, g) {
		if c.ClientID == "mtls-42" {
			identity = c.Identity
			if c.Transport != "tls" {
				t.Errorf("transport %q, want tls", c.Transport)
			}
		}
	}
	if identity != "sensor-42" {
		t.Errorf("connection mtls-42 has identity %q, want sensor-42", identity)
	}

	for _, tc := range []struct {
		name   string
		conf   *tls.Config
		p      mqttConnect
		v5, v4 byte
	}{
		{"sensor-42 certificate, no user name", cert42, mqttConnect{clientID: "m1", keepAlive: 30}, 0, 0},
		{"sensor-42 certificate, its own user name", cert42, mqttConnect{clientID: "m2", keepAlive: 30, user: "sensor-42", withUser: true}, 0, 0},
		{"sensor-42 certificate, user name of sensor-7 with its right password", cert42, connectCreds(0, "m3", "sensor-7", secPW7), 0x86, 0x05},
		{"unknown CN, no credentials", certUnknown, mqttConnect{clientID: "m4", keepAlive: 30}, 0x86, 0x05},
		{"unknown CN, wrong password", certUnknown, connectCreds(0, "m5", "sensor-7", secPWWrong), 0x86, 0x05},
		// The CA vouches for the transport; credentials may still identify the client.
		{"unknown CN, right password of sensor-7", certUnknown, connectCreds(0, "m6", "sensor-7", secPW7), 0, 0},
	} {
		for _, v := range []struct {
			version byte
			want    byte
		}{{5, tc.v5}, {4, tc.v4}} {
			pk := tc.p
			pk.version = v.version
			pk.clientID += fmt.Sprintf("-v%d", v.version)
			c := tlsDial(tc.conf)
			if code, _ := connack(t, c, pk); code != v.want {
				t.Errorf("%s, MQTT %d: CONNACK %#02x, want %#02x", tc.name, v.version, code, v.want)
			}
			c.Close()
		}
	}
}

// TestSecurityAMQPSASL: PLAIN only on TLS unless plain_without_tls;
// EXTERNAL by client certificate; ANONYMOUS only with auth.anonymous.
func TestSecurityAMQPSASL(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())

	// Plaintext listener, default plain_without_tls (false), anonymous on:
	// ANONYMOUS is offered, PLAIN is not.
	g0 := startGateway(t, secAuth(path, true)+"amqp:\n  listen: 127.0.0.1:0\n")
	url0 := "amqp://" + g0.amqpAddr(t)
	if err := amqpRefused(t, url0, saslPlain("sensor-42", secPW42), "PLAIN worked on a plaintext listener without plain_without_tls"); err != nil &&
		(!strings.Contains(err.Error(), "no supported auth mechanism") || strings.Contains(err.Error(), "PLAIN") || !strings.Contains(err.Error(), "ANONYMOUS")) {
		t.Errorf("PLAIN on plaintext: %v; want go-amqp to find PLAIN not offered (only ANONYMOUS)", err)
	}
	c0, _ := amqpConnect(t, url0, saslAnonymous())
	c0.Close()

	// plain_without_tls, anonymous off; amqps with a client CA.
	p := newPKI(t)
	g := startGateway(t, secAuth(path, false)+"amqp:\n  listen: 127.0.0.1:0\n  plain_without_tls: true\n  tls: "+p.tlsYAML(true, true)+"\n")
	url := "amqp://" + g.amqpAddr(t)
	urls := "amqps://" + g.listenerAddr(t, "amqp.tls.listen")
	amqpConnect(t, url, saslPlain("sensor-42", secPW42))
	for _, tc := range []struct {
		name string
		opts *goamqp.ConnOptions
	}{
		{"PLAIN, wrong password", saslPlain("sensor-42", secPWWrong)},
		{"PLAIN, unknown id", saslPlain("nobody", secPW42)},
		{"PLAIN, disabled device", saslPlain("disabled-1", secPWOff)},
		{"ANONYMOUS with anonymous off", saslAnonymous()},
		{"no SASL with anonymous off", nil},
	} {
		amqpRefused(t, url, tc.opts, tc.name+": connected")
	}

	// EXTERNAL with the sensor-42 certificate; PLAIN over amqps.
	ext := &goamqp.ConnOptions{SASLType: goamqp.SASLTypeExternal(""), TLSConfig: p.clientConf(t, "sensor-42")}
	amqpConnect(t, urls, ext)
	amqpRefused(t, urls, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeExternal(""), TLSConfig: p.clientConf(t, "intruder-9")},
		"EXTERNAL with a certificate naming no device connected")
	amqpRefused(t, urls, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeExternal("sensor-7"), TLSConfig: p.clientConf(t, "sensor-42")},
		"EXTERNAL with sensor-42's certificate and authzid sensor-7 connected")
	amqpConnect(t, urls, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("sensor-7", secPW7), TLSConfig: p.clientConf(t, "intruder-9")})
	amqpRefused(t, urls, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("sensor-7", secPWWrong), TLSConfig: p.clientConf(t, "intruder-9")},
		"PLAIN over amqps with a wrong password connected")
	var open []string
	for _, c := range secConnections(t, g) {
		if c.Protocol == "amqp" {
			open = append(open, c.Identity+"/"+c.Transport)
		}
	}
	slices.Sort(open)
	if want := []string{"sensor-42/tcp", "sensor-42/tls", "sensor-7/tls"}; !slices.Equal(open, want) {
		t.Errorf("AMQP connections (identity/transport) %v, want %v: PLAIN on tcp, EXTERNAL by certificate, PLAIN over amqps", open, want)
	}
}

// TestSecurityAMQPACL: attach checks the source (as a filter) and target
// against the device's ACL with amqp:unauthorized-access; an anonymous relay
// checks each message's properties.to; a temporary queue is its creator's.
func TestSecurityAMQPACL(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, false)+secAMQPYAML)
	url := "amqp://" + g.amqpAddr(t)
	_, s42 := amqpConnect(t, url, saslPlain("sensor-42", secPW42))

	for _, source := range []string{"devices/other/#", "devices/+/commands/#", "#", "devices/sensor-42/#", "$events/presence"} {
		r, err := newReceiver(s42, source, nil)
		attachRefused(t, fmt.Sprintf("sensor-42 receiver on %q", source), r, err)
	}
	for _, target := range []string{"commands/x", "devices/sensor-7/telemetry"} {
		snd, err := newSender(s42, target)
		attachRefused(t, fmt.Sprintf("sensor-42 sender to %q", target), snd, err)
	}

	// Allowed links carry messages both ways.
	backend := v5(t, g.mqtt, "backend", v5Opts{user: "backend", pass: secPWBackend})
	backend.subscribed(t, 1, "devices/#")
	r := receiver(t, s42, "devices/sensor-42/commands/#")
	// The PUBACK waits for the AMQP receiver's accept: publish aside.
	puback := make(chan byte, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pr, _ := backend.Publish(ctx, &paho.Publish{Topic: "devices/sensor-42/commands/reboot", QoS: 1, Payload: []byte("reboot now")})
		if pr == nil {
			puback <- 0xff
			return
		}
		puback <- pr.ReasonCode
	}()
	if m := tryReceive(r, 5*time.Second); m == nil || string(m.GetData()) != "reboot now" {
		t.Fatalf("MQTT→AMQP command: %v", m)
	}
	if rc := recv(t, puback, "PUBACK of the command"); rc != 0 {
		t.Fatalf("backend publish: PUBACK %#02x", rc)
	}
	recv(t, backend.msgs, "backend's own command") // it is subscribed to devices/#
	snd := sender(t, s42, "devices/sensor-42/telemetry")
	if err := send(snd, "", "21.5"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if p := recv(t, backend.msgs, "AMQP→MQTT telemetry"); p.Topic != "devices/sensor-42/telemetry" || string(p.Payload) != "21.5" {
		t.Errorf("backend got %s", showPub(p))
	}

	// Anonymous relay: a sender with a null target address.
	relay, err := newSender(s42, "")
	if err != nil {
		t.Errorf("anonymous relay sender (null target address): %v", err)
	} else {
		if err := send(relay, "devices/sensor-42/relayed", "via relay"); err != nil {
			t.Errorf("relay to an allowed properties.to: %v", err)
		} else if p := recv(t, backend.msgs, "relayed message"); p.Topic != "devices/sensor-42/relayed" {
			t.Errorf("backend got %s", showPub(p))
		}
		for _, to := range []string{"commands/x", "devices/sensor-7/telemetry"} {
			err := send(relay, to, "forbidden")
			if c := amqpCondition(err); c != goamqp.ErrCondUnauthorizedAccess {
				t.Errorf("relay to properties.to %q: %v (condition %q), want rejected with amqp:unauthorized-access", to, err, c)
			}
		}
		expectNone(t, backend.msgs, 300*time.Millisecond, "backend after refused relays", showPub)
	}
	// The same per-message check through isthmus's own AMQP client, whose
	// relay link has no target at all.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	own, err := amqp.Dial(ctx, url, &amqp.ConnOptions{SASL: amqp.SASLPlain("sensor-42", secPW42)})
	if err != nil {
		t.Fatalf("own client dial: %v", err)
	}
	defer own.Close()
	osess, err := own.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	orelay, err := osess.NewSender(ctx, "", nil)
	if err != nil {
		t.Fatalf("own client anonymous relay: %v", err)
	}
	for _, tc := range []struct {
		to      string
		allowed bool
	}{{"devices/sensor-42/own-relay", true}, {"commands/x", false}, {"devices/sensor-7/telemetry", false}} {
		st, err := orelay.Send(ctx, &frames.Message{Properties: &frames.MessageProperties{To: frames.Some(tc.to)}, Data: [][]byte{[]byte("own relay")}}, nil)
		if err != nil {
			t.Fatalf("own relay send to %s: %v", tc.to, err)
		}
		rej, _ := st.(*frames.Rejected)
		switch {
		case tc.allowed:
			if _, ok := st.(*frames.Accepted); !ok {
				t.Errorf("own relay to allowed %s: outcome %T %+v, want accepted", tc.to, st, st)
			} else if p := recv(t, backend.msgs, "own relayed message"); p.Topic != tc.to {
				t.Errorf("backend got %s", showPub(p))
			}
		case rej == nil || rej.Error == nil || rej.Error.Condition != frames.CondUnauthorizedAccess:
			t.Errorf("own relay to %s: outcome %T %+v, want rejected with amqp:unauthorized-access", tc.to, st, st)
		}
	}
	expectNone(t, backend.msgs, 300*time.Millisecond, "backend after the own client's refused relays", showPub)

	// Dynamic receiver: its creator's; anyone may send to it.
	dyn, addr := dynamicReceiver(t, s42)
	_, s7 := amqpConnect(t, url, saslPlain("sensor-7", secPW7))
	r7, err := newReceiver(s7, addr, nil)
	attachRefused(t, "sensor-7 receiver on sensor-42's temporary queue "+addr, r7, err)
	reply := sender(t, s7, addr)
	if err := send(reply, "", "the reply"); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if m := tryReceive(dyn, 5*time.Second); m == nil || string(m.GetData()) != "the reply" {
		t.Fatalf("reply on the temporary queue: %v", m)
	}
}

// TestSecurityDevicesReload: a rewritten devices file is picked up by
// polling; removed, disabled and changed devices are disconnected (MQTT 5
// DISCONNECT 0x87, AMQP close amqp:unauthorized-access) and lose their
// sessions; a narrowed ACL applies to deliveries at once; Server.Reload does
// the same; a broken file keeps the devices in force.
func TestSecurityDevicesReload(t *testing.T) {
	devs := secDefaultDevs()
	path := secDevices(t, "", devs)
	extra := secAuth(path, false) + secAMQPYAML
	g := startGateway(t, extra)
	url := "amqp://" + g.amqpAddr(t)

	s42 := v5(t, g.mqtt, "s42", v5Opts{user: "sensor-42", pass: secPW42, keep: true})
	s42.subscribe(t, 1, "devices/sensor-42/commands/#")
	a42, _ := amqpConnect(t, url, saslPlain("sensor-42", secPW42))
	s7 := v5(t, g.mqtt, "s7", v5Opts{user: "sensor-7", pass: secPW7})
	s7.subscribe(t, 1, "devices/sensor-7/commands/#")
	backend := v5(t, g.mqtt, "backend", v5Opts{user: "backend", pass: secPWBackend})

	// Remove sensor-42; take sensor-7's subscribe grant away (same password:
	// it stays connected).
	devs = secEdit(devs, "sensor-42", func(*secDev) bool { return false })
	devs = secEdit(devs, "sensor-7", func(d *secDev) bool { d.sub = nil; return true })
	start := time.Now()
	writeFile(t, path, secDevicesYAML(t, "", devs))
	select {
	case d := <-s42.disc:
		if d.ReasonCode != 0x87 {
			t.Errorf("removed device: DISCONNECT %#02x, want 0x87", d.ReasonCode)
		}
		t.Logf("removed device disconnected %v after the file was written", time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("removed device still connected 3s after the devices file changed")
	}
	if c := amqpClosedWith(t, a42, 2*time.Second, "removed device's AMQP connection"); c != goamqp.ErrCondUnauthorizedAccess {
		t.Errorf("removed device's AMQP connection closed with %q (%v), want amqp:unauthorized-access", c, a42.Err())
	}
	select {
	case d := <-s7.disc:
		t.Errorf("sensor-7 (only its ACL changed) was disconnected: %+v", d)
	default:
	}
	backend.published(t, "devices/sensor-7/commands/x", []byte("after narrowing"))
	expectNone(t, s7.msgs, 400*time.Millisecond, "sensor-7 after its subscribe grant was removed (deliveries are checked)", showPub)

	// Reconnecting is refused on both protocols.
	secExpectCode(t, g.mqtt, connectCreds(5, "s42-again", "sensor-42", secPW42), 0x86, "removed device reconnecting")
	amqpRefused(t, url, saslPlain("sensor-42", secPW42), "removed device reconnected over AMQP")

	// Put sensor-42 back: its old session is gone.
	devs = secDefaultDevs()
	writeFile(t, path, secDevicesYAML(t, "", devs))
	deadline := time.Now().Add(4 * time.Second)
	for {
		c, code, _ := dialConnect(t, g.mqtt, connectCreds(5, "s42-probe", "sensor-42", secPW42))
		c.Close()
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sensor-42 put back in the devices file still refused after 4s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := connectCreds(5, "s42", "sensor-42", secPW42)
	p.keep = true
	if c, code, present := dialConnect(t, g.mqtt, p); code != 0 || present {
		t.Errorf("sensor-42 back: CONNACK %#02x session present %v; want 0 and no session (removed with the device)", code, present)
	} else {
		c.Write([]byte{0xe0, 0})
	}

	// Server.Reload with a config naming another devices file where backend
	// is disabled: the poller still watches the old (unchanged) file, so
	// only Reload can be what disconnects it.
	path2 := filepath.Join(t.TempDir(), "devices2.yaml")
	writeFile(t, path2, secDevicesYAML(t, "", secEdit(devs, "backend", func(d *secDev) bool { d.disabled = true; return true })))
	abackend, _ := amqpConnect(t, url, saslPlain("backend", secPWBackend))
	extra2 := strings.Replace(extra, path, path2, 1)
	if _, err := g.Reload(parseConfig(t, mergeYAML(baseYAML, extra2))); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	select {
	case d := <-backend.disc:
		if d.ReasonCode != 0x87 {
			t.Errorf("disabled device: DISCONNECT %#02x, want 0x87", d.ReasonCode)
		}
	case <-time.After(time.Second):
		t.Fatal("disabled device still connected 1s after Server.Reload")
	}
	if c := amqpClosedWith(t, abackend, time.Second, "disabled device's AMQP connection"); c != goamqp.ErrCondUnauthorizedAccess {
		t.Errorf("disabled device's AMQP connection closed with %q (%v), want amqp:unauthorized-access", c, abackend.Err())
	}
	amqpRefused(t, url, saslPlain("backend", secPWBackend), "disabled device reconnected over AMQP")
	secExpectCode(t, g.mqtt, connectCreds(4, "backend-again", "backend", secPWBackend), 0x05, "disabled device reconnecting")

	// A broken file: Reload reports it, the poller logs and counts it, and
	// the devices in force still work.
	path3 := filepath.Join(t.TempDir(), "devices3.yaml")
	writeFile(t, path3, "devices:\n  - id: sensor-42\n    password: [unclosed\n")
	if _, err := g.Reload(parseConfig(t, mergeYAML(baseYAML, strings.Replace(extra, path, path3, 1)))); err == nil {
		t.Error("Reload with a broken devices file returned no error")
	}
	before := g.metric(t, `isthmus_config_reloads_total{result="error"}`)
	// (Other bytes than devices3.yaml's: the poller skips content it already failed on.)
	writeFile(t, path2, "devices: [\n")
	eventually(t, "broken devices file counted as a failed reload", func() bool {
		return g.metric(t, `isthmus_config_reloads_total{result="error"}`) > before
	})
	for _, d := range []struct{ id, pw string }{{"sensor-42", secPW42}, {"sensor-7", secPW7}} {
		secExpectCode(t, g.mqtt, connectCreds(5, "after-broken-"+d.id, d.id, d.pw), 0, d.id+" after a broken devices file (old devices stay in force)")
	}
	secExpectCode(t, g.mqtt, connectCreds(5, "after-broken-backend", "backend", secPWBackend), 0x86, "backend (disabled in the registry in force) after a broken devices file")
	a, _ := amqpConnect(t, url, saslPlain("sensor-7", secPW7))
	a.Close()
}

// secPresence is the JSON of a presence event.
type secPresence struct {
	Event     string    `json:"event"`
	ID        string    `json:"id"`
	ClientID  string    `json:"client_id"`
	Protocol  string    `json:"protocol"`
	Transport string    `json:"transport"`
	Remote    string    `json:"remote"`
	Time      time.Time `json:"time"`
	Gateway   string    `json:"gateway"`
	Reason    *string   `json:"reason"`
}

// TestSecurityPresence: an identity granted the presence topics sees
// sensor-42 connect and disconnect over both protocols, on MQTT and AMQP;
// an identity without the grant cannot listen.
func TestSecurityPresence(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, false)+secAMQPYAML)
	url := "amqp://" + g.amqpAddr(t)

	mon := v5(t, g.mqtt, "monitor", v5Opts{user: "monitor", pass: secPWMonitor})
	mon.subscribed(t, 0, "$SYS/isthmus/presence/#")
	_, ms := amqpConnect(t, url, saslPlain("monitor", secPWMonitor))
	mr := receiver(t, ms, "$events/presence")
	// Without the grant: refused on both sides.
	s7 := v5(t, g.mqtt, "s7", v5Opts{user: "sensor-7", pass: secPW7})
	if got := s7.subscribe(t, 0, "$SYS/isthmus/presence/#", "$SYS/isthmus/presence/sensor-42"); !bytes.Equal(got, []byte{0x87, 0x87}) {
		t.Errorf("sensor-7 presence SUBACK %x, want 87 87", got)
	}
	_, s7a := amqpConnect(t, url, saslPlain("sensor-7", secPW7))
	r, err := newReceiver(s7a, "$events/presence", nil)
	attachRefused(t, "sensor-7 receiver on $events/presence", r, err)

	// nextMQTT / nextAMQP return sensor-42's next event on each side.
	nextMQTT := func(what string) secPresence {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case p := <-mon.msgs:
				if p.Topic != "$SYS/isthmus/presence/sensor-42" {
					continue
				}
				if p.Retain || p.QoS != 0 {
					t.Errorf("presence message retain=%v qos=%d, want not retained, QoS 0", p.Retain, p.QoS)
				}
				var ev secPresence
				if err := json.Unmarshal(p.Payload, &ev); err != nil {
					t.Fatalf("presence JSON %q: %v", p.Payload, err)
				}
				return ev
			case <-deadline:
				t.Fatalf("%s: no MQTT presence event for sensor-42", what)
			}
		}
	}
	nextAMQP := func(what string) secPresence {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			m := tryReceive(mr, time.Until(deadline))
			if m == nil {
				break
			}
			var ev secPresence
			if err := json.Unmarshal(m.GetData(), &ev); err != nil {
				t.Fatalf("presence JSON %q: %v", m.GetData(), err)
			}
			if ev.ID != "sensor-42" {
				continue
			}
			if m.Properties == nil || m.Properties.Subject == nil || *m.Properties.Subject != ev.Event {
				t.Errorf("AMQP presence subject %v, want %q", m.Properties, ev.Event)
			}
			return ev
		}
		t.Fatalf("%s: no AMQP presence event for sensor-42", what)
		return secPresence{}
	}
	check := func(ev secPresence, event, protocol, clientID, remote string) {
		t.Helper()
		if ev.Event != event || ev.ID != "sensor-42" || ev.Protocol != protocol || ev.ClientID != clientID ||
			ev.Transport != "tcp" || ev.Gateway != "test-gw" || time.Since(ev.Time) > time.Minute || time.Since(ev.Time) < 0 {
			t.Errorf("presence event %+v, want %s of sensor-42 over %s (client id %q, tcp, gateway test-gw, recent time)", ev, event, protocol, clientID)
		}
		if remote != "" && ev.Remote != remote {
			t.Errorf("%s %s: remote %q, want %q", protocol, event, ev.Remote, remote)
		} else if !strings.HasPrefix(ev.Remote, "127.0.0.1:") {
			t.Errorf("%s %s: remote %q", protocol, event, ev.Remote)
		}
	}

	c42 := v5(t, g.mqtt, "s42-presence", v5Opts{user: "sensor-42", pass: secPW42})
	remote := c42.conn.LocalAddr().String()
	check(nextMQTT("MQTT connect"), "connected", "mqtt", "s42-presence", remote)
	check(nextAMQP("MQTT connect"), "connected", "mqtt", "s42-presence", remote)
	c42.Disconnect(&paho.Disconnect{})
	check(nextMQTT("MQTT disconnect"), "disconnected", "mqtt", "s42-presence", remote)
	check(nextAMQP("MQTT disconnect"), "disconnected", "mqtt", "s42-presence", remote)

	a42, err := amqpDial(url, &goamqp.ConnOptions{SASLType: goamqp.SASLTypePlain("sensor-42", secPW42), ContainerID: "amqp-42"})
	if err != nil {
		t.Fatal(err)
	}
	check(nextMQTT("AMQP connect"), "connected", "amqp", "amqp-42", "")
	check(nextAMQP("AMQP connect"), "connected", "amqp", "amqp-42", "")
	a42.Close()
	check(nextMQTT("AMQP disconnect"), "disconnected", "amqp", "amqp-42", "")
	check(nextAMQP("AMQP disconnect"), "disconnected", "amqp", "amqp-42", "")
}

// TestSecurityAdminAPI: connections with identities; kicking one connection
// per protocol; device online state and counters.
func TestSecurityAdminAPI(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, false)+secAMQPYAML)
	url := "amqp://" + g.amqpAddr(t)

	d := secDevicesAPI(t, g)
	if d["sensor-42"].Online || d["sensor-42"].Connects != 0 || d["sensor-42"].LastSeen != nil || !d["sensor-42"].Enabled ||
		d["sensor-42"].Labels["site"] != "plant-1" || d["disabled-1"].Enabled || len(d) != 5 {
		t.Errorf("devices before any connection: %+v", d)
	}

	m42 := v5(t, g.mqtt, "s42-admin", v5Opts{user: "sensor-42", pass: secPW42})
	for i := 0; i < 3; i++ {
		m42.published(t, "devices/sensor-42/t", []byte("x"))
	}
	a42, as := amqpConnect(t, url, saslPlain("sensor-42", secPW42))
	snd := sender(t, as, "devices/sensor-42/t")
	for i := 0; i < 2; i++ {
		if err := send(snd, "", "y"); err != nil {
			t.Fatal(err)
		}
	}
	var mq, aq *secAPIConn
	conns := secConnections(t, g)
	for i := range conns {
		c := &conns[i]
		switch {
		case c.Protocol == "mqtt" && c.ID == "s42-admin":
			mq = c
		case c.Protocol == "amqp" && c.Identity == "sensor-42":
			aq = c
		}
	}
	if mq == nil || aq == nil {
		t.Fatalf("connections %+v: want the MQTT and the AMQP connection of sensor-42", conns)
	}
	if mq.Identity != "sensor-42" || mq.ClientID != "s42-admin" || mq.Transport != "tcp" || mq.Remote != m42.conn.LocalAddr().String() ||
		mq.MessagesIn != 3 || time.Since(mq.Connected) > time.Minute {
		t.Errorf("MQTT connection %+v", *mq)
	}
	if _, err := strconv.ParseUint(aq.ID, 10, 64); err != nil || aq.Transport != "tcp" || aq.MessagesIn != 2 || !strings.HasPrefix(aq.Remote, "127.0.0.1:") {
		t.Errorf("AMQP connection %+v", *aq)
	}
	d = secDevicesAPI(t, g)
	if s := d["sensor-42"]; !s.Online || s.Connections != 2 || s.Connects != 2 || s.MessagesIn != 5 || s.LastSeen == nil {
		t.Errorf("sensor-42 while connected: %+v; want online, 2 connections, 2 connects, 5 messages in", s)
	}
	if s := d["sensor-7"]; s.Online || s.Connects != 0 || s.LastSeen != nil {
		t.Errorf("sensor-7 (never connected): %+v", s)
	}

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/v1/connections/mqtt/nobody", 404},
		{"/api/v1/connections/amqp/987654321", 404},
		{"/api/v1/connections/amqp/not-a-number", 400},
		{"/api/v1/connections/xmpp/1", 400},
	} {
		if code := secAPI(t, g, "DELETE", tc.path, nil); code != tc.want {
			t.Errorf("DELETE %s: %d, want %d", tc.path, code, tc.want)
		}
	}
	if code := secAPI(t, g, "DELETE", "/api/v1/connections/mqtt/s42-admin", nil); code != 200 {
		t.Errorf("DELETE mqtt/s42-admin: %d", code)
	}
	if dis := recv(t, m42.disc, "MQTT 5 DISCONNECT after the kick"); dis.ReasonCode != 0x98 {
		t.Errorf("kicked MQTT 5 client: DISCONNECT %#02x, want 0x98", dis.ReasonCode)
	}
	if code := secAPI(t, g, "DELETE", "/api/v1/connections/amqp/"+aq.ID, nil); code != 200 {
		t.Errorf("DELETE amqp/%s: %d", aq.ID, code)
	}
	if c := amqpClosedWith(t, a42, 3*time.Second, "kicked AMQP connection"); c != goamqp.ErrCondConnectionForced {
		t.Errorf("kicked AMQP connection closed with %q (%v), want amqp:connection:forced", c, a42.Err())
	}
	eventually(t, "sensor-42 offline in /api/v1/devices", func() bool {
		s := secDevicesAPI(t, g)["sensor-42"]
		return !s.Online && s.Connections == 0
	})
	if s := secDevicesAPI(t, g)["sensor-42"]; s.Connects != 2 || s.MessagesIn != 5 || s.LastSeen == nil || time.Since(*s.LastSeen) > time.Minute {
		t.Errorf("sensor-42 after both connections were kicked: %+v; want 2 connects, 5 messages in, a recent last_seen", s)
	}
	for _, c := range secConnections(t, g) {
		if c.Identity == "sensor-42" {
			t.Errorf("kicked connection still listed: %+v", c)
		}
	}
}

// TestSecurityConnectRate: connect_rate 5, burst 5: of 30 sockets opened at
// once, about 5 are served and the rest closed at accept, and counted.
func TestSecurityConnectRate(t *testing.T) {
	g := startGateway(t, "limits: {connect_rate: 5, connect_burst: 5}\n")
	const n = 30
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, g.mqtt)
		conns[i].Write(connectV4(fmt.Sprintf("flood-%d", i), 30, nil))
	}
	served := 0
	for _, c := range conns {
		typ, _, err := readPacket(c, 3*time.Second)
		if err == nil && typ == 0x20 {
			served++
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("a connection got neither a CONNACK nor closed in 3s")
		}
	}
	refused := n - served
	t.Logf("%d of %d connections served", served, n)
	if refused < 20 {
		t.Errorf("%d of %d rapid connections were refused, want at least 20 (rate 5/s, burst 5)", refused, n)
	}
	if served < 5 {
		t.Errorf("only %d connections served, want at least the burst of 5", served)
	}
	eventually(t, "connect_rate refusals counted", func() bool {
		return g.metric(t, `isthmus_connections_rejected_total{listener="mqtt.listen",reason="connect_rate"}`) == float64(refused)
	})
}

// TestSecurityPublishRate: publish_rate 20/s, burst 1 slows a flooding MQTT
// client down without dropping anything; an AMQP connection likewise.
func TestSecurityPublishRate(t *testing.T) {
	g := startGateway(t, "limits: {connect_rate: 0, publish_rate: 20, publish_burst: 1}\n"+bridgeYAML)
	got := make(chan pahov3.Message, 100)
	sub := v3(t, g.mqtt, "sink", nil)
	wait(t, sub.Subscribe("flood/#", 0, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	// inOrder receives the messages 0 to n-1 in order.
	inOrder := func(n int, what string) {
		t.Helper()
		for i := 0; i < n; i++ {
			if m := recv(t, got, "rate-limited "+what); string(m.Payload()) != strconv.Itoa(i) {
				t.Fatalf("%s %d: got %q (lost or reordered)", what, i, m.Payload())
			}
		}
	}
	pub := v3(t, g.mqtt, "flooder", nil)
	const n = 40
	start := time.Now()
	for i := 0; i < n; i++ {
		pub.Publish("flood/mqtt", 0, false, strconv.Itoa(i))
	}
	inOrder(n, "MQTT message")
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("%d QoS 0 publishes at 20/s with burst 1 took %v, want at least 1.5s", n, took)
	} else {
		t.Logf("MQTT: %d publishes in %v", n, took)
	}

	snd := sender(t, amqpSession(t, g.amqpAddr(t)), "flood/amqp")
	const na = 20
	start = time.Now()
	for i := 0; i < na; i++ {
		if err := send(snd, "", strconv.Itoa(i)); err != nil {
			t.Fatalf("AMQP send %d: %v", i, err)
		}
	}
	inOrder(na, "AMQP message")
	if took := time.Since(start); took < 700*time.Millisecond {
		t.Errorf("%d AMQP transfers at 20/s with burst 1 took %v, want at least 0.7s", na, took)
	}
}

// TestSecurityConnectPacketSize: a CONNECT over limits.connect_packet_size
// (64KiB) is refused with CONNACK 0x95 before authentication, while later
// packets may be as large as mqtt.max_packet_size.
func TestSecurityConnectPacketSize(t *testing.T) {
	g := startGateway(t, "mqtt:\n  listen: 127.0.0.1:0\n  connect_timeout: 2s\n  max_packet_size: 1MiB\n")
	// A will payload is at most 65535 bytes (two-byte length); the will
	// topic makes up the rest.
	for _, tc := range []struct {
		name  string
		topic int
	}{
		{"just over 64 KiB", 10},
		{"about 70 KiB", 6000},
	} {
		big := mqttConnect{version: 5, clientID: "big-will", keepAlive: 30, will: &will{topic: "wills/" + strings.Repeat("w", tc.topic), payload: strings.Repeat("p", 65535)}}
		raw := big.bytes()
		if len(raw) <= 64<<10 {
			t.Fatalf("test CONNECT is %d bytes, not over 64KiB", len(raw))
		}
		c := dial(t, g.mqtt)
		c.Write(raw)
		typ, body, err := readPacket(c, 5*time.Second)
		switch {
		case err != nil:
			t.Errorf("CONNECT of %d bytes (%s): no CONNACK: %v; want CONNACK 0x95 "+
				"(a reset means the answer was lost: the server closed with the rest of the CONNECT unread)", len(raw), tc.name, err)
		case typ != 0x20 || len(body) < 2 || body[1] != 0x95:
			t.Errorf("CONNECT of %d bytes (%s): %#x %x, want CONNACK 0x95 (packet too large)", len(raw), tc.name, typ, body)
		}
		c.Close()
	}

	got := make(chan pahov3.Message, 1)
	sub := v3(t, g.mqtt, "big-sink", nil)
	wait(t, sub.Subscribe("big/#", 1, func(_ pahov3.Client, m pahov3.Message) { got <- m }), "subscribe")
	c, code, _ := dialConnect(t, g.mqtt, mqttConnect{version: 5, clientID: "big-pub", keepAlive: 30})
	if code != 0 {
		t.Fatalf("CONNACK %#02x", code)
	}
	payload := bytes.Repeat([]byte("x"), 100<<10)
	c.Write(publishPacket(5, "big/one", 1, 1, payload))
	if typ, body, err := readPacket(c, 5*time.Second); err != nil || typ != 0x40 || len(body) < 2 || body[1] != 1 || (len(body) > 2 && body[2] != 0) {
		t.Fatalf("100 KiB PUBLISH: %#x %x %v, want PUBACK success", typ, body, err)
	}
	if m := recv(t, got, "100 KiB message"); !bytes.Equal(m.Payload(), payload) {
		t.Fatalf("100 KiB message arrived with %d bytes", len(m.Payload()))
	}
}

// secLog is a goroutine-safe log buffer.
type secLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *secLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *secLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecurityNoSecretsInLogs: at debug level, wrong and right passwords over
// MQTT (both versions) and AMQP PLAIN never reach the log, in any encoding,
// while the refusals are logged.
func TestSecurityNoSecretsInLogs(t *testing.T) {
	path := secDevices(t, "", secDefaultDevs())
	logs := &secLog{}
	g := startGatewayLog(t, secAuth(path, false)+secAMQPYAML, slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	url := "amqp://" + g.amqpAddr(t)

	for _, v := range []byte{4, 5} {
		_, code, _ := dialConnect(t, g.mqtt, connectCreds(v, fmt.Sprintf("log-bad-%d", v), "sensor-42", secPWWrong))
		if code == 0 {
			t.Errorf("MQTT %d wrong password accepted", v)
		}
		c, code, _ := dialConnect(t, g.mqtt, connectCreds(v, fmt.Sprintf("log-ok-%d", v), "sensor-42", secPW42))
		if code != 0 {
			t.Errorf("MQTT %d right password refused: %#02x", v, code)
		}
		c.Write([]byte{0xe0, 0})
	}
	amqpRefused(t, url, saslPlain("sensor-7", secPWWrong), "AMQP PLAIN with a wrong password connected")
	c, err := amqpDial(url, saslPlain("sensor-7", secPW7))
	if err != nil {
		t.Fatalf("AMQP PLAIN: %v", err)
	}
	c.Close()
	// Let the disconnects be logged too.
	eventually(t, "all clients gone", func() bool { return len(g.Broker().Clients()) == 0 })
	time.Sleep(200 * time.Millisecond)

	text := logs.String()
	for _, secret := range []string{secPWWrong, secPW42, secPW7} {
		forms := []string{
			secret,
			base64.StdEncoding.EncodeToString([]byte(secret)),
			fmt.Sprintf("%x", secret),
			base64.StdEncoding.EncodeToString([]byte("\x00sensor-7\x00" + secret)),
			fmt.Sprintf("%x", "\x00sensor-7\x00"+secret),
		}
		for _, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("the log holds a password (as %q)", f)
			}
		}
	}
	for _, h := range []string{secHash(t, secPW42), secHash(t, secPW7)} {
		if strings.Contains(text, h) {
			t.Errorf("the log holds a password hash %q", h)
		}
	}
	var mqttRefused, amqpRefused int
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		msg, _ := rec["msg"].(string)
		if msg == "MQTT client refused" && rec["username"] == "sensor-42" {
			mqttRefused++
		}
		if errs, _ := rec["err"].(string); rec["component"] == "amqp" && strings.Contains(errs, "SASL") && strings.Contains(errs, "bad credentials") {
			amqpRefused++
		}
	}
	if mqttRefused != 2 {
		t.Errorf("%d MQTT refusals of sensor-42 logged, want 2", mqttRefused)
	}
	if amqpRefused != 1 {
		t.Errorf("%d AMQP PLAIN refusals logged, want 1 (debug level)", amqpRefused)
	}
	if t.Failed() {
		t.Logf("log:\n%s", text)
	}
}

// TestSecurityWSSCertificate: on wss with a client CA the client certificate
// identifies the device for MQTT over WebSocket (no user name) and for AMQP
// over WebSocket (SASL EXTERNAL), and PLAIN is offered there because the
// WebSocket runs over TLS.
func TestSecurityWSSCertificate(t *testing.T) {
	p := newPKI(t)
	path := secDevices(t, "", secDefaultDevs())
	g := startGateway(t, secAuth(path, false)+bridgeYAML+
		"http:\n  listen: 127.0.0.1:0\n  tls: "+p.tlsYAML(false, true)+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// MQTT over wss, certificate only.
	nc, err := ws.Dial(ctx, "wss://"+g.http+"/mqtt", []string{"mqtt"}, p.clientConf(t, "sensor-42"))
	if err != nil {
		t.Fatalf("wss dial /mqtt: %v", err)
	}
	c := v5(t, "", "wss-42", v5Opts{conn: nc})
	if got := c.subscribe(t, 1, "devices/sensor-42/commands/#", "#"); !bytes.Equal(got, []byte{1, 0x87}) {
		t.Errorf("sensor-42 over wss: SUBACK %x, want 01 87 (its own ACL)", got)
	}

	// AMQP over wss: EXTERNAL with the certificate, and PLAIN (TLS underneath).
	for _, tc := range []struct {
		name, cn string
		sasl     goamqp.SASLType
		want     string
	}{
		{"EXTERNAL", "sensor-42", goamqp.SASLTypeExternal(""), "sensor-42"},
		{"PLAIN", "intruder-9", goamqp.SASLTypePlain("sensor-7", secPW7), "sensor-7"},
	} {
		nc, err := ws.Dial(ctx, "wss://"+g.http+"/amqp", []string{"amqp"}, p.clientConf(t, tc.cn))
		if err != nil {
			t.Fatalf("%s: wss dial /amqp: %v", tc.name, err)
		}
		conn, err := goamqp.NewConn(ctx, nc, &goamqp.ConnOptions{SASLType: tc.sasl})
		if err != nil {
			t.Fatalf("%s over wss: %v", tc.name, err)
		}
		t.Cleanup(func() { conn.Close() })
		// The client may see the open before the gateway has listed the connection.
		eventually(t, tc.name+" over wss: an AMQP connection with identity "+tc.want+" and transport tls", func() bool {
			for _, c := range secConnections(t, g) {
				if c.Protocol == "amqp" && c.Identity == tc.want && c.Transport == "tls" {
					return true
				}
			}
			return false
		})
	}
}

// TestSecurityWillTopic: mochi publishes a will without an ACL check, so the
// will topic is checked at CONNECT: outside the device's publish patterns the
// connection is refused (as Mosquitto does), inside it is admitted.
func TestSecurityWillTopic(t *testing.T) {
	g := startGateway(t, secAuth(secDevices(t, "", secDefaultDevs()), false))
	for _, v := range secNotAuthorized {
		p := connectCreds(v.version, "will-42", "sensor-42", secPW42)
		p.will = &will{topic: "devices/sensor-7/status", payload: "gone"}
		secExpectCode(t, g.mqtt, p, v.refused, "will on another device's topic")
		p.will = &will{topic: "devices/sensor-42/status", payload: "gone"}
		secExpectCode(t, g.mqtt, p, 0, "will on its own topic")
	}
}
