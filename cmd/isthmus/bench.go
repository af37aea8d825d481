package main

import (
	"context"
	bin "encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/isthmus-iot/isthmus/amqp"
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

const benchUsage = `Usage: isthmus bench --mode mqtt-to-amqp|amqp-to-mqtt|mqtt-to-mqtt --mqtt URL [--amqp URL] [flags]

Every message carries its publisher, a sequence number and its send time in
its first 20 bytes (padded to --size). The receiving side measures end-to-end
latency and counts missing and duplicate sequence numbers. Progress goes to
stderr every second, the result table to stdout.

Publisher i sends to topic PREFIX/pI; the receiver subscribes to PREFIX/#
(MQTT) or attaches to the --amqp-address form of it (AMQP).

Flags:
`

// benchHeader is the size of the payload's header: publisher (4 bytes),
// sequence (8), send time in Unix nanoseconds (8), big-endian.
const benchHeader = 20

type benchFlags struct {
	clientOpts
	mqttURL, amqpURL, mode string
	publishers, qos, size  int
	rate                   float64
	duration               time.Duration
	count                  int
	credit                 int
	settled                bool
	prefix                 string
	amqpAddress, amqpSep   string
	inflight               int
	wait                   time.Duration
}

// benchStats is the receiver's bookkeeping.
type benchStats struct {
	mu        sync.Mutex
	seen      [][]bool // per publisher, by sequence number
	unique    int
	dups      int
	bad       int
	latencies []int64 // nanoseconds
	lastRecv  time.Time
}

func (s *benchStats) record(payload []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(payload) < benchHeader {
		s.bad++
		return
	}
	pub := int(bin.BigEndian.Uint32(payload))
	seq := bin.BigEndian.Uint64(payload[4:])
	sent := int64(bin.BigEndian.Uint64(payload[12:]))
	if pub >= len(s.seen) || seq > 1<<32 {
		s.bad++
		return
	}
	for uint64(len(s.seen[pub])) <= seq {
		s.seen[pub] = append(s.seen[pub], make([]bool, len(s.seen[pub])+1024)...)
	}
	if s.seen[pub][seq] {
		s.dups++
		return
	}
	s.seen[pub][seq] = true
	s.unique++
	s.lastRecv = now
	s.latencies = append(s.latencies, now.UnixNano()-sent)
}

func (s *benchStats) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unique
}

// amqpAddr applies the --amqp-address template to an MQTT topic or filter.
func (f *benchFlags) amqpAddr(topic string) string {
	if f.amqpSep != "/" {
		topic = strings.ReplaceAll(topic, "/", f.amqpSep)
		if f.amqpSep == "." {
			topic = strings.ReplaceAll(topic, "+", "*") // AMQP 0-9-1 topic exchange wildcard
		}
	}
	return strings.ReplaceAll(f.amqpAddress, "{topic}", topic)
}

func benchCmd(args []string, stdout, stderr io.Writer) error {
	const cmd = "isthmus bench"
	f := &benchFlags{}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f.clientOpts.register(fs)
	fs.StringVar(&f.mqttURL, "mqtt", "", "MQTT broker URL (mqtt://, mqtts://, ws://…/mqtt, wss://…/mqtt)")
	fs.StringVar(&f.amqpURL, "amqp", "", "AMQP 1.0 URL (amqp://, amqps://, ws://…/amqp, wss://…/amqp); not for mqtt-to-mqtt")
	fs.StringVar(&f.mode, "mode", "mqtt-to-amqp", "mqtt-to-amqp, amqp-to-mqtt or mqtt-to-mqtt")
	fs.IntVar(&f.publishers, "publishers", 1, "concurrent publishers, one connection each")
	fs.IntVar(&f.qos, "qos", 1, "MQTT QoS of publishes and of the subscription")
	fs.IntVar(&f.size, "size", 64, "payload size in bytes (at least 20)")
	fs.Float64Var(&f.rate, "rate", 0, "total messages per second over all publishers (0: open loop, as fast as possible)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to publish (ignored with --count)")
	fs.IntVar(&f.count, "count", 0, "total messages to publish instead of --duration")
	fs.IntVar(&f.credit, "credit", 500, "AMQP receiver credit")
	fs.BoolVar(&f.settled, "settled", false, "amqp-to-mqtt: send pre-settled instead of waiting for outcomes")
	fs.StringVar(&f.prefix, "topic", "", "topic prefix (default: bench/RANDOM)")
	fs.StringVar(&f.amqpAddress, "amqp-address", "{topic}", "AMQP address template; {topic} is the MQTT topic or filter, e.g. /topic/{topic} for RabbitMQ")
	fs.StringVar(&f.amqpSep, "amqp-separator", "", "level separator in {topic} (default: / for the {topic} template, . for any other, as RabbitMQ routing keys)")
	fs.IntVar(&f.inflight, "inflight", 100, "unacknowledged messages per publisher at QoS > 0 or unsettled AMQP")
	fs.DurationVar(&f.wait, "wait", 5*time.Second, "after the last send, how long to wait for missing messages")
	if err := parseFlags(fs, args, benchUsage, stderr); err != nil {
		return err
	}
	if f.amqpSep == "" {
		f.amqpSep = "/"
		if f.amqpAddress != "{topic}" {
			f.amqpSep = "."
		}
	}
	switch {
	case f.mode != "mqtt-to-amqp" && f.mode != "amqp-to-mqtt" && f.mode != "mqtt-to-mqtt":
		return toolUsage(stderr, cmd, "--mode must be mqtt-to-amqp, amqp-to-mqtt or mqtt-to-mqtt")
	case f.mqttURL == "":
		return toolUsage(stderr, cmd, "--mqtt URL is required")
	case f.mode != "mqtt-to-mqtt" && f.amqpURL == "":
		return toolUsage(stderr, cmd, "--amqp URL is required for --mode %s", f.mode)
	case f.publishers < 1 || f.qos < 0 || f.qos > 2 || f.size < benchHeader || f.credit < 1 || f.inflight < 1:
		return toolUsage(stderr, cmd, "need --publishers ≥ 1, --qos 0..2, --size ≥ %d, --credit ≥ 1, --inflight ≥ 1", benchHeader)
	case !strings.Contains(f.amqpAddress, "{topic}"):
		return toolUsage(stderr, cmd, "--amqp-address must contain {topic}")
	}
	mqttEP, err := parseEndpoint(f.mqttURL)
	if err == nil && mqttEP.proto != protoMQTT {
		err = usageErr{"--mqtt " + f.mqttURL + " is not an MQTT URL"}
	}
	if err != nil {
		return toolError(stderr, cmd, err)
	}
	var amqpEP endpoint
	if f.mode != "mqtt-to-mqtt" {
		if amqpEP, err = parseEndpoint(f.amqpURL); err == nil && amqpEP.proto != protoAMQP {
			err = usageErr{"--amqp " + f.amqpURL + " is not an AMQP URL"}
		}
		if err != nil {
			return toolError(stderr, cmd, err)
		}
	}
	if f.prefix == "" {
		f.prefix = "bench/" + randomID("run")
	}
	f.prefix = strings.TrimSuffix(f.prefix, "/")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stats := &benchStats{seen: make([][]bool, f.publishers)}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
	defer dcancel()

	// The receiving side first, so that nothing is sent before it listens.
	filter := f.prefix + "/#"
	if f.mode == "mqtt-to-amqp" {
		o := f.clientOpts
		o.clientID = randomID("isthmus-bench-rcv")
		c, err := dialAMQP(dctx, amqpEP, &o)
		if err != nil {
			return toolError(stderr, cmd, err)
		}
		cleanups = append(cleanups, func() { c.Close() })
		s, err := c.NewSession(dctx, nil)
		if err != nil {
			return toolError(stderr, cmd, err)
		}
		addr := f.amqpAddr(filter)
		rcv, err := s.NewReceiver(dctx, addr, &amqp.ReceiverOptions{Credit: uint32(f.credit)})
		if err != nil {
			return toolError(stderr, cmd, fmt.Errorf("attach receiver to %q: %w", addr, err))
		}
		go func() {
			for {
				d, err := rcv.Receive(ctx)
				if err != nil {
					return
				}
				now := time.Now()
				if m, err := d.Message(); err == nil {
					var body []byte
					for _, b := range m.Data {
						body = append(body, b...)
					}
					stats.record(body, now)
				}
				if !d.SenderSettled() {
					_ = d.Accept(ctx)
				}
			}
		}()
	} else {
		o := f.clientOpts
		o.clientID = randomID("isthmus-bench-rcv")
		c, err := dialMQTT(dctx, mqttEP, &o, func(opts *paho.ClientOptions) {
			opts.SetOrderMatters(false)
		})
		if err != nil {
			return toolError(stderr, cmd, err)
		}
		cleanups = append(cleanups, func() { c.Disconnect(250) })
		tok := c.Subscribe(filter, byte(f.qos), func(_ paho.Client, m paho.Message) {
			stats.record(m.Payload(), time.Now())
		})
		if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			return toolError(stderr, cmd, fmt.Errorf("subscribe %q: %v", filter, tok.Error()))
		}
	}

	// Publishers: connect all, then start together.
	type publisher func(seq uint64, payload []byte) error
	pubs := make([]publisher, f.publishers)
	waits := make([]func(), f.publishers) // wait for outstanding acks
	var sendErrs atomic.Int64
	for i := range pubs {
		o := f.clientOpts
		o.clientID = randomID(fmt.Sprintf("isthmus-bench-pub%d", i))
		topic := fmt.Sprintf("%s/p%d", f.prefix, i)
		sem := make(chan struct{}, f.inflight)
		var outstanding sync.WaitGroup
		waits[i] = outstanding.Wait
		if f.mode == "amqp-to-mqtt" {
			c, err := dialAMQP(dctx, amqpEP, &o)
			if err != nil {
				return toolError(stderr, cmd, err)
			}
			cleanups = append(cleanups, func() { c.Close() })
			s, err := c.NewSession(dctx, nil)
			if err != nil {
				return toolError(stderr, cmd, err)
			}
			addr := f.amqpAddr(topic)
			snd, err := s.NewSender(dctx, addr, &amqp.SenderOptions{MaxInFlight: f.inflight})
			if err != nil {
				return toolError(stderr, cmd, fmt.Errorf("attach sender to %q: %w", addr, err))
			}
			pubs[i] = func(_ uint64, payload []byte) error {
				msg := &frames.Message{Data: [][]byte{payload}}
				rc, err := snd.SendAsync(ctx, msg, &amqp.SendOptions{Settled: f.settled})
				if err != nil || f.settled {
					return err
				}
				outstanding.Add(1)
				go func() {
					defer outstanding.Done()
					st, err := rc.Wait(ctx)
					if _, ok := st.(*frames.Accepted); err != nil || !ok {
						sendErrs.Add(1)
					}
				}()
				return nil
			}
		} else {
			c, err := dialMQTT(dctx, mqttEP, &o, nil)
			if err != nil {
				return toolError(stderr, cmd, err)
			}
			cleanups = append(cleanups, func() { c.Disconnect(250) })
			pubs[i] = func(_ uint64, payload []byte) error {
				tok := c.Publish(topic, byte(f.qos), false, payload)
				if f.qos == 0 {
					tok.Wait()
					return tok.Error()
				}
				sem <- struct{}{}
				outstanding.Add(1)
				go func() {
					defer outstanding.Done()
					defer func() { <-sem }()
					if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
						sendErrs.Add(1)
					}
				}()
				return nil
			}
		}
	}

	sentPer := make([]atomic.Uint64, f.publishers)
	totalSent := func() int {
		n := 0
		for i := range sentPer {
			n += int(sentPer[i].Load())
		}
		return n
	}
	pctx := ctx
	var pcancel context.CancelFunc = func() {}
	if f.count == 0 {
		pctx, pcancel = context.WithTimeout(ctx, f.duration)
	}
	defer pcancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range pubs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			limit := -1
			if f.count > 0 {
				limit = f.count / f.publishers
				if i < f.count%f.publishers {
					limit++
				}
			}
			var gap time.Duration
			if f.rate > 0 {
				gap = time.Duration(float64(time.Second) * float64(f.publishers) / f.rate)
			}
			payload := make([]byte, f.size)
			next := time.Now()
			for seq := uint64(0); limit < 0 || seq < uint64(limit); seq++ {
				if pctx.Err() != nil {
					return
				}
				if gap > 0 {
					next = next.Add(gap)
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-pctx.Done():
							return
						}
					}
				}
				p := make([]byte, f.size) // the client may hold it until sent
				copy(p, payload)
				bin.BigEndian.PutUint32(p, uint32(i))
				bin.BigEndian.PutUint64(p[4:], seq)
				bin.BigEndian.PutUint64(p[12:], uint64(time.Now().UnixNano()))
				if err := pubs[i](seq, p); err != nil {
					if pctx.Err() == nil {
						fmt.Fprintf(stderr, "%s: publisher %d: %v\n", cmd, i, err)
						sendErrs.Add(1)
					}
					return
				}
				sentPer[i].Store(seq + 1)
			}
		}(i)
	}
	pubDone := make(chan struct{})
	go func() { wg.Wait(); close(pubDone) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	progress := func() {
		el := time.Since(start).Seconds()
		r := stats.received()
		fmt.Fprintf(stderr, "%5.1fs sent %d received %d (%.0f msg/s)\n", el, totalSent(), r, float64(r)/el)
	}
loop:
	for {
		select {
		case <-pubDone:
			break loop
		case <-tick.C:
			progress()
		}
	}
	sendEnd := time.Now()
	for _, w := range waits {
		w()
	}
	sent := totalSent()
	deadline := time.After(f.wait)
wait:
	for stats.received() < sent {
		select {
		case <-deadline:
			break wait
		case <-ctx.Done():
			break wait
		case <-tick.C:
			progress()
		case <-time.After(10 * time.Millisecond):
		}
	}

	stats.mu.Lock()
	defer stats.mu.Unlock()
	lost := 0
	for i := range sentPer {
		n := int(sentPer[i].Load())
		for seq := 0; seq < n; seq++ {
			if seq >= len(stats.seen[i]) || !stats.seen[i][seq] {
				lost++
			}
		}
	}
	sendSecs := sendEnd.Sub(start).Seconds()
	recvSecs := sendSecs
	if stats.lastRecv.After(start) {
		recvSecs = stats.lastRecv.Sub(start).Seconds()
	}
	slices.Sort(stats.latencies)
	pct := func(p float64) time.Duration {
		if len(stats.latencies) == 0 {
			return 0
		}
		return time.Duration(stats.latencies[int(p*float64(len(stats.latencies)-1))])
	}
	rate := "open loop"
	if f.rate > 0 {
		rate = fmt.Sprintf("%.0f msg/s", f.rate)
	}
	fmt.Fprintf(stdout, "mode        %s\n", f.mode)
	fmt.Fprintf(stdout, "publishers  %d\n", f.publishers)
	fmt.Fprintf(stdout, "qos         %d\n", f.qos)
	fmt.Fprintf(stdout, "size        %d B\n", f.size)
	fmt.Fprintf(stdout, "rate        %s\n", rate)
	fmt.Fprintf(stdout, "sent        %d msg in %.2f s = %.0f msg/s\n", sent, sendSecs, float64(sent)/sendSecs)
	fmt.Fprintf(stdout, "received    %d msg in %.2f s = %.0f msg/s\n", stats.unique, recvSecs, float64(stats.unique)/recvSecs)
	fmt.Fprintf(stdout, "latency     p50 %v  p99 %v  max %v\n", pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Fprintf(stdout, "lost        %d\n", lost)
	fmt.Fprintf(stdout, "duplicates  %d\n", stats.dups)
	fmt.Fprintf(stdout, "errors      %d\n", sendErrs.Load()+int64(stats.bad))
	if (lost > 0 && f.qos > 0) || sendErrs.Load() > 0 {
		return exitError{1}
	}
	return nil
}
