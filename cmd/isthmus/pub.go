package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/encoding"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

const pubUsage = `Usage: isthmus pub --url URL --topic T | --address A [flags]

Publishes --count messages and reports each outcome: for AMQP the
disposition (accepted, rejected with its condition, released, modified), for
MQTT at QoS 1 or 2 the broker's acknowledgement. Exit 1 if any was refused.

URL forms: ` + supportedSchemes + `

Flags:
`

// commonFlags registers the connection flags pub, sub and bench share.
func (o *clientOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.username, "username", "", "user name (MQTT CONNECT, AMQP SASL PLAIN); also from the URL's user info")
	fs.StringVar(&o.password, "password", "", "password")
	fs.StringVar(&o.cacert, "cacert", "", "PEM file of CA certificates to verify the server with (mqtts, amqps, wss)")
	fs.BoolVar(&o.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fs.StringVar(&o.clientID, "client-id", "", "MQTT client id / AMQP container id (default: random)")
}

// parseFlags parses a tool's flags: -h prints the usage and exits 0, a bad
// flag exits 2.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{0}
		}
		return exitError{2}
	}
	if fs.NArg() > 0 {
		return toolUsage(stderr, fs.Name(), "unexpected arguments %q (the message goes in --message)", fs.Args())
	}
	return nil
}

func toolUsage(stderr io.Writer, cmd, format string, a ...any) error {
	fmt.Fprintf(stderr, "%s: %s\nRun '%s -h' for the flags.\n", cmd, fmt.Sprintf(format, a...), cmd)
	return exitError{2}
}

// toolError prints err for cmd and maps usage mistakes to exit 2.
func toolError(stderr io.Writer, cmd string, err error) error {
	var ue usageErr
	if errors.As(err, &ue) {
		return toolUsage(stderr, cmd, "%s", ue.msg)
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
	return exitError{1}
}

type pubFlags struct {
	clientOpts
	url, topic, address string
	qos                 int
	settled, retain     bool
	count               int
	interval            time.Duration
	message, file       string
	contentType         string
	props               multiFlag
}

func pubCmd(args []string, stdout, stderr io.Writer) error {
	const cmd = "isthmus pub"
	f := &pubFlags{}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f.clientOpts.register(fs)
	fs.StringVar(&f.url, "url", "", "broker URL (see above)")
	fs.StringVar(&f.topic, "topic", "", "MQTT topic, or AMQP target address")
	fs.StringVar(&f.address, "address", "", "AMQP target address, or MQTT topic")
	fs.IntVar(&f.qos, "qos", 1, "MQTT QoS 0, 1 or 2")
	fs.BoolVar(&f.settled, "settled", false, "AMQP: send pre-settled (at-most-once, no outcome)")
	fs.IntVar(&f.count, "count", 1, "number of messages")
	fs.DurationVar(&f.interval, "interval", 0, "pause between messages")
	fs.StringVar(&f.message, "message", "", "payload text (default: \"hello\" + the message number when --count > 1)")
	fs.StringVar(&f.file, "file", "", "read the payload from this file (- for stdin)")
	fs.BoolVar(&f.retain, "retain", false, "MQTT retain flag (AMQP: annotation x-opt-retain)")
	fs.StringVar(&f.contentType, "content-type", "", "AMQP properties.content-type")
	fs.Var(&f.props, "property", "AMQP application property K=V (repeatable)")
	if err := parseFlags(fs, args, pubUsage, stderr); err != nil {
		return err
	}
	ep, err := parseEndpoint(f.url)
	if err != nil {
		return toolError(stderr, cmd, err)
	}
	name := f.topic
	if name == "" {
		name = f.address
	}
	switch {
	case f.topic != "" && f.address != "":
		return toolUsage(stderr, cmd, "give --topic or --address, not both")
	case name == "":
		return toolUsage(stderr, cmd, "--topic (MQTT) or --address (AMQP) is required")
	case strings.ContainsAny(name, "+#"):
		return toolUsage(stderr, cmd, "cannot publish to the filter %q: wildcards are for sub", name)
	case f.qos < 0 || f.qos > 2:
		return toolUsage(stderr, cmd, "--qos must be 0, 1 or 2")
	case f.count < 1:
		return toolUsage(stderr, cmd, "--count must be at least 1")
	case f.message != "" && f.file != "":
		return toolUsage(stderr, cmd, "give --message or --file, not both")
	case ep.proto == protoMQTT && (len(f.props) > 0 || f.contentType != ""):
		return toolUsage(stderr, cmd, "--property and --content-type need AMQP: MQTT 3.1.1 has no message properties")
	}
	appProps := encoding.Map{}
	for _, p := range f.props {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return toolUsage(stderr, cmd, "--property %q: want KEY=VALUE", p)
		}
		appProps = append(appProps, encoding.MapEntry{Key: k, Value: v})
	}
	var fixed []byte
	switch {
	case f.file == "-":
		fixed, err = io.ReadAll(os.Stdin)
	case f.file != "":
		fixed, err = os.ReadFile(f.file)
	case f.message != "":
		fixed = []byte(f.message)
	}
	if err != nil {
		return toolError(stderr, cmd, err)
	}
	payload := func(i int) []byte {
		if fixed != nil || f.file != "" {
			return fixed
		}
		if f.count == 1 {
			return []byte("hello")
		}
		return []byte(fmt.Sprintf("hello %d", i))
	}
	if f.clientID == "" {
		f.clientID = randomID("isthmus-pub")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	refused := 0
	report := func(i int, outcome string, ok bool) {
		if !ok {
			refused++
		}
		fmt.Fprintf(stdout, "%d %s %s\n", i, name, outcome)
	}
	pause := func(i int) bool {
		if f.interval <= 0 || i == f.count {
			return true
		}
		select {
		case <-time.After(f.interval):
			return true
		case <-ctx.Done():
			return false
		}
	}
	if ep.proto == protoMQTT {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c, err := dialMQTT(dctx, ep, &f.clientOpts, nil)
		cancel()
		if err != nil {
			return toolError(stderr, cmd, err)
		}
		defer c.Disconnect(250)
		for i := 1; i <= f.count; i++ {
			tok := c.Publish(name, byte(f.qos), f.retain, payload(i))
			if !tok.WaitTimeout(30 * time.Second) {
				report(i, "no acknowledgement in 30s", false)
			} else if err := tok.Error(); err != nil {
				// MQTT 3.1.1 has no negative ack: a broker refuses by
				// closing the connection.
				report(i, "refused: "+err.Error(), false)
				break
			} else {
				report(i, map[int]string{0: "sent (QoS 0, no acknowledgement)", 1: "acknowledged (PUBACK)", 2: "acknowledged (PUBREC/PUBCOMP)"}[f.qos], true)
			}
			if !pause(i) {
				break
			}
		}
	} else {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		c, err := dialAMQP(dctx, ep, &f.clientOpts)
		if err != nil {
			return toolError(stderr, cmd, err)
		}
		defer c.Close()
		s, err := c.NewSession(dctx, nil)
		if err != nil {
			return toolError(stderr, cmd, fmt.Errorf("begin session: %w", err))
		}
		snd, err := s.NewSender(dctx, name, nil)
		if err != nil {
			return toolError(stderr, cmd, fmt.Errorf("attach sender to %q: %w", name, err))
		}
		for i := 1; i <= f.count; i++ {
			msg := &frames.Message{Data: [][]byte{payload(i)}}
			if f.contentType != "" {
				msg.Properties = &frames.MessageProperties{ContentType: frames.Some(frames.Symbol(f.contentType))}
			}
			if len(appProps) > 0 {
				msg.ApplicationProperties = appProps
			}
			if f.retain {
				msg.MessageAnnotations = frames.Annotations{{Key: encoding.Symbol("x-opt-retain"), Value: true}}
			}
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			state, err := snd.Send(sctx, msg, &amqp.SendOptions{Settled: f.settled})
			cancel()
			switch {
			case err != nil:
				report(i, "failed: "+err.Error(), false)
			case f.settled:
				report(i, "sent (pre-settled, no outcome)", true)
			default:
				out, ok := describeOutcome(state)
				report(i, out, ok)
			}
			if err != nil || !pause(i) {
				break
			}
		}
	}
	if refused > 0 {
		fmt.Fprintf(stderr, "%s: %d of %d messages not accepted\n", cmd, refused, f.count)
		return exitError{1}
	}
	return nil
}

// describeOutcome renders an AMQP delivery state; ok only for accepted.
func describeOutcome(state frames.DeliveryState) (string, bool) {
	switch s := state.(type) {
	case *frames.Accepted:
		return "accepted", true
	case *frames.Rejected:
		if s.Error == nil {
			return "rejected", false
		}
		out := "rejected: " + string(s.Error.Condition)
		if d, ok := s.Error.Description.Get(); ok && d != "" {
			out += ": " + d
		}
		return out, false
	case *frames.Released:
		return "released", false
	case *frames.Modified:
		return "modified", false
	case nil:
		return "settled without outcome", false
	default:
		return fmt.Sprintf("%T", state), false
	}
}
