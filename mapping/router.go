package mapping

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Kind is the space a route's source or destination lives in.
type Kind uint8

const (
	KindMQTT   Kind = iota + 1 // the embedded broker's topic space
	KindAMQP                   // the gateway's own AMQP address space (queues and topic addresses)
	KindUplink                 // an address on an uplink (the gateway as AMQP client, SPEC §6)
)

func (k Kind) String() string {
	switch k {
	case KindMQTT:
		return "mqtt"
	case KindAMQP:
		return "amqp"
	case KindUplink:
		return "uplink"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// isAMQP reports whether messages in this space are AMQP messages.
func (k Kind) isAMQP() bool { return k == KindAMQP || k == KindUplink }

// Endpoint is a route's source or destination as written.
type Endpoint struct {
	Kind      Kind
	Uplink    string // KindUplink: the uplink's name
	Text      string // the pattern (source) or template (destination)
	Separator byte   // '/' or, for uplink addresses with separator ".", '.'
}

func (e Endpoint) String() string {
	s := e.Kind.String() + " " + strconv.Quote(e.Text)
	if e.Kind == KindUplink {
		s = "uplink " + e.Uplink + " " + strconv.Quote(e.Text)
		if e.Separator == '.' {
			s += ` separator "."`
		}
	}
	return s
}

// Retain says what the retain flag of an MQTT publish made by a route is.
type Retain uint8

const (
	// RetainKeep: retain: not written. The source's flag is kept: an MQTT publish's retain
	// flag, or the AMQP message-annotation x-opt-retain.
	RetainKeep  Retain = iota
	RetainFalse        // retain: false
	RetainTrue         // retain: true
)

// Route is one compiled route. Its exported fields describe it (for the admin API and the
// dry run); it is immutable.
type Route struct {
	Index             int    // position in the configuration's routes
	Name              string // as written, or "routes[i]" when it has none
	From, To          Endpoint
	Delivery          Mode   // ModeAuto when not written
	QoS               int    // MQTT destinations: the route's qos, -1 when not written
	Retain            Retain // MQTT destinations
	RequireSubscriber bool
	// Queues is false for an AMQP source written with queues: false: the route then ignores
	// messages sent to a queue address (the transparent default route does this, SPEC §5.5).
	Queues bool

	gatewayID string
	pattern   *pattern
	to        *template
	toField   string         // to.mqtt, to.amqp or to.address, for RenderError
	props     []propTemplate // properties:, sorted by key
	appProps  []propTemplate // application-properties:, sorted by key
}

type propTemplate struct {
	key   string
	field string // properties.KEY or application-properties.KEY, for RenderError
	t     *template
}

// RouteConfig is one route as the configuration file writes it (SPEC §5.3). It has the fields of
// config.Route, in the same order and of the same types, so that either converts to the other:
// mapping.RouteConfig(r). mapping does not import config, which would bring the network
// packages config needs into this package's dependencies.
type RouteConfig struct {
	Name                  string
	From                  map[string]any
	To                    map[string]any
	Delivery              string
	Properties            map[string]string
	ApplicationProperties map[string]string
	RequireSubscriber     bool
}

// QueueConfig names a queue (SPEC §5.2): by Name, or by a Match pattern (MQTT filter syntax).
type QueueConfig struct {
	Name, Match string
}

// Options carries what Compile needs from the rest of the configuration.
type Options struct {
	// GatewayID prefixes message ids: "<gateway id>:<sequence>" (config gateway.id); default
	// "isthmus".
	GatewayID string
	// Uplinks are the names of the configured uplinks; a route naming another one is an error.
	Uplinks []string
	// Queues are the configured queues: they tell queue addresses from topic addresses for routes
	// with queues: false.
	Queues []QueueConfig
	// Unroutable is what happens to a message no destination takes: accept (""), release or
	// reject. The Router only reports it (Explain).
	Unroutable string
}

// Router holds compiled routes. It is immutable after Compile and safe for concurrent use; a
// reload compiles a new Router and the caller swaps it in atomically.
type Router struct {
	routes     []*Route
	mqtt, amqp *node
	uplinks    map[uplinkKey]*node
	queueNames map[string]bool
	queues     *node
	skipQueues bool // some AMQP route has queues: false
	unroutable string
}

type uplinkKey struct {
	name string
	sep  byte
}

// Routes returns the compiled routes in configuration order. The slice is shared: do not modify.
func (r *Router) Routes() []*Route { return r.routes }

// Unroutable is the configured policy for messages no destination takes: accept, release or
// reject (SPEC §5.3).
func (r *Router) Unroutable() string { return r.unroutable }

// Match is one route that matched a name. Captures are not stored: they are cut out of Name when
// a template needs them, so matching does not allocate beyond the result slice.
type Match struct {
	Route *Route
	Name  string // the topic or address as received
}

// Capture is one named value a match supplies to templates.
type Capture struct {
	Name, Value string
}

// Captures lists the pattern's captures and {#} with their values for this match, in topic form
// (separator escapes undone). It allocates; templates do not use it.
func (m Match) Captures() []Capture {
	p := m.Route.pattern
	levels := strings.Split(m.Name, string(p.sep))
	var out []Capture
	for _, c := range p.captures {
		v := levels[c.level]
		if p.sep == '.' {
			v = UnescapeLevel(v)
		}
		out = append(out, Capture{Name: c.name, Value: v})
	}
	if p.hash {
		var v string
		if k := len(p.levels) - 1; k < len(levels) {
			v = strings.Join(levels[k:], string(p.sep))
		}
		if p.sep == '.' {
			v = KeyToTopic(v)
		}
		out = append(out, Capture{Name: phRest, Value: v})
	}
	return out
}

// MatchMQTT returns every route whose source pattern matches the MQTT topic name, in
// configuration order.
func (r *Router) MatchMQTT(topic string) []Match { return r.AppendMatchMQTT(nil, topic) }

// AppendMatchMQTT appends to dst what MatchMQTT returns; with a reused dst it does not allocate.
func (r *Router) AppendMatchMQTT(dst []Match, topic string) []Match {
	if topic == "" || r.mqtt == nil {
		return dst
	}
	start := len(dst)
	dst = r.mqtt.collect(dst, topic, 0, '/', true)
	sortByIndex(dst[start:])
	return dst
}

// MatchAMQP returns every route whose AMQP source pattern matches the address a message was sent
// to, in configuration order. Routes written with queues: false are left out when the address is
// a queue.
func (r *Router) MatchAMQP(address string) []Match { return r.AppendMatchAMQP(nil, address) }

// AppendMatchAMQP appends to dst what MatchAMQP returns.
func (r *Router) AppendMatchAMQP(dst []Match, address string) []Match {
	if address == "" || r.amqp == nil {
		return dst
	}
	start := len(dst)
	dst = r.amqp.collect(dst, address, 0, '/', true)
	if r.skipQueues && len(dst) > start && r.IsQueue(address) {
		kept := dst[:start]
		for _, m := range dst[start:] {
			if m.Route.Queues {
				kept = append(kept, m)
			}
		}
		dst = kept
	}
	sortByIndex(dst[start:])
	return dst
}

// MatchUplink returns every route consuming from the named uplink whose address pattern matches
// address: the address the message came from (its properties.to, or the link's source address
// when it has none).
func (r *Router) MatchUplink(uplink, address string) []Match {
	return r.AppendMatchUplink(nil, uplink, address)
}

// AppendMatchUplink appends to dst what MatchUplink returns.
func (r *Router) AppendMatchUplink(dst []Match, uplink, address string) []Match {
	if address == "" {
		return dst
	}
	start := len(dst)
	if n := r.uplinks[uplinkKey{uplink, '/'}]; n != nil {
		dst = n.collect(dst, address, 0, '/', true)
	}
	if n := r.uplinks[uplinkKey{uplink, '.'}]; n != nil {
		dst = n.collect(dst, address, 0, '.', true)
	}
	sortByIndex(dst[start:])
	return dst
}

// IsQueue reports whether address names a configured queue (by name or match pattern).
func (r *Router) IsQueue(address string) bool {
	if r.queueNames[address] {
		return true
	}
	return address != "" && r.queues != nil && r.queues.has(address, 0, '/', true)
}

// Compile checks every route and builds the Router. All problems are returned at once as
// CompileErrors, each naming the route and the key path (routes[2].to.mqtt).
func Compile(routes []RouteConfig, opts Options) (*Router, error) {
	c := &compiler{uplinks: map[string]bool{}, names: map[string]int{}}
	for _, u := range opts.Uplinks {
		c.uplinks[u] = true
	}
	gw := opts.GatewayID
	if gw == "" {
		gw = "isthmus"
	}
	r := &Router{mqtt: &node{}, amqp: &node{}, uplinks: map[uplinkKey]*node{}, queueNames: map[string]bool{}, unroutable: opts.Unroutable}
	if r.unroutable == "" {
		r.unroutable = "accept"
	}
	for i := range routes {
		if rt := c.route(i, &routes[i]); rt != nil {
			rt.gatewayID = gw
			r.routes = append(r.routes, rt)
		}
	}
	for i, q := range opts.Queues {
		if q.Name != "" {
			r.queueNames[q.Name] = true
		}
		if q.Match != "" {
			p, msg := parsePattern(q.Match, '/', patternRules{})
			if msg != "" {
				c.errs = append(c.errs, &CompileError{Route: -1, Path: "queues[" + strconv.Itoa(i) + "].match", Msg: msg})
				continue
			}
			if r.queues == nil {
				r.queues = &node{}
			}
			r.queues.insert(p, nil)
		}
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	for _, rt := range r.routes {
		switch rt.From.Kind {
		case KindMQTT:
			r.mqtt.insert(rt.pattern, rt)
		case KindAMQP:
			r.amqp.insert(rt.pattern, rt)
			if !rt.Queues {
				r.skipQueues = true
			}
		case KindUplink:
			k := uplinkKey{rt.From.Uplink, rt.From.Separator}
			if r.uplinks[k] == nil {
				r.uplinks[k] = &node{}
			}
			r.uplinks[k].insert(rt.pattern, rt)
		}
	}
	return r, nil
}

type compiler struct {
	errs    CompileErrors
	uplinks map[string]bool
	names   map[string]int
	// current route, for errors
	index int
	name  string
}

func (c *compiler) errf(path, msg string) {
	c.errs = append(c.errs, &CompileError{Route: c.index, Name: c.name, Path: path, Msg: msg})
}

// route compiles one route; nil when it has errors (recorded in c.errs).
func (c *compiler) route(i int, cr *RouteConfig) *Route {
	c.index, c.name = i, cr.Name
	base := "routes[" + strconv.Itoa(i) + "]"
	nerr := len(c.errs)
	rt := &Route{Index: i, Name: cr.Name, QoS: -1, Queues: true, RequireSubscriber: cr.RequireSubscriber}
	if rt.Name == "" {
		rt.Name = base
	} else if prev, dup := c.names[cr.Name]; dup {
		c.errf(base+".name", "route name "+strconv.Quote(cr.Name)+" is already used by routes["+strconv.Itoa(prev)+"]")
	} else {
		c.names[cr.Name] = i
	}

	var ok bool
	if rt.Delivery, ok = ParseMode(cr.Delivery); !ok {
		c.errf(base+".delivery", "unknown delivery mode "+strconv.Quote(cr.Delivery)+" (want auto, at-most-once, at-least-once or exactly-once)")
	}

	fromOK := c.from(base+".from", cr.From, rt)
	toOK := c.to(base+".to", cr.To, rt)

	if toOK && rt.To.Kind == KindMQTT && rt.QoS >= 0 && rt.Delivery != ModeAuto && rt.QoS != rt.Delivery.QoS() {
		c.errf(base+".to.qos", "qos "+strconv.Itoa(rt.QoS)+" contradicts delivery: "+rt.Delivery.String()+
			" (which publishes at QoS "+strconv.Itoa(rt.Delivery.QoS())+"); leave qos out or make them agree")
	}
	if toOK && rt.RequireSubscriber && rt.To.Kind == KindUplink {
		c.errf(base+".require_subscriber", "applies to mqtt and amqp destinations only: the gateway cannot see an uplink's subscribers")
	}
	if fromOK && toOK {
		sc := &scope{src: rt.pattern, whole: phTopic}
		if rt.From.Kind.isAMQP() {
			sc.whole = phAddress
		}
		c.destination(base, rt, sc)
		c.properties(base, cr, rt, sc)
	}
	if len(c.errs) > nerr {
		return nil
	}
	return rt
}

// keysOf returns a map's keys sorted, so that errors come in a stable order.
func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// kindOf finds which of mqtt, amqp, uplink an endpoint map names.
func (c *compiler) kindOf(path string, m map[string]any) (Kind, bool) {
	if len(m) == 0 {
		c.errf(path, "missing: give one of mqtt, amqp or uplink")
		return 0, false
	}
	var found []string
	for _, k := range []string{"mqtt", "amqp", "uplink"} {
		if _, ok := m[k]; ok {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		c.errf(path, "give one of mqtt, amqp or uplink")
		return 0, false
	case 1:
	default:
		c.errf(path, "give only one of mqtt, amqp or uplink (found "+strings.Join(found, " and ")+")")
		return 0, false
	}
	return map[string]Kind{"mqtt": KindMQTT, "amqp": KindAMQP, "uplink": KindUplink}[found[0]], true
}

// checkKeys reports every key of m outside allowed.
func (c *compiler) checkKeys(path string, m map[string]any, what string, allowed ...string) bool {
	ok := true
	for _, k := range keysOf(m) {
		if !slices.Contains(allowed, k) {
			c.errf(path+"."+k, "unknown key (a "+what+" takes "+strings.Join(allowed, ", ")+")")
			ok = false
		}
	}
	return ok
}

func (c *compiler) str(path string, v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case nil:
		c.errf(path, "missing value")
	case bool:
		c.errf(path, "expected a string, got "+strconv.FormatBool(x))
	default:
		c.errf(path, "expected a string, got a number; quote it")
	}
	return "", false
}

func (c *compiler) boolean(path string, v any) (bool, bool) {
	if b, ok := v.(bool); ok {
		return b, true
	}
	c.errf(path, "expected true or false")
	return false, false
}

// qos accepts the integer forms a YAML decoder or a Go literal produce.
func (c *compiler) qos(path string, v any) (int, bool) {
	var q int64 = -1
	switch x := v.(type) {
	case int:
		q = int64(x)
	case int64:
		q = x
	case uint64:
		if x <= 2 {
			q = int64(x)
		}
	case float64:
		if x == math.Trunc(x) && x >= 0 && x <= 2 {
			q = int64(x)
		}
	}
	if q < 0 || q > 2 {
		c.errf(path, "expected 0, 1 or 2")
		return 0, false
	}
	return int(q), true
}

func (c *compiler) separator(path string, m map[string]any) (byte, bool) {
	v, ok := m["separator"]
	if !ok {
		return '/', true
	}
	s, ok := c.str(path, v)
	if !ok {
		return 0, false
	}
	switch s {
	case "/":
		return '/', true
	case ".":
		return '.', true
	}
	c.errf(path, "separator must be \"/\" or \".\"")
	return 0, false
}

func (c *compiler) uplink(path string, v any) (string, bool) {
	name, ok := c.str(path, v)
	if !ok {
		return "", false
	}
	if !c.uplinks[name] {
		if len(c.uplinks) == 0 {
			c.errf(path, "no uplink named "+strconv.Quote(name)+" (no uplinks are configured)")
		} else {
			c.errf(path, "no uplink named "+strconv.Quote(name)+" (configured: "+strings.Join(keysOf(c.uplinks), ", ")+")")
		}
		return "", false
	}
	return name, true
}

// from reads and compiles the route's source.
func (c *compiler) from(path string, m map[string]any, rt *Route) bool {
	kind, ok := c.kindOf(path, m)
	if !ok {
		return false
	}
	e := Endpoint{Kind: kind, Separator: '/'}
	rules := patternRules{captures: true}
	key := kind.String()
	switch kind {
	case KindMQTT:
		ok = c.checkKeys(path, m, "mqtt source", "mqtt")
	case KindAMQP:
		ok = c.checkKeys(path, m, "amqp source", "amqp", "queues")
		if v, has := m["queues"]; has {
			q, qok := c.boolean(path+".queues", v)
			rt.Queues, ok = q, ok && qok
		}
	case KindUplink:
		ok = c.checkKeys(path, m, "uplink source", "uplink", "address", "separator")
		name, nok := c.uplink(path+".uplink", m["uplink"])
		sep, sok := c.separator(path+".separator", m)
		e.Uplink, e.Separator, ok = name, sep, ok && nok && sok
		key = "address"
		rules.emptyLevel = true
		if _, has := m["address"]; !has {
			c.errf(path+".address", "missing: an uplink source needs the address pattern to consume from")
			return false
		}
	}
	text, tok := c.str(path+"."+key, m[key])
	if !ok || !tok {
		return false
	}
	e.Text = text
	p, msg := parsePattern(text, e.Separator, rules)
	if msg != "" {
		c.errf(path+"."+key, msg)
		return false
	}
	rt.From, rt.pattern = e, p
	return true
}

// to reads the route's destination; its template is compiled by destination once the source is
// known.
func (c *compiler) to(path string, m map[string]any, rt *Route) bool {
	kind, ok := c.kindOf(path, m)
	if !ok {
		return false
	}
	e := Endpoint{Kind: kind, Separator: '/'}
	key := kind.String()
	switch kind {
	case KindMQTT:
		ok = c.checkKeys(path, m, "mqtt destination", "mqtt", "qos", "retain")
		if v, has := m["qos"]; has {
			q, qok := c.qos(path+".qos", v)
			rt.QoS, ok = q, ok && qok
		}
		if v, has := m["retain"]; has {
			b, bok := c.boolean(path+".retain", v)
			rt.Retain, ok = RetainFalse, ok && bok
			if b {
				rt.Retain = RetainTrue
			}
		}
	case KindAMQP:
		ok = c.checkKeys(path, m, "amqp destination", "amqp")
	case KindUplink:
		ok = c.checkKeys(path, m, "uplink destination", "uplink", "address", "separator")
		name, nok := c.uplink(path+".uplink", m["uplink"])
		sep, sok := c.separator(path+".separator", m)
		e.Uplink, e.Separator, ok = name, sep, ok && nok && sok
		key = "address"
		if _, has := m["address"]; !has {
			c.errf(path+".address", "missing: an uplink destination needs the address to send to")
			return false
		}
	}
	text, tok := c.str(path+"."+key, m[key])
	if !ok || !tok {
		return false
	}
	e.Text = text
	rt.To = e
	return true
}

func (c *compiler) destination(base string, rt *Route, sc *scope) {
	kind, key := outTopic, "mqtt"
	switch rt.To.Kind {
	case KindAMQP:
		kind, key = outAddress, "amqp"
	case KindUplink:
		kind, key = outUplink, "address"
	}
	t, msg := parseTemplate(rt.To.Text, kind, rt.To.Separator, sc)
	if msg != "" {
		c.errf(base+".to."+key, msg)
		return
	}
	rt.to, rt.toField = t, "to."+key
}

// Settable properties by destination. AMQP names for AMQP destinations (AMQP 1.0 §3.2.4), MQTT 5
// names for MQTT destinations (MQTT 5 §3.3.2.3).
var (
	amqpProps = map[string]outKind{
		"subject": outString, "to": outAddress, "reply-to": outAddress, "correlation-id": outString,
		"content-type": outSymbol, "content-encoding": outSymbol, "group-id": outString, "reply-to-group-id": outString,
	}
	amqpFixedProps = map[string]string{
		"message-id":           "is set by the gateway (<gateway id>:<sequence>, stable across retries)",
		"user-id":              "is the sender's authenticated identity, set by the gateway",
		"creation-time":        "is the receipt time, set by the gateway",
		"absolute-expiry-time": "cannot be set by a route (the MQTT message expiry becomes header.ttl)",
		"group-sequence":       "cannot be set by a route",
	}
	mqttProps = map[string]outKind{
		"content-type": outMQTTString, "response-topic": outTopic, "correlation-data": outBinary,
	}
)

func (c *compiler) properties(base string, cr *RouteConfig, rt *Route, sc *scope) {
	if rt.From.Kind.isAMQP() && rt.To.Kind.isAMQP() {
		// AMQP 1.0 §3.2: the bare message is immutable in transit; forwarding keeps it byte for
		// byte, so there is nothing a route could change.
		if len(cr.Properties) > 0 {
			c.errf(base+".properties", "an AMQP-to-AMQP route cannot set properties: the bare message is immutable in transit (AMQP 1.0 §3.2)")
		}
		if len(cr.ApplicationProperties) > 0 {
			c.errf(base+".application-properties", "an AMQP-to-AMQP route cannot set application-properties: the bare message is immutable in transit (AMQP 1.0 §3.2)")
		}
		return
	}
	table, valid := amqpProps, "subject, to, reply-to, correlation-id, content-type, content-encoding, group-id, reply-to-group-id"
	if rt.To.Kind == KindMQTT {
		table, valid = mqttProps, "content-type, response-topic, correlation-data (MQTT 5 names: the destination is MQTT)"
	}
	for _, k := range keysOf(cr.Properties) {
		path := base + ".properties." + k
		kind, ok := table[k]
		if !ok {
			if why, fixed := amqpFixedProps[k]; fixed && rt.To.Kind.isAMQP() {
				c.errf(path, k+" "+why)
			} else {
				c.errf(path, "unknown property (settable: "+valid+"; others go in application-properties)")
			}
			continue
		}
		if kind == outAddress && rt.To.Kind == KindUplink {
			kind = outUplink
		}
		t, msg := parseTemplate(cr.Properties[k], kind, '/', sc)
		if msg != "" {
			c.errf(path, msg)
			continue
		}
		rt.props = append(rt.props, propTemplate{key: k, field: "properties." + k, t: t})
	}
	vkind := outString
	if rt.To.Kind == KindMQTT {
		vkind = outMQTTString
	}
	for _, k := range keysOf(cr.ApplicationProperties) {
		path := base + ".application-properties." + k
		if msg := checkText(k); msg != "" {
			c.errf(path, "key "+msg)
			continue
		}
		v := cr.ApplicationProperties[k]
		if v == "" {
			c.errf(path, "empty value")
			continue
		}
		t, msg := parseTemplate(v, vkind, '/', sc)
		if msg != "" {
			c.errf(path, msg)
			continue
		}
		rt.appProps = append(rt.appProps, propTemplate{key: k, field: "application-properties." + k, t: t})
	}
}
