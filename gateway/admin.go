package gateway

import (
	_ "embed"
	"fmt"
	"net/http"
	"runtime"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// statusPage is the admin endpoint's page for browsers: tables refreshed
// from the JSON API every 2 seconds.
//
//go:embed static/status.html
var statusPage []byte

// adminMux serves the operator endpoint (SPEC §8): liveness, readiness and
// Prometheus metrics. It is bound to 127.0.0.1 by default: keep it private.
func (s *Server) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: listeners are starting or the gateway is shutting down")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.metrics.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("GET /api/v1/connections", s.apiConnections)
	mux.HandleFunc("DELETE /api/v1/connections/{protocol}/{id}", s.apiKick)
	mux.HandleFunc("GET /api/v1/devices", s.apiDevices)
	mux.HandleFunc("GET /api/v1/status", s.apiStatus)
	mux.HandleFunc("GET /api/v1/routes", s.apiRoutes)
	mux.HandleFunc("GET /api/v1/queues", s.apiQueues)
	mux.HandleFunc("GET /api/v1/uplinks", s.apiUplinks)
	mux.HandleFunc("GET /api/v1/inspector", s.apiInspector)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			// A browser: the status page, which reads the JSON API.
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
			_, _ = w.Write(statusPage)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "isthmus %s\n\n/livez    liveness\n/readyz   readiness (every listener up)\n/metrics  Prometheus metrics\n/api/v1/connections  connected clients (DELETE /api/v1/connections/{mqtt|amqp}/{id} disconnects one)\n/api/v1/devices      devices of the devices file: online, last seen, counters\n/api/v1/status       version, uptime, listeners, connection and message counts\n/api/v1/routes, /api/v1/queues, /api/v1/uplinks\n/api/v1/inspector    the last messages routed: from, routes, results, outcome\n(a browser gets a status page here)\n", s.build.Version)
	})
	return mux
}

func (s *Server) registerMetrics() {
	m := s.metrics
	m.NewGauge(fmt.Sprintf(`isthmus_build_info{version=%q,commit=%q,go_version=%q}`, s.build.Version, s.build.Commit, runtime.Version()),
		func() float64 { return 1 })
	m.NewGauge(`isthmus_ready`, func() float64 {
		if s.Ready() {
			return 1
		}
		return 0
	})
	s.reloadOK = m.NewCounter(`isthmus_config_reloads_total{result="ok"}`)
	s.reloadFailed = m.NewCounter(`isthmus_config_reloads_total{result="error"}`)
}

// ReloadFailed counts a reload that did not get as far as Reload (invalid file).
func (s *Server) ReloadFailed() { s.reloadFailed.Inc() }
