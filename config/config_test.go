package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/isthmus-iot/isthmus/internal/yamlfile"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.golden from the current output")

// testEnv is the environment every test file is parsed with.
var testEnv = map[string]string{
	"ISTHMUS_SET":     "value",
	"ISTHMUS_EMPTY":   "",
	"ISTHMUS_PORT":    "1884",
	"ISTHMUS_NEWLINE": "a\nb",
	"TLS_DIR":         "../tls",
}

func lookupTestEnv(k string) (string, bool) {
	v, ok := testEnv[k]
	return v, ok
}

// checkErrors asserts the invariants every error list from Parse keeps: all
// are *Error for this file, positioned inside the text, sorted.
func checkErrors(t *testing.T, name string, data []byte, err error) Errors {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	if len(errs) == 0 {
		t.Fatal("empty Errors returned as an error")
	}
	lines := strings.Split(string(data), "\n")
	for i, e := range errs {
		if e.File != name {
			t.Errorf("error %q: File = %q, want %q", e, e.File, name)
		}
		if e.Line < 1 || e.Line > len(lines) {
			t.Errorf("error %q: line %d outside the file's %d lines", e, e.Line, len(lines))
			continue
		}
		if n := len([]rune(lines[e.Line-1])); e.Col < 1 || e.Col > n+1 {
			t.Errorf("error %q: column %d outside line %d (%d runes)", e, e.Col, e.Line, n)
		}
		if e.Msg == "" {
			t.Errorf("error at %d:%d has no message", e.Line, e.Col)
		}
		if i > 0 && (errs[i-1].Line > e.Line || errs[i-1].Line == e.Line && errs[i-1].Col > e.Col) {
			t.Errorf("errors not sorted: %q before %q", errs[i-1], e)
		}
	}
	return errs
}

// TestBadConfigs parses every testdata/bad/*.yaml and compares the whole error
// output with the .golden file beside it (go test -update rewrites them).
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) < 15 {
		t.Fatalf("want at least 15 bad configs, got %d (%v)", len(files), err)
	}
	goldens, _ := filepath.Glob("testdata/bad/*.golden")
	for _, g := range goldens {
		if !slices.Contains(files, strings.TrimSuffix(g, ".golden")+".yaml") {
			t.Errorf("%s has no .yaml", g)
		}
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(file, data, lookupTestEnv)
			if err == nil {
				t.Fatalf("no error; parsed %+v", c)
			}
			if c != nil {
				t.Errorf("Config returned along with errors")
			}
			checkErrors(t, file, data, err)
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\n--- got:\n%s--- want:\n%s", golden, got, want)
			}
		})
	}
}

// TestErrorPositions checks positions against the text itself rather than a
// golden file: each error points at the token it is about.
func TestErrorPositions(t *testing.T) {
	cases := []struct {
		name, yaml string
		path, at   string // the error's path, and the text its position must start
	}{
		{"unknown nested key", "auth: {anonymous: true}\nmqtt:\n  tls:\n    cert_fle: x\n", "mqtt.tls.cert_fle", "cert_fle"},
		{"wrong type is at the value", "auth: {anonymous: true}\nmqtt:\n  max_connections:   lots\n", "mqtt.max_connections", "lots"},
		{"not supported is at the key", "auth: {anonymous: true}\nuplinks:\n  - name: u\n", "uplinks", "uplinks"},
		{"env error is at ${", "auth: {anonymous: true}\nmqtt: {listen: \"ab${NOPE}\"}\n", "mqtt.listen", "${NOPE}"},
		{"column after a substitution maps back", "auth: {anonymous: true}\nmqtt: {listen: \"${ISTHMUS_SET}:1\", max_connections: x}\n", "mqtt.max_connections", "x}"},
		{"column after $$ maps back", "auth: {anonymous: true}\ngateway: {id: a$$b, data_dir: \"\"}\n", "gateway.data_dir", `""}`},
		{"missing required key is at the parent", "auth: {anonymous: true}\nmqtt:\n  tls: {listen: \":8883\", key: k}\n", "mqtt.tls.cert", "tls:"},
		{"list item", "auth: {anonymous: true}\nroutes:\n  - name: a\n  - name: b\n    frm: x\n", "routes[1].frm", "frm"},
		{"unicode before the error", "auth: {anonymous: true}\ngateway: {id: \"é€𝄞\", data_dir: \"\"}\n", "gateway.data_dir", `""}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.yaml), lookupTestEnv)
			errs := checkErrors(t, "p.yaml", []byte(tc.yaml), err)
			i := slices.IndexFunc(errs, func(e *Error) bool { return e.Path == tc.path })
			if i < 0 {
				t.Fatalf("no error for %s in:\n%v", tc.path, err)
			}
			e := errs[i]
			line := strings.Split(tc.yaml, "\n")[e.Line-1]
			if rest := string([]rune(line)[e.Col-1:]); !strings.HasPrefix(rest, tc.at) {
				t.Errorf("%v points at %q, want the start of %q", e, rest, tc.at)
			}
		})
	}
}

// TestDefaultYAML: the embedded default parses, is local mode, and documents
// every key of this version with a comment.
func TestDefaultYAML(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatalf("embedded default does not load:\n%v", err)
	}
	if c.Source != DefaultSource {
		t.Errorf("Source = %q", c.Source)
	}
	want := &Config{
		Gateway: Gateway{ID: hostname(), DataDir: "./data", ShutdownTimeout: 10 * time.Second},
		Log:     Log{Level: "info"},
		MQTT: MQTT{Listen: "127.0.0.1:1883", MaxPacketSize: 1 << 20, ConnectTimeout: 5 * time.Second,
			MaxConnections: 10000, SessionExpiryMax: 24 * time.Hour, Retained: Retained{Max: 10000},
			WriteQueue: 128, ReceiveMax: 1024},
		AMQP:       AMQP{Listen: "127.0.0.1:5672", MaxConnections: 10000, MaxFrameSize: 64 << 10, MaxMessageSize: 16 << 20, IdleTimeout: 60 * time.Second},
		HTTP:       HTTP{Listen: "127.0.0.1:8080", MQTTPath: "/mqtt", AMQPPath: "/amqp"},
		Admin:      Admin{Listen: "127.0.0.1:8081"},
		Auth:       Auth{Anonymous: true, Presence: Presence{AMQPAddress: "$events/presence", MQTTTopic: "$SYS/isthmus/presence"}},
		Limits:     Limits{ConnectRate: 500, ConnectBurst: 500, ConnectPacketSize: 64 << 10},
		Unroutable: "accept",
		Routes: []Route{
			{Name: "default-mqtt-to-amqp", From: map[string]any{"mqtt": "#"}, To: map[string]any{"amqp": "{topic}"}},
			{Name: "default-amqp-to-mqtt", From: map[string]any{"amqp": "#", "queues": false}, To: map[string]any{"mqtt": "{address}"}},
		},
		Source: DefaultSource,
	}
	assertConfig(t, c, want)

	// Parsing the same text as a file gives the same values.
	c2, err := Parse("isthmus.yaml", DefaultYAML(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want.Source = "isthmus.yaml"
	assertConfig(t, c2, want)

	// Every key appears, written or in a commented-out example, with a
	// comment above it or beside it.
	text := string(DefaultYAML())
	for _, path := range implementedKeys() {
		leaf := path[strings.LastIndex(path, ".")+1:]
		re := regexp.MustCompile(`(?m)^[ #]*` + regexp.QuoteMeta(leaf) + `:`)
		loc := re.FindStringIndex(text)
		if loc == nil {
			t.Errorf("default.yaml does not mention %s", path)
			continue
		}
		before := text[:loc[0]]
		prev := before[strings.LastIndex(strings.TrimRight(before, "\n"), "\n")+1:]
		if !strings.HasPrefix(strings.TrimSpace(prev), "#") && !strings.Contains(text[loc[0]:loc[0]+strings.IndexByte(text[loc[0]:], '\n')], "# ") {
			t.Errorf("default.yaml: %s has no comment", path)
		}
	}
	for _, later := range []string{"amqp", "queues", "uplinks", "routes", "devices"} {
		if !strings.Contains(text, later) {
			t.Errorf("default.yaml does not say that %s arrives later", later)
		}
	}
	// The documented defaults are Defaults' values.
	var zero Config
	Defaults(&zero)
	if zero.MQTT.MaxPacketSize != c.MQTT.MaxPacketSize || zero.MQTT.ConnectTimeout != c.MQTT.ConnectTimeout ||
		zero.MQTT.MaxConnections != c.MQTT.MaxConnections || zero.MQTT.SessionExpiryMax != c.MQTT.SessionExpiryMax ||
		zero.MQTT.Retained != c.MQTT.Retained || zero.MQTT.WriteQueue != c.MQTT.WriteQueue ||
		zero.MQTT.ReceiveMax != c.MQTT.ReceiveMax || zero.MQTT.KeepaliveMax != c.MQTT.KeepaliveMax ||
		zero.Gateway.ShutdownTimeout != c.Gateway.ShutdownTimeout || zero.Gateway.DataDir != c.Gateway.DataDir ||
		zero.Log != c.Log || zero.HTTP.MQTTPath != c.HTTP.MQTTPath || zero.Admin != c.Admin || zero.Unroutable != c.Unroutable {
		t.Errorf("default.yaml and Defaults disagree:\n yaml:     %+v\n Defaults: %+v", c, zero)
	}
}

// implementedKeys lists the keys of this version, from the schema itself.
func implementedKeys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for name, f := range fieldsOf(t) {
			path := yamlfile.Join(prefix, name)
			if strings.HasPrefix(path, "amqp") || strings.HasPrefix(path, "queues") || strings.HasPrefix(path, "uplinks") ||
				strings.HasPrefix(path, "routes") || path == "auth.devices_file" || path == "http.amqp_path" {
				continue
			}
			ft := t.Field(f.index).Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != durationType {
				walk(path, ft)
				continue
			}
			keys = append(keys, path)
		}
	}
	walk("", reflect.TypeFor[Config]())
	slices.Sort(keys)
	return keys
}

// assertConfig compares everything but the source bookkeeping.
func assertConfig(t *testing.T, got, want *Config) {
	t.Helper()
	g, w := *got, *want
	g.origin, w.origin = nil, nil
	if !reflect.DeepEqual(g, w) {
		gy, _ := yaml.Marshal(&g)
		wy, _ := yaml.Marshal(&w)
		t.Errorf("config differs\n--- got:\n%s--- want:\n%s", gy, wy)
	}
}

func TestFullConfig(t *testing.T) {
	const file = "testdata/good/full.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(file, data, lookupTestEnv)
	if err != nil {
		t.Fatalf("full config:\n%v", err)
	}
	tlsDir := filepath.Join("testdata", "tls")
	want := &Config{
		Gateway: Gateway{ID: "edge-01", DataDir: filepath.Join("testdata", "good", "state"), ShutdownTimeout: 30 * time.Second},
		Log:     Log{Level: "debug", Format: "json"},
		MQTT: MQTT{
			Listen: ":1883",
			TLS: &TLS{Listen: "127.0.0.1:8883", Cert: filepath.Join(tlsDir, "server.crt"),
				Key: filepath.Join(tlsDir, "server.key"), ClientCA: filepath.Join(tlsDir, "ca.crt")},
			MaxPacketSize: 64 << 10, ConnectTimeout: 2 * time.Second, MaxConnections: 500,
			SessionExpiryMax: 7 * 24 * time.Hour, Retained: Retained{Max: 42}, WriteQueue: 64, ReceiveMax: 100,
			KeepaliveMax: 10 * time.Minute,
		},
		AMQP: AMQP{SASL: []string{"ANONYMOUS"}, PlainWithoutTLS: true, MaxConnections: 10000, MaxFrameSize: 64 << 10,
			MaxMessageSize: 16 << 20, IdleTimeout: 90 * time.Second, ContainerID: "amqp-container"},
		HTTP: HTTP{Listen: "[::1]:8443", TLS: &TLS{Cert: filepath.Join(tlsDir, "server.crt"), Key: filepath.Join(tlsDir, "server.key")},
			MQTTPath: "/ws/mqtt", AMQPPath: "/amqp", AllowedOrigins: []string{"https://dashboard.example", "http://localhost:3000"}},
		Admin:      Admin{Listen: ""},
		Auth:       Auth{Anonymous: true, Presence: Presence{MQTTTopic: "$SYS/edge-01/presence"}},
		Limits:     Limits{ConnectRate: 100, ConnectBurst: 20, PublishRate: 50, PublishBurst: 10, ConnectPacketSize: 16 << 10},
		Queues:     []Queue{},
		Uplinks:    []Uplink{},
		Routes:     []Route{},
		Unroutable: "reject",
		Source:     file,
	}
	assertConfig(t, c, want)
}

// TestRoundTrip: yaml.Marshal of a parsed Config is a config file that parses
// back to the same values.
func TestRoundTrip(t *testing.T) {
	for _, file := range []string{"testdata/good/full.yaml", "testdata/good/sub/relative.yaml", ""} {
		var c *Config
		var err error
		if file == "" {
			c, err = Load("")
		} else {
			data, _ := os.ReadFile(file)
			c, err = Parse(file, data, lookupTestEnv)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.Gateway.ID = "odd$id${X}$$-é"
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		// Paths were resolved against the first file's directory; the
		// second parse happens from the working directory.
		back, err := Parse("roundtrip.yaml", out, nil)
		if err != nil {
			t.Fatalf("%s: marshalled config does not parse:\n%v\n%s", file, err, out)
		}
		c.Source = "roundtrip.yaml"
		assertConfig(t, back, c)
	}
}

func TestDefaultsAbsentVersusWritten(t *testing.T) {
	// Left out: defaults. admin.listen is the only listener with one.
	c, err := Parse("min.yaml", []byte("auth: {anonymous: true}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.Listen != "" || c.HTTP.Listen != "" || c.MQTT.TLS != nil || c.HTTP.TLS != nil {
		t.Errorf("listeners left out must be off: mqtt %q http %q", c.MQTT.Listen, c.HTTP.Listen)
	}
	if c.Admin.Listen != DefaultAdminListen {
		t.Errorf("admin.listen = %q, want the default %q", c.Admin.Listen, DefaultAdminListen)
	}
	if c.Gateway.ID != hostname() || c.Gateway.DataDir != DefaultDataDir || c.MQTT.MaxConnections != DefaultMaxConnections {
		t.Errorf("defaults not applied: %+v", c)
	}
	// Written as "" or null.
	c, err = Parse("off.yaml", []byte("auth: {anonymous: true}\nadmin: {listen: \"\"}\nmqtt: {max_connections: ~}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Listen != "" {
		t.Errorf(`admin.listen: "" must turn it off, got %q`, c.Admin.Listen)
	}
	if c.MQTT.MaxConnections != DefaultMaxConnections {
		t.Errorf("a null value must count as absent, got %d", c.MQTT.MaxConnections)
	}
	// Written as zero: kept, and judged by Validate.
	_, err = Parse("zero.yaml", []byte("auth: {anonymous: true}\nmqtt: {max_connections: 0}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "mqtt.max_connections: must be at least 1") {
		t.Errorf("max_connections: 0 must be an error, got %v", err)
	}
	// A Config built in code: every zero field gets its default.
	var code Config
	code.Auth.Anonymous = true
	Defaults(&code)
	if code.Admin.Listen != DefaultAdminListen || code.MQTT.ReceiveMax != DefaultReceiveMax || code.Unroutable != "accept" {
		t.Errorf("Defaults on a code-built Config: %+v", code)
	}
	if err := code.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestValidateWithoutSource(t *testing.T) {
	c := Config{Source: "code"}
	Defaults(&c)
	c.MQTT.WriteQueue = 0
	err := c.Validate()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		"code: mqtt.write_queue: 0 is out of range: must be between 1 and 65535",
		"code: auth.anonymous: nobody could connect: set auth.devices_file to a devices file (docs/security.md), or auth.anonymous: true to let clients in without credentials",
	}
	var got []string
	for _, e := range errs {
		if e.Line != 0 || e.Col != 0 {
			t.Errorf("%v: a code-built Config has no positions", e)
		}
		got = append(got, e.Error())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRelativePaths(t *testing.T) {
	const file = "testdata/good/sub/relative.yaml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(file, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.ID != "edge-from-file" {
		t.Errorf("id_file: got %q (secret read relative to the file, trailing newline trimmed)", c.Gateway.ID)
	}
	if want := filepath.Join("testdata", "good", "sub", "data"); c.Gateway.DataDir != want {
		t.Errorf("data_dir = %q, want %q", c.Gateway.DataDir, want)
	}
	if want := filepath.Join("testdata", "tls", "server.crt"); c.MQTT.TLS.Cert != want {
		t.Errorf("cert = %q, want %q", c.MQTT.TLS.Cert, want)
	}

	// Absolute paths stay; an absolute config file name gives absolute paths.
	abs, _ := filepath.Abs(file)
	c, err = Parse(abs, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(abs), "data"); c.Gateway.DataDir != want {
		t.Errorf("data_dir = %q, want %q", c.Gateway.DataDir, want)
	}
	c, err = Parse(file, []byte("auth: {anonymous: true}\ngateway: {data_dir: /var/lib/isthmus}\n"), nil)
	if err != nil || c.Gateway.DataDir != "/var/lib/isthmus" {
		t.Errorf("absolute data_dir: %v %v", c, err)
	}
	// The embedded default keeps its relative paths: relative to the working directory.
	c, err = Load("")
	if err != nil || c.Gateway.DataDir != "./data" {
		t.Errorf("default data_dir: %v %v", c, err)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte("  spaced id kept \r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := "auth: {anonymous: true}\namqp:\n  container_id_file: id\n"
	c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AMQP.ContainerID != "  spaced id kept " {
		t.Errorf("container_id = %q", c.AMQP.ContainerID)
	}
	// A path that is not a regular file is refused instead of read.
	_, err = Parse(filepath.Join(dir, "c.yaml"), []byte("auth: {anonymous: true}\namqp:\n  container_id_file: /dev/zero\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "amqp.container_id_file: cannot read /dev/zero: not a regular file") {
		t.Errorf("/dev/zero: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	c, err := Load("testdata/good/sub/relative.yaml")
	if err != nil || c.Source != "testdata/good/sub/relative.yaml" {
		t.Fatalf("Load: %v %v", c, err)
	}
	_, err = Load("testdata/nope.yaml")
	if err == nil || err.Error() != "cannot read testdata/nope.yaml: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error does not wrap os.ErrNotExist: %v", err)
	}
}

func TestEmptyInputs(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		_, err := Parse("e.yaml", []byte(in), nil)
		errs := checkErrors(t, "e.yaml", []byte(in), err)
		if len(errs) != 1 || errs[0].Path != "auth.anonymous" {
			t.Errorf("%q: want only the auth.anonymous error, got\n%v", in, err)
		}
	}
	if !bytes.Equal(DefaultYAML(), defaultYAML) {
		t.Error("DefaultYAML differs from the embedded text")
	}
	DefaultYAML()[0] = 'X'
	if defaultYAML[0] == 'X' {
		t.Error("DefaultYAML returns the embedded slice itself")
	}
}
