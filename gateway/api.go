package gateway

import (
	"cmp"
	"encoding/json"
	"net/http"
	"runtime"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"time"
)

// apiConnection is one entry of /api/v1/connections.
type apiConnection struct {
	Protocol   string    `json:"protocol"`  // mqtt | amqp
	ID         string    `json:"id"`        // MQTT client id; AMQP connection number (the conn_id of the logs)
	Identity   string    `json:"identity"`  // device id, "" for anonymous
	ClientID   string    `json:"client_id"` // MQTT client id; AMQP container id
	Transport  string    `json:"transport"`
	Remote     string    `json:"remote"`
	Connected  time.Time `json:"connected"`
	MessagesIn uint64    `json:"messages_in"`
}

func (s *Server) connections() []apiConnection {
	out := []apiConnection{} // [] rather than null in JSON
	for _, c := range s.broker.Clients() {
		out = append(out, apiConnection{Protocol: "mqtt", ID: c.ClientID, Identity: c.Identity, ClientID: c.ClientID,
			Transport: c.Transport, Remote: c.RemoteAddr, Connected: c.Connected.UTC(), MessagesIn: c.MessagesIn})
	}
	s.amqpConns.Range(func(_, v any) bool {
		ac := v.(*amqpConn)
		out = append(out, apiConnection{Protocol: "amqp", ID: strconv.FormatUint(ac.conn.ID(), 10), Identity: ac.identity,
			ClientID: ac.conn.RemoteContainerID(), Transport: ac.transport, Remote: ac.conn.RemoteAddr().String(),
			Connected: ac.since.UTC(), MessagesIn: ac.in.Load()})
		return true
	})
	slices.SortFunc(out, func(a, b apiConnection) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), a.Connected.Compare(b.Connected), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (s *Server) apiConnections(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"connections": s.connections()})
}

// apiKick disconnects one connection: MQTT by client id (MQTT 5 clients get
// DISCONNECT 0x98 administrative action), AMQP by connection number (close
// with amqp:connection:forced).
func (s *Server) apiKick(w http.ResponseWriter, r *http.Request) {
	proto, id := r.PathValue("protocol"), r.PathValue("id")
	ok := false
	switch proto {
	case "mqtt":
		ok = s.broker.Kick(id)
	case "amqp":
		n, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "an AMQP connection is named by its number (the id in /api/v1/connections)"})
			return
		}
		ok = s.kickAMQP(n)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "protocol must be mqtt or amqp"})
		return
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such connection: see /api/v1/connections"})
		return
	}
	s.log.Info("connection disconnected by the admin API", "protocol", proto, "id", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"disconnected": proto + "/" + id})
}

// apiDevice is one entry of /api/v1/devices.
type apiDevice struct {
	ID          string            `json:"id"`
	Enabled     bool              `json:"enabled"`
	Labels      map[string]string `json:"labels,omitempty"`
	Online      bool              `json:"online"`
	Connections int               `json:"connections"` // open now
	Connects    uint64            `json:"connects"`    // since start
	LastSeen    *time.Time        `json:"last_seen"`   // last connect or disconnect; null: not since start
	MessagesIn  uint64            `json:"messages_in"` // since start, both protocols
}

func (s *Server) apiDevices(w http.ResponseWriter, r *http.Request) {
	reg := s.auth.reg.Load()
	if reg == nil {
		writeJSON(w, http.StatusOK, map[string]any{"devices": []apiDevice{}, "note": "no devices file (auth.devices_file): every client is anonymous"})
		return
	}
	live := map[string]uint64{}
	for _, c := range s.connections() {
		live[c.Identity] += c.MessagesIn
	}
	out := []apiDevice{}
	for _, d := range reg.Devices() {
		st := s.presence.snapshot(d.ID)
		ad := apiDevice{ID: d.ID, Enabled: d.Enabled, Labels: d.Labels, Online: st.online > 0, Connections: st.online,
			Connects: st.connections, MessagesIn: st.messagesIn + live[d.ID]}
		if !st.lastSeen.IsZero() {
			t := st.lastSeen
			ad.LastSeen = &t
		}
		out = append(out, ad)
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiStatus is /api/v1/status: the numbers an operator looks at first.
type apiStatus struct {
	Version       string           `json:"version"`
	Commit        string           `json:"commit"`
	Go            string           `json:"go"`
	Platform      string           `json:"platform"`
	GatewayID     string           `json:"gateway_id"`
	Started       time.Time        `json:"started"`
	UptimeSeconds int64            `json:"uptime_seconds"`
	Ready         bool             `json:"ready"`
	Listeners     []apiListener    `json:"listeners"`
	Connections   map[string]int64 `json:"connections"` // mqtt_tcp, mqtt_tls, mqtt_ws, mqtt_wss, amqp
	Messages      map[string]int64 `json:"messages"`    // counters since start
	Auth          apiAuth          `json:"auth"`
	Queues        int              `json:"queues"`
	MemoryBytes   uint64           `json:"memory_bytes"` // Go heap and stacks in use (runtime/metrics), not RSS
}

type apiListener struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type apiAuth struct {
	Anonymous   bool   `json:"anonymous"`
	DevicesFile string `json:"devices_file,omitempty"`
	Devices     int    `json:"devices"`
}

func (s *Server) status() apiStatus {
	cfg := s.cfg.Load()
	st := apiStatus{
		Version: s.build.Version, Commit: s.build.Commit, Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, GatewayID: cfg.Gateway.ID,
		Ready: s.Ready(), Connections: map[string]int64{}, Messages: map[string]int64{},
		Auth:   apiAuth{Anonymous: s.auth.anonymous.Load(), DevicesFile: cfg.Auth.DevicesFile},
		Queues: s.bridge.queues.count(),
	}
	s.mu.Lock()
	st.Started = s.startedAt.UTC()
	s.mu.Unlock()
	if !st.Started.IsZero() {
		st.UptimeSeconds = int64(time.Since(st.Started) / time.Second)
	}
	for _, l := range s.Listeners() {
		st.Listeners = append(st.Listeners, apiListener{Name: l.Name, URL: l.URL})
	}
	for t, n := range s.broker.Connections() {
		st.Connections["mqtt_"+t] = n
	}
	var amqpConns int64
	s.amqpConns.Range(func(_, _ any) bool { amqpConns++; return true })
	st.Connections["amqp"] = amqpConns
	in, out := s.broker.Stats()
	st.Messages["mqtt_received"], st.Messages["mqtt_sent"] = in, out
	st.Messages["bridged"] = int64(s.bridge.routed.Get())
	st.Messages["no_route"] = int64(s.bridge.noRouteMQTT.Get() + s.bridge.noRouteAMQP.Get())
	if reg := s.auth.reg.Load(); reg != nil {
		st.Auth.Devices = len(reg.Devices())
	}
	st.MemoryBytes = memoryInUse()
	return st
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

// apiRoute is one entry of /api/v1/routes.
type apiRoute struct {
	Name              string `json:"name"`
	From              string `json:"from"`
	To                string `json:"to"`
	Delivery          string `json:"delivery"`
	RequireSubscriber bool   `json:"require_subscriber,omitempty"`
}

func (s *Server) apiRoutes(w http.ResponseWriter, r *http.Request) {
	out := []apiRoute{}
	for _, rt := range s.bridge.router.Load().Routes() {
		out = append(out, apiRoute{Name: rt.Name, From: rt.From.String(), To: rt.To.String(),
			Delivery: rt.Delivery.String(), RequireSubscriber: rt.RequireSubscriber})
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": out, "unroutable": s.bridge.router.Load().Unroutable()})
}

func (s *Server) apiQueues(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"queues": s.bridge.queues.snapshot()})
}

func (s *Server) apiUplinks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"uplinks": []any{}, "note": "uplinks (outgoing AMQP connections) are not implemented in this version"})
}

// memoryInUse is the Go runtime's heap objects plus goroutine stacks.
func memoryInUse() uint64 {
	samples := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	rtmetrics.Read(samples)
	var n uint64
	for _, s := range samples {
		if s.Value.Kind() == rtmetrics.KindUint64 {
			n += s.Value.Uint64()
		}
	}
	return n
}

// apiInspector returns the last messages the bridge routed, newest first,
// and keeps the inspector recording for the next 30 seconds.
func (s *Server) apiInspector(w http.ResponseWriter, r *http.Request) {
	msgs := s.bridge.insp.read()
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs,
		"note": "recording while this is read (for 30 s after each read); the last 200 routed messages"})
}
