package mapping

import (
	"strconv"
	"testing"
	"time"
)

// benchRouter compiles n routes, one per device, each with two captures, plus a few wildcard
// routes that every lookup has to consider: the shape of a site with many per-device rules.
func benchRouter(tb testing.TB, n int) *Router {
	tb.Helper()
	routes := make([]RouteConfig, 0, n+3)
	for i := range n {
		d := "d" + strconv.Itoa(i)
		routes = append(routes, route("dev-"+d, mq("devices/"+d+"/{kind}/{sensor}"), aq("{kind}/"+d+"/{sensor}")))
	}
	routes = append(routes,
		route("events", mq("devices/+/events/#"), aq("events/{#}")),
		route("site", mq("sites/{site}/#"), aq("sites/{site}")),
		route("cmd", aq("commands/{device}"), mq("devices/{device}/commands")),
	)
	r, err := Compile(routes, Options{GatewayID: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkMatchMQTT shows that matching cost does not grow with the number of routes: the
// per-op time for 10 and for 10,000 routes should be about the same.
func BenchmarkMatchMQTT(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		r := benchRouter(b, n)
		topic := "devices/d" + strconv.Itoa(n/2) + "/telemetry/temperature"
		b.Run("routes="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ms := r.MatchMQTT(topic); len(ms) != 1 {
					b.Fatalf("%d matches", len(ms))
				}
			}
		})
		b.Run("append/routes="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]Match, 0, 4)
			for b.Loop() {
				if dst = r.AppendMatchMQTT(dst[:0], topic); len(dst) != 1 {
					b.Fatalf("%d matches", len(dst))
				}
			}
		})
	}
}

// BenchmarkMatchAndRender matches and renders the destination of a route with two captures:
// the work per message per route before translation.
func BenchmarkMatchAndRender(b *testing.B) {
	for _, n := range []int{10, 10000} {
		r := benchRouter(b, n)
		topic := "devices/d" + strconv.Itoa(n/2) + "/telemetry/temperature"
		b.Run("routes="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]Match, 0, 4)
			for b.Loop() {
				dst = r.AppendMatchMQTT(dst[:0], topic)
				to, err := dst[0].Destination("client", "")
				if err != nil || len(to) == 0 {
					b.Fatal(to, err)
				}
			}
		})
	}
}

// BenchmarkFromMQTT is a whole MQTT→AMQP mapping: match, render, translate.
func BenchmarkFromMQTT(b *testing.B) {
	r := benchRouter(b, 1000)
	exp := uint32(60)
	msg := &MQTTMessage{Topic: "devices/d500/telemetry/temperature", Payload: []byte(`{"t":21.5}`), QoS: 1,
		ContentType: "application/json", MessageExpiry: &exp, ClientID: "d500", Identity: "d500",
		UserProperties: []UserProperty{{"unit", "C"}}}
	env := Env{Sequence: 1, Received: time.Unix(1700000000, 0)}
	b.ReportAllocs()
	dst := make([]Match, 0, 4)
	for b.Loop() {
		dst = r.AppendMatchMQTT(dst[:0], msg.Topic)
		if _, err := dst[0].FromMQTT(msg, env); err != nil {
			b.Fatal(err)
		}
	}
}
