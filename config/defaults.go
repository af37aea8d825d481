package config

import (
	"os"
	"time"
)

// Default values, also written in default.yaml (a test keeps the two equal).
const (
	DefaultDataDir          = "./data"
	DefaultShutdownTimeout  = 10 * time.Second
	DefaultMaxPacketSize    = Size(1 << 20)
	DefaultConnectTimeout   = 5 * time.Second
	DefaultMaxConnections   = 10000
	DefaultSessionExpiryMax = 24 * time.Hour
	DefaultRetainedMax      = 10000
	DefaultWriteQueue       = 128
	DefaultReceiveMax       = 1024
	DefaultMQTTPath         = "/mqtt"
	DefaultAMQPPath         = "/amqp"
	DefaultMaxFrameSize     = Size(64 << 10)
	DefaultMaxMessageSize   = Size(16 << 20)
	DefaultIdleTimeout      = 60 * time.Second
	DefaultAdminListen      = "127.0.0.1:8081"
	DefaultUnroutable       = "accept"
	DefaultLogLevel         = "info"
	DefaultPresenceAddress  = "$events/presence"
	DefaultPresenceTopic    = "$SYS/isthmus/presence"
	DefaultConnectRate      = 500
	DefaultConnectPacket    = Size(64 << 10)
)

// Defaults fills in every default, in this one place (SPEC §3). For a Config
// from Parse, a key that the file does not contain gets its default and a key
// written with a value keeps it, even a zero value, which Validate then judges
// (`max_connections: 0` is an error, not 10000). For a Config built in code,
// every zero field gets its default.
//
// Listen addresses have no default, so a listener the file does not mention is
// off, with one exception: admin.listen defaults to 127.0.0.1:8081 (write
// `listen: ""` to turn it off). data_dir's default ./data is relative to the
// working directory, not to the config file.
func Defaults(c *Config) {
	unset := func(path string, zero bool) bool { return zero && !c.origin.present(path) }
	if unset("gateway.id", c.Gateway.ID == "") {
		c.Gateway.ID = hostname()
	}
	if unset("gateway.data_dir", c.Gateway.DataDir == "") {
		c.Gateway.DataDir = DefaultDataDir
	}
	if unset("gateway.shutdown_timeout", c.Gateway.ShutdownTimeout == 0) {
		c.Gateway.ShutdownTimeout = DefaultShutdownTimeout
	}
	if unset("log.level", c.Log.Level == "") {
		c.Log.Level = DefaultLogLevel
	}
	m := &c.MQTT
	if unset("mqtt.max_packet_size", m.MaxPacketSize == 0) {
		m.MaxPacketSize = DefaultMaxPacketSize
	}
	if unset("mqtt.connect_timeout", m.ConnectTimeout == 0) {
		m.ConnectTimeout = DefaultConnectTimeout
	}
	if unset("mqtt.max_connections", m.MaxConnections == 0) {
		m.MaxConnections = DefaultMaxConnections
	}
	if unset("mqtt.session_expiry_max", m.SessionExpiryMax == 0) {
		m.SessionExpiryMax = DefaultSessionExpiryMax
	}
	if unset("mqtt.retained.max", m.Retained.Max == 0) {
		m.Retained.Max = DefaultRetainedMax
	}
	if unset("mqtt.write_queue", m.WriteQueue == 0) {
		m.WriteQueue = DefaultWriteQueue
	}
	if unset("mqtt.receive_max", m.ReceiveMax == 0) {
		m.ReceiveMax = DefaultReceiveMax
	}
	if unset("http.mqtt_path", c.HTTP.MQTTPath == "") {
		c.HTTP.MQTTPath = DefaultMQTTPath
	}
	a := &c.AMQP
	if unset("amqp.max_frame_size", a.MaxFrameSize == 0) {
		a.MaxFrameSize = DefaultMaxFrameSize
	}
	if unset("amqp.max_message_size", a.MaxMessageSize == 0) {
		a.MaxMessageSize = DefaultMaxMessageSize
	}
	if unset("amqp.max_connections", a.MaxConnections == 0) {
		a.MaxConnections = DefaultMaxConnections
	}
	if unset("amqp.idle_timeout", a.IdleTimeout == 0) {
		a.IdleTimeout = DefaultIdleTimeout
	}
	if unset("http.amqp_path", c.HTTP.AMQPPath == "") {
		c.HTTP.AMQPPath = DefaultAMQPPath
	}
	if unset("admin.listen", c.Admin.Listen == "") {
		c.Admin.Listen = DefaultAdminListen
	}
	if unset("auth.presence.amqp_address", c.Auth.Presence.AMQPAddress == "") {
		c.Auth.Presence.AMQPAddress = DefaultPresenceAddress
	}
	if unset("auth.presence.mqtt_topic", c.Auth.Presence.MQTTTopic == "") {
		c.Auth.Presence.MQTTTopic = DefaultPresenceTopic
	}
	l := &c.Limits
	if unset("limits.connect_rate", l.ConnectRate == 0) {
		l.ConnectRate = DefaultConnectRate
	}
	if unset("limits.connect_burst", l.ConnectBurst == 0) {
		l.ConnectBurst = l.ConnectRate
	}
	if unset("limits.publish_burst", l.PublishBurst == 0) {
		l.PublishBurst = l.PublishRate
	}
	if unset("limits.connect_packet_size", l.ConnectPacketSize == 0) {
		l.ConnectPacketSize = DefaultConnectPacket
	}
	if unset("unroutable", c.Unroutable == "") {
		c.Unroutable = DefaultUnroutable
	}
}

// hostname is gateway.id's default. A machine without a usable hostname still
// gets a valid id.
func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "isthmus"
}
