// Command isthmus runs the gateway and its tools:
//
//	isthmus [run] [-c FILE]     run the gateway (-c also from ISTHMUS_CONFIG)
//	isthmus check -c FILE       validate a config file without side effects
//	isthmus config default      print the built-in default config
//	isthmus route -c FILE --mqtt TOPIC | --amqp ADDRESS
//	                            dry run: which routes match and what they make of a message
//	isthmus pub|sub --url URL   test clients for MQTT and AMQP (see docs/cli.md)
//	isthmus bench --mode M      load generator (see docs/cli.md)
//	isthmus version             version, commit, Go version, platform
//
// Global flags: --log-level debug|info|warn|error, --log-format text|json.
// main only assembles: config.Load → gateway.New → Start → signals → Shutdown.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// exitError carries a process exit code through the command functions.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// globals are the flags every command accepts.
type globals struct {
	logLevel  string
	logFormat string
	config    string
}

func (g *globals) register(fs *flag.FlagSet, withConfig bool) {
	fs.StringVar(&g.logLevel, "log-level", g.logLevel, "log level: debug, info, warn or error (default: the config's log.level)")
	fs.StringVar(&g.logFormat, "log-format", g.logFormat, "log format: text or json (default: text on a terminal, json otherwise)")
	if withConfig {
		fs.StringVar(&g.config, "c", g.config, "config file (default: $ISTHMUS_CONFIG, else the built-in default config)")
		fs.StringVar(&g.config, "config", g.config, "same as -c")
	}
}

const usage = `isthmus — AMQP 1.0 ⇄ MQTT gateway

Usage:
  isthmus [run] [-c FILE]     run the gateway (no file: local mode on 127.0.0.1, anonymous)
  isthmus check -c FILE       validate a config file; prints FILE:LINE:COL: key: problem, exit 1 on any
  isthmus config default      print the built-in default config (documented YAML)
  isthmus route [-c FILE] --mqtt TOPIC [--qos N] [--client-id ID]
  isthmus route [-c FILE] --amqp ADDRESS [--settled]
                              dry run: the routes a message matches, where each sends it, how, and with which properties
  isthmus pub --url URL --topic T [--qos N] [--count N] [--message TEXT] ...
  isthmus sub --url URL --topic FILTER [--count N] [--json] ...
                              test clients: mqtt://, mqtts://, ws://…/mqtt, amqp://, amqps://, ws://…/amqp
  isthmus bench --mode mqtt-to-amqp|amqp-to-mqtt|mqtt-to-mqtt --mqtt URL [--amqp URL] ...
                              load generator: msg/s, p50/p99/max latency, loss, duplicates
  isthmus passwd [--cost N]   read a password (prompt, or stdin's first line) and print
                              its bcrypt hash for the devices file
  isthmus version             print version, commit, Go version and platform

Global flags (before or after the command):
  --log-level debug|info|warn|error
  --log-format text|json
  -c, --config FILE           also from the ISTHMUS_CONFIG environment variable

Signals: SIGHUP reloads the config and the devices file (validated first; the old
ones stay on error; the devices file also reloads by itself when it changes);
SIGTERM/SIGINT shut down gracefully within gateway.shutdown_timeout.
`

func main() {
	err := dispatch(os.Args[1:], os.Stdout, os.Stderr)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "isthmus:", err)
		os.Exit(1)
	}
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	g := &globals{config: os.Getenv("ISTHMUS_CONFIG")}
	fs := flag.NewFlagSet("isthmus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	g.register(fs, true)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{2}
	}
	rest := fs.Args()
	cmd := "run"
	if len(rest) > 0 {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "pub":
		return pubCmd(rest, stdout, stderr)
	case "sub":
		return subCmd(rest, stdout, stderr)
	case "bench":
		return benchCmd(rest, stdout, stderr)
	case "passwd":
		return passwdCmd(rest, os.Stdin, stdout, stderr)
	}
	sub := flag.NewFlagSet("isthmus "+cmd, flag.ContinueOnError)
	rf := &routeFlags{}
	sub.SetOutput(stderr)
	sub.Usage = func() { fmt.Fprint(stderr, usage) }
	switch cmd {
	case "run", "check":
		g.register(sub, true)
	case "route":
		g.register(sub, true)
		rf.register(sub)
	case "config", "version":
		g.register(sub, false)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "isthmus: unknown command %q\n\n%s", cmd, usage)
		return exitError{2}
	}
	if err := sub.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{2}
	}
	switch cmd {
	case "run":
		if sub.NArg() > 0 {
			return usageError(stderr, "run takes no arguments besides flags, got %q", sub.Args())
		}
		return run(g, stderr)
	case "check":
		if sub.NArg() > 0 {
			return usageError(stderr, "check takes no arguments besides flags, got %q", sub.Args())
		}
		return check(g.config, stdout, stderr)
	case "route":
		if sub.NArg() > 0 {
			return usageError(stderr, "route takes no arguments besides flags, got %q", sub.Args())
		}
		return route(g.config, rf, stdout, stderr)
	case "config":
		if sub.NArg() != 1 || sub.Arg(0) != "default" {
			return usageError(stderr, "the config command has one form: isthmus config default")
		}
		return printDefault(stdout)
	default: // version
		fmt.Fprintln(stdout, versionLine())
		return nil
	}
}

func usageError(stderr io.Writer, format string, a ...any) error {
	fmt.Fprintf(stderr, "isthmus: "+format+"\n\n", a...)
	fmt.Fprint(stderr, usage)
	return exitError{2}
}
