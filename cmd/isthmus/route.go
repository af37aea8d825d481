package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/isthmus-iot/isthmus/config"
	"github.com/isthmus-iot/isthmus/gateway"
	"github.com/isthmus-iot/isthmus/mapping"
)

// routeFlags are the flags of `isthmus route`.
type routeFlags struct {
	mqtt, amqp, clientID, identity string
	qos                            int
	settled                        bool
}

func (f *routeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.mqtt, "mqtt", "", "an MQTT topic a device publishes to")
	fs.StringVar(&f.amqp, "amqp", "", "an AMQP address a message is sent to")
	fs.IntVar(&f.qos, "qos", 1, "the MQTT publish's QoS (0, 1 or 2)")
	fs.BoolVar(&f.settled, "settled", false, "the AMQP transfer is pre-settled")
	fs.StringVar(&f.clientID, "client-id", "client-1", "the sender's MQTT client id or AMQP container-id ({client-id})")
	fs.StringVar(&f.identity, "identity", "", "the sender's authenticated identity ({identity}); empty for anonymous")
}

// route is the dry run of SPEC §2: which routes a message matches, and the
// address, delivery and properties each gives it. Nothing is bound or sent.
func route(path string, f *routeFlags, stdout, stderr io.Writer) error {
	if (f.mqtt == "") == (f.amqp == "") {
		return usageError(stderr, "route needs exactly one of --mqtt TOPIC or --amqp ADDRESS")
	}
	if f.qos < 0 || f.qos > 2 {
		return usageError(stderr, "--qos %d: use 0, 1 or 2", f.qos)
	}
	cfg, err := config.Load(path)
	var router *mapping.Router
	if err == nil {
		router, err = gateway.CompileRoutes(cfg)
	}
	if err != nil {
		printConfigError(stderr, err)
		return exitError{1}
	}
	p := mapping.Probe{From: mapping.KindMQTT, Name: f.mqtt, QoS: byte(f.qos), ClientID: f.clientID, Identity: f.identity}
	if f.amqp != "" {
		p = mapping.Probe{From: mapping.KindAMQP, Name: f.amqp, Settled: f.settled, ClientID: f.clientID, Identity: f.identity}
	}
	fmt.Fprint(stdout, router.Explain(p).String())
	return nil
}
