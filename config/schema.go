package config

import "time"

// Config is the whole configuration file (SPEC §3). A *Config returned by Load
// has its defaults applied and has passed Validate; treat it as immutable: a
// reload builds a new one.
type Config struct {
	Gateway    Gateway  `yaml:"gateway"`
	Log        Log      `yaml:"log"`
	MQTT       MQTT     `yaml:"mqtt"`
	AMQP       AMQP     `yaml:"amqp"`
	HTTP       HTTP     `yaml:"http"`
	Admin      Admin    `yaml:"admin"`
	Auth       Auth     `yaml:"auth"`
	Limits     Limits   `yaml:"limits"`
	Queues     []Queue  `yaml:"queues"`
	Uplinks    []Uplink `yaml:"uplinks"`
	Routes     []Route  `yaml:"routes"`
	Unroutable string   `yaml:"unroutable"` // accept | release | reject; default accept

	// Source is the file the config came from ("<default>" for the embedded one).
	Source string `yaml:"-"`

	// origin holds the source positions and which keys were written, for
	// Defaults and Validate; nil for a Config built in code.
	origin *origin
}

// Gateway holds process-wide settings.
type Gateway struct {
	ID              string        `yaml:"id"`               // default: hostname
	DataDir         string        `yaml:"data_dir"`         // default: ./data (working directory); written relative: to the config file
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"` // default: 10s
}

// Log selects the log level and format. Command-line flags override it.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error; default info
	Format string `yaml:"format"` // text | json; default: text on a TTY, json otherwise ("" = auto)
}

// TLS is a TLS listener or endpoint. ClientCA enables mutual TLS on listeners.
// Relative Cert, Key and ClientCA paths in a file are relative to the file's
// directory; Parse returns them joined to it.
type TLS struct {
	Listen   string `yaml:"listen"`
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// Retained bounds the retained-message store.
type Retained struct {
	Max int `yaml:"max"` // default 10000
}

// MQTT configures the embedded broker's listeners and limits.
type MQTT struct {
	Listen           string        `yaml:"listen"`             // "" or absent disables (no default)
	TLS              *TLS          `yaml:"tls"`                // nil disables
	MaxPacketSize    Size          `yaml:"max_packet_size"`    // default 1MiB
	ConnectTimeout   time.Duration `yaml:"connect_timeout"`    // default 5s
	MaxConnections   int           `yaml:"max_connections"`    // default 10000
	SessionExpiryMax time.Duration `yaml:"session_expiry_max"` // default 24h
	Retained         Retained      `yaml:"retained"`
	WriteQueue       int           `yaml:"write_queue"`   // packets pending to one client; beyond it new messages to it are dropped; default 128
	ReceiveMax       int           `yaml:"receive_max"`   // MQTT 5 receive maximum (inflight QoS>0 per client); default 1024
	KeepaliveMax     time.Duration `yaml:"keepalive_max"` // upper bound granted to MQTT 5 clients; default 0 = client's value
}

// AMQP configures the AMQP 1.0 server role (not implemented yet: issue 4/5).
type AMQP struct {
	Listen          string        `yaml:"listen"`
	TLS             *TLS          `yaml:"tls"`
	SASL            []string      `yaml:"sasl"`
	PlainWithoutTLS bool          `yaml:"plain_without_tls"`
	MaxConnections  int           `yaml:"max_connections"` // default 10000
	MaxFrameSize    Size          `yaml:"max_frame_size"`
	MaxMessageSize  Size          `yaml:"max_message_size"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	ContainerID     string        `yaml:"container_id"`
}

// HTTP is the device-facing WebSocket endpoint.
type HTTP struct {
	Listen         string   `yaml:"listen"`          // "" disables
	TLS            *TLS     `yaml:"tls"`             // cert/key (client_ca optional); listen is unused here
	MQTTPath       string   `yaml:"mqtt_path"`       // default /mqtt
	AMQPPath       string   `yaml:"amqp_path"`       // not supported yet: must be empty (no default until AMQP exists)
	AllowedOrigins []string `yaml:"allowed_origins"` // empty: same-origin and non-browser clients only
}

// Admin is the operator endpoint.
type Admin struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:8081; "" disables
}

// Auth selects how clients authenticate (SPEC §7, docs/security.md).
type Auth struct {
	Anonymous   bool     `yaml:"anonymous"`    // clients without credentials may connect; default false
	DevicesFile string   `yaml:"devices_file"` // identities, credentials, ACLs; relative to the config file
	Presence    Presence `yaml:"presence"`
}

// Presence names where connect and disconnect events are published. An empty
// value written in the file turns that side off.
type Presence struct {
	AMQPAddress string `yaml:"amqp_address"` // default $events/presence
	MQTTTopic   string `yaml:"mqtt_topic"`   // default $SYS/isthmus/presence; events go to <mqtt_topic>/<id>
}

// Limits protect the gateway from floods (SPEC §4, §7). Rates are per second.
type Limits struct {
	ConnectRate       int  `yaml:"connect_rate"`        // new connections per listener; default 500; 0 = unlimited
	ConnectBurst      int  `yaml:"connect_burst"`       // default: connect_rate
	PublishRate       int  `yaml:"publish_rate"`        // messages from one MQTT client or AMQP connection; default 0 = unlimited
	PublishBurst      int  `yaml:"publish_burst"`       // default: publish_rate
	ConnectPacketSize Size `yaml:"connect_packet_size"` // largest MQTT CONNECT (read before authentication); default 64KiB
}

// Queue is an AMQP node (SPEC §5.2; not implemented yet).
type Queue struct {
	Name        string        `yaml:"name"`
	Match       string        `yaml:"match"`
	Durable     bool          `yaml:"durable"`
	MaxMessages int           `yaml:"max_messages"`
	MaxBytes    Size          `yaml:"max_bytes"`
	Overflow    string        `yaml:"overflow"`
	TTL         time.Duration `yaml:"ttl"`
	AutoDelete  time.Duration `yaml:"auto_delete"`
}

// Uplink is an outgoing AMQP connection (SPEC §6; not implemented yet).
type Uplink struct {
	Name      string         `yaml:"name"`
	URL       string         `yaml:"url"`
	SASL      map[string]any `yaml:"sasl"`
	TLS       map[string]any `yaml:"tls"`
	Reconnect map[string]any `yaml:"reconnect"`
	Buffer    map[string]any `yaml:"buffer"`
}

// Route carries messages between the spaces (SPEC §5.3; not implemented yet).
type Route struct {
	Name                  string            `yaml:"name"`
	From                  map[string]any    `yaml:"from"`
	To                    map[string]any    `yaml:"to"`
	Delivery              string            `yaml:"delivery"`
	Properties            map[string]string `yaml:"properties"`
	ApplicationProperties map[string]string `yaml:"application-properties"`
	RequireSubscriber     bool              `yaml:"require_subscriber"`
}

// Size is a byte count written as 1048576, "512KiB", "1MiB", "2GiB" (also KB/MB/GB as powers of 1000, and B).
// See ParseSize and Size.String.
type Size int64
