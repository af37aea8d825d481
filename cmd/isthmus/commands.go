package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/isthmus-iot/isthmus/config"
	"github.com/isthmus-iot/isthmus/devices"
	"github.com/isthmus-iot/isthmus/gateway"
)

// run starts the gateway and serves until SIGTERM or SIGINT.
func run(g *globals, stderr io.Writer) error {
	cfg, err := config.Load(g.config)
	if err != nil {
		printConfigError(stderr, err)
		return exitError{1}
	}
	logs, err := newLogging(stderr, g, cfg.Log)
	if err != nil {
		fmt.Fprintln(stderr, "isthmus:", err)
		return exitError{2}
	}
	log := logs.logger
	build := buildInfo()
	log.Info("starting isthmus", "version", build.Version, "commit", build.Commit, "config", cfg.Source,
		"gateway_id", cfg.Gateway.ID, "go", runtime.Version(), "platform", runtime.GOOS+"/"+runtime.GOARCH)

	gw, err := gateway.New(cfg, log, build)
	if err != nil {
		var errs config.Errors // devices.Errors too: one type
		var one *config.Error
		if errors.As(err, &errs) || errors.As(err, &one) {
			printConfigError(stderr, err)
		} else {
			log.Error("cannot start", "error", err)
		}
		return exitError{1}
	}
	// Signals are wired before Start so a SIGTERM during startup is not lost.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := gw.Start(); err != nil {
		log.Error("cannot start", "error", err)
		_ = gw.Shutdown(context.Background())
		return exitError{1}
	}
	switch {
	case cfg.Auth.Anonymous && cfg.Auth.DevicesFile == "":
		log.Warn("anonymous access is enabled: any client may connect and do anything (auth.anonymous: true, no auth.devices_file)")
	case cfg.Auth.Anonymous:
		log.Warn("anonymous access is enabled: clients without credentials get the devices file's anonymous: permissions (auth.anonymous: true)")
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)

	for sig := range sigs {
		if sig == syscall.SIGHUP {
			reload(gw, g, logs)
			continue
		}
		timeout := gw.Config().Gateway.ShutdownTimeout
		log.Info("shutting down", "signal", sig.String(), "timeout", timeout.String())
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		go func() {
			// A second signal means "now".
			if _, ok := <-sigs; ok {
				log.Warn("second signal: closing connections without waiting")
				cancel()
			}
		}()
		err := gw.Shutdown(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			log.Warn("shutdown timeout reached; remaining connections were closed", "timeout", timeout.String())
		} else if err != nil {
			log.Error("shutdown", "error", err)
		}
		log.Info("stopped")
		return nil
	}
	return nil
}

// reload re-reads the config file named at startup. A config with any problem
// is refused as a whole and the running config stays.
func reload(gw *gateway.Server, g *globals, logs *logging) {
	log := logs.logger
	cfg, err := config.Load(g.config)
	if err != nil {
		gw.ReloadFailed()
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				log.Error("config reload refused; keeping the running config", "problem", e.Error())
			}
		} else {
			log.Error("config reload refused; keeping the running config", "error", err)
		}
		return
	}
	restart, err := gw.Reload(cfg)
	if err != nil {
		log.Error("config reload refused; keeping the running config", "error", err)
		return
	}
	logs.apply(g, cfg.Log)
	if len(restart) > 0 {
		log.Warn("config reloaded; changed sections that need a restart keep their old values", "sections", restart)
	} else {
		log.Info("config reloaded", "config", cfg.Source)
	}
}

// check validates a config file (and the files it names) without binding or
// opening anything.
func check(path string, stdout, stderr io.Writer) error {
	if path == "" {
		fmt.Fprintln(stderr, "isthmus check: no config file: pass -c FILE or set ISTHMUS_CONFIG")
		return exitError{2}
	}
	cfg, err := config.Load(path)
	if err == nil {
		_, err = gateway.CompileRoutes(cfg)
	}
	if err != nil {
		printConfigError(stderr, err)
		return exitError{1}
	}
	if f := cfg.Auth.DevicesFile; f != "" {
		reg, err := devices.Load(f)
		if err != nil && !errors.Is(err, devices.ErrInvalidFile) {
			err = cfg.At("auth.devices_file", err.Error()) // cannot read it: say which key named it
		}
		if err != nil {
			printConfigError(stderr, err)
			return exitError{1}
		}
		fmt.Fprintf(stdout, "%s: ok (%d devices)\n", f, len(reg.Devices()))
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

func printConfigError(w io.Writer, err error) {
	var errs config.Errors // devices.Errors too: one type
	var one *config.Error
	switch {
	case errors.As(err, &errs):
	case errors.As(err, &one):
		errs = config.Errors{one}
	default:
		fmt.Fprintln(w, "isthmus:", err)
		return
	}
	for _, e := range errs {
		fmt.Fprintln(w, e.Error())
	}
	where := ""
	if errors.Is(err, devices.ErrInvalidFile) {
		where = " in the devices file"
	}
	fmt.Fprintf(w, "%d problem(s)%s; nothing was started\n", len(errs), where)
}

func printDefault(w io.Writer) error {
	_, err := w.Write(config.DefaultYAML())
	return err
}

func buildInfo() gateway.BuildInfo {
	b := gateway.BuildInfo{Version: version, Commit: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b.Commit = s.Value
				if len(b.Commit) > 12 {
					b.Commit = b.Commit[:12]
				}
			}
		}
		if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
	}
	return b
}

func versionLine() string {
	b := buildInfo()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				platform += " GOARM=" + s.Value
			}
		}
	}
	return fmt.Sprintf("isthmus %s (commit %s) %s %s", b.Version, b.Commit, runtime.Version(), platform)
}

// logging owns the process's slog handler so a reload can change the level.
type logging struct {
	logger *slog.Logger
	level  *slog.LevelVar
}

func newLogging(w io.Writer, g *globals, c config.Log) (*logging, error) {
	format := g.logFormat
	if format == "" {
		format = c.Format
	}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	l := &logging{level: new(slog.LevelVar)}
	if err := l.setLevel(g, c); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l.level}
	switch format {
	case "text":
		l.logger = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		l.logger = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
	return l, nil
}

func (l *logging) setLevel(g *globals, c config.Log) error {
	name := g.logLevel
	if name == "" {
		name = c.Level
	}
	if name == "" {
		name = "info"
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(name)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", name)
	}
	l.level.Set(lv)
	return nil
}

// apply takes a reloaded config's log level unless the flag pinned it.
func (l *logging) apply(g *globals, c config.Log) {
	if err := l.setLevel(g, c); err != nil {
		l.logger.Warn("log level not changed", "error", err)
	}
}
