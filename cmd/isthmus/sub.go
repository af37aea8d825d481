package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/encoding"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

const subUsage = `Usage: isthmus sub --url URL --topic FILTER | --address A [flags]

Prints one line per message: TOPIC PAYLOAD, or a JSON object with --json.
Once subscribed it prints "subscribed to ..." on stderr. Exits 0 after
--count messages, 1 when --timeout passes first.

URL forms: ` + supportedSchemes + `

Flags:
`

// received is one message as sub prints it with --json.
type received struct {
	Topic         string         `json:"topic"`
	Payload       string         `json:"payload,omitempty"`
	PayloadBase64 string         `json:"payload_base64,omitempty"`
	QoS           *int           `json:"qos,omitempty"`
	Retain        bool           `json:"retain,omitempty"`
	Duplicate     bool           `json:"dup,omitempty"`
	Properties    map[string]any `json:"properties,omitempty"`
	AppProps      map[string]any `json:"application_properties,omitempty"`
	Annotations   map[string]any `json:"annotations,omitempty"`
	body          []byte
}

func (r *received) setPayload(b []byte) {
	r.body = b
	if utf8.Valid(b) {
		r.Payload = string(b)
	} else {
		r.PayloadBase64 = base64.StdEncoding.EncodeToString(b)
	}
}

func subCmd(args []string, stdout, stderr io.Writer) error {
	const cmd = "isthmus sub"
	var o clientOpts
	var rawURL, topic, address string
	var qos, count int
	var timeout time.Duration
	var asJSON bool
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	o.register(fs)
	fs.StringVar(&rawURL, "url", "", "broker URL (see above)")
	fs.StringVar(&topic, "topic", "", "MQTT topic filter, or AMQP source address")
	fs.StringVar(&address, "address", "", "AMQP source address (a topic filter on isthmus), or MQTT filter")
	fs.IntVar(&qos, "qos", 1, "MQTT subscription QoS 0, 1 or 2")
	fs.IntVar(&count, "count", 0, "exit after this many messages (0: run until interrupted)")
	fs.DurationVar(&timeout, "timeout", 0, "give up after this long (0: no limit)")
	fs.BoolVar(&asJSON, "json", false, "print each message as JSON with its properties and annotations")
	if err := parseFlags(fs, args, subUsage, stderr); err != nil {
		return err
	}
	ep, err := parseEndpoint(rawURL)
	if err != nil {
		return toolError(stderr, cmd, err)
	}
	name := topic
	if name == "" {
		name = address
	}
	switch {
	case topic != "" && address != "":
		return toolUsage(stderr, cmd, "give --topic or --address, not both")
	case name == "":
		return toolUsage(stderr, cmd, "--topic (MQTT) or --address (AMQP) is required")
	case qos < 0 || qos > 2:
		return toolUsage(stderr, cmd, "--qos must be 0, 1 or 2")
	case count < 0:
		return toolUsage(stderr, cmd, "--count must not be negative")
	}
	if o.clientID == "" {
		o.clientID = randomID("isthmus-sub")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	// print reports whether more messages are wanted.
	print := func(r *received) bool {
		mu.Lock()
		defer mu.Unlock()
		if count > 0 && n >= count {
			return false
		}
		n++
		if asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintf(stdout, "%s %s\n", r.Topic, r.body)
		}
		if count > 0 && n == count {
			close(done)
			return false
		}
		return true
	}
	finish := func() error {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			if count > 0 && timeout > 0 && ctx.Err() == context.DeadlineExceeded {
				fmt.Fprintf(stderr, "%s: timeout after %v: %d of %d messages\n", cmd, timeout, n, count)
				return exitError{1}
			}
			return nil
		}
	}

	if ep.proto == protoMQTT {
		c, err := dialMQTT(ctx, ep, &o, func(opts *paho.ClientOptions) {
			opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
				fmt.Fprintf(stderr, "%s: connection lost: %v\n", cmd, err)
				stop()
			})
		})
		if err != nil {
			return toolError(stderr, cmd, err)
		}
		defer c.Disconnect(250)
		tok := c.Subscribe(name, byte(qos), func(_ paho.Client, m paho.Message) {
			q := int(m.Qos())
			r := &received{Topic: m.Topic(), QoS: &q, Retain: m.Retained(), Duplicate: m.Duplicate()}
			r.setPayload(m.Payload())
			print(r)
		})
		if !tok.WaitTimeout(15 * time.Second) {
			return toolError(stderr, cmd, fmt.Errorf("no SUBACK for %q in 15s", name))
		}
		if err := tok.Error(); err != nil {
			return toolError(stderr, cmd, fmt.Errorf("subscribe %q: %w", name, err))
		}
		if st, ok := tok.(*paho.SubscribeToken); ok {
			if g := st.Result()[name]; g == 0x80 {
				return toolError(stderr, cmd, fmt.Errorf("the broker refused the subscription to %q (SUBACK 0x80)", name))
			}
		}
		fmt.Fprintf(stderr, "%s: subscribed to %s on %s\n", cmd, name, ep.raw)
		return finish()
	}

	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := dialAMQP(dctx, ep, &o)
	if err != nil {
		return toolError(stderr, cmd, err)
	}
	defer c.Close()
	s, err := c.NewSession(dctx, nil)
	if err != nil {
		return toolError(stderr, cmd, fmt.Errorf("begin session: %w", err))
	}
	rcv, err := s.NewReceiver(dctx, name, &amqp.ReceiverOptions{Credit: 100})
	if err != nil {
		return toolError(stderr, cmd, fmt.Errorf("attach receiver to %q: %w", name, err))
	}
	fmt.Fprintf(stderr, "%s: subscribed to %s on %s\n", cmd, name, ep.raw)
	go func() {
		for {
			d, err := rcv.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
					stop()
				}
				return
			}
			m, err := d.Message()
			if err != nil {
				fmt.Fprintf(stderr, "%s: undecodable message: %v\n", cmd, err)
				_ = d.Reject(ctx, &amqp.Error{Condition: frames.CondDecodeError, Description: err.Error()})
				continue
			}
			more := print(amqpReceived(name, m))
			if !d.SenderSettled() {
				_ = d.Accept(ctx)
			}
			if !more {
				return
			}
		}
	}()
	return finish()
}

// amqpReceived flattens an AMQP message for printing. The topic is the
// x-opt-mqtt-topic annotation (messages from MQTT), else properties.to, else
// the link's address.
func amqpReceived(linkAddr string, m *frames.Message) *received {
	r := &received{Topic: linkAddr}
	if m.Properties != nil {
		if to, ok := m.Properties.To.Get(); ok && to != "" {
			r.Topic = to
		}
	}
	if v, ok := m.MessageAnnotations.Get(encoding.Symbol("x-opt-mqtt-topic")); ok {
		if s, ok := v.(string); ok {
			r.Topic = s
		}
	}
	var body []byte
	switch {
	case len(m.Data) > 0:
		for _, d := range m.Data {
			body = append(body, d...)
		}
	case m.Value != nil:
		if s, ok := m.Value.(string); ok {
			body = []byte(s)
		} else {
			body = []byte(fmt.Sprint(m.Value))
		}
	}
	r.setPayload(body)
	r.Annotations = jsonMap(m.MessageAnnotations)
	r.AppProps = jsonMap(m.ApplicationProperties)
	if p := m.Properties; p != nil {
		props := map[string]any{}
		if p.MessageID != nil {
			props["message-id"] = jsonValue(p.MessageID)
		}
		if len(p.UserID) > 0 {
			props["user-id"] = string(p.UserID)
		}
		if v, ok := p.To.Get(); ok {
			props["to"] = v
		}
		if v, ok := p.Subject.Get(); ok {
			props["subject"] = v
		}
		if v, ok := p.ReplyTo.Get(); ok {
			props["reply-to"] = v
		}
		if p.CorrelationID != nil {
			props["correlation-id"] = jsonValue(p.CorrelationID)
		}
		if v, ok := p.ContentType.Get(); ok {
			props["content-type"] = string(v)
		}
		if v, ok := p.CreationTime.Get(); ok {
			props["creation-time"] = time.UnixMilli(int64(v)).UTC().Format(time.RFC3339Nano)
		}
		if len(props) > 0 {
			r.Properties = props
		}
	}
	return r
}

func jsonMap(m encoding.Map) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for _, e := range m {
		out[fmt.Sprint(e.Key)] = jsonValue(e.Value)
	}
	return out
}

// jsonValue makes AMQP values JSON-friendly: binary becomes text when it is
// UTF-8, symbols and other named types their plain form.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return base64.StdEncoding.EncodeToString(x)
	case encoding.Symbol:
		return string(x)
	case encoding.Map:
		return jsonMap(x)
	case string, bool, nil, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64:
		return x
	default:
		return fmt.Sprint(x)
	}
}
