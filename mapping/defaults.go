package mapping

// Names of the transparent default routes.
const (
	DefaultMQTTToAMQP = "default-mqtt-to-amqp"
	DefaultAMQPToMQTT = "default-amqp-to-mqtt"
)

// DefaultRoutes returns the transparent routes of local mode (SPEC §5.5), in the form a
// configuration file would give them:
//
//	routes:
//	  - name: default-mqtt-to-amqp
//	    from: {mqtt: "#"}
//	    to:   {amqp: "{topic}"}
//	  - name: default-amqp-to-mqtt
//	    from: {amqp: "#", queues: false}
//	    to:   {mqtt: "{address}"}
//
// Every MQTT topic T reaches the AMQP topic address T (and so every AMQP receiver whose source
// filter matches T), and every AMQP address A that is not a queue reaches the MQTT topic A, with
// the sender's delivery guarantee (delivery: auto) and retain flag. `#` does not match names
// starting with $ ([MQTT-4.7.2-1]), so $SYS and the gateway's own $ addresses stay apart. The
// gateway routes a message at most once: what a route publishes is not routed again, so the two
// routes do not loop. Each call returns new maps; convert with config.Route(r) where the
// configuration needs them.
func DefaultRoutes() []RouteConfig {
	return []RouteConfig{
		{
			Name:     DefaultMQTTToAMQP,
			From:     map[string]any{"mqtt": "#"},
			To:       map[string]any{"amqp": "{topic}"},
			Delivery: "auto",
		},
		{
			Name:     DefaultAMQPToMQTT,
			From:     map[string]any{"amqp": "#", "queues": false},
			To:       map[string]any{"mqtt": "{address}"},
			Delivery: "auto",
		},
	}
}
