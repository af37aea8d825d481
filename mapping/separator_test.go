package mapping

import (
	"strings"
	"testing"
	"testing/quick"
)

func TestSeparatorExamples(t *testing.T) {
	tests := []struct{ topic, key string }{
		{"devices/sensor-1/temp", "devices.sensor-1.temp"},
		{"devices/v1.2/temp", "devices.v1%2E2.temp"},
		{"rates/100%/x", "rates.100%25.x"},
		{"a//b", "a..b"},
		{"/lead", ".lead"},
		{"%2E", "%252E"}, // an escape-looking level stays itself
		{"", ""},
		{"ü.ß", "ü%2Eß"},
	}
	for _, tt := range tests {
		if got := TopicToKey(tt.topic); got != tt.key {
			t.Errorf("TopicToKey(%q) = %q, want %q", tt.topic, got, tt.key)
		}
		if got := KeyToTopic(tt.key); got != tt.topic {
			t.Errorf("KeyToTopic(%q) = %q, want %q", tt.key, got, tt.topic)
		}
	}
	// Lower-case hex is read too; stray % sequences are left alone.
	for key, topic := range map[string]string{"a%2eb": "a.b", "a%41": "a%41", "a%": "a%", "a%2": "a%2", "%25%2E": "%."} {
		if got := KeyToTopic(key); got != topic {
			t.Errorf("KeyToTopic(%q) = %q, want %q", key, got, topic)
		}
	}
	if got := EscapeLevel("a.b%c"); got != "a%2Eb%25c" {
		t.Errorf("EscapeLevel = %q", got)
	}
	if got := UnescapeLevel("a%2Eb%25c"); got != "a.b%c" {
		t.Errorf("UnescapeLevel = %q", got)
	}
}

// TestSeparatorRoundTrip is the property: every topic survives TopicToKey then KeyToTopic, every
// level survives EscapeLevel then UnescapeLevel, and an escaped level never holds a separator.
func TestSeparatorRoundTrip(t *testing.T) {
	// Inputs drawn from the characters that matter, so that collisions are likely.
	gen := func(b []byte) string {
		const alphabet = "./%2Ee5a"
		var s strings.Builder
		for _, c := range b {
			s.WriteByte(alphabet[int(c)%len(alphabet)])
		}
		return s.String()
	}
	topics := func(b []byte) bool {
		topic := gen(b)
		key := TopicToKey(topic)
		return KeyToTopic(key) == topic && strings.Count(key, ".") == strings.Count(topic, "/")
	}
	levels := func(b []byte) bool {
		level := strings.ReplaceAll(gen(b), "/", "")
		esc := EscapeLevel(level)
		return UnescapeLevel(esc) == level && !strings.Contains(esc, ".")
	}
	arbitrary := func(s string) bool { return KeyToTopic(TopicToKey(s)) == s }
	cfg := &quick.Config{MaxCount: 20000}
	for name, f := range map[string]any{"topics": topics, "levels": levels, "arbitrary": arbitrary} {
		if err := quick.Check(f, cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzSeparator checks the round trip on inputs the fuzzer finds.
func FuzzSeparator(f *testing.F) {
	for _, s := range []string{"a/b", "v1.2/%", "%2E/%25", "//", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		key := TopicToKey(topic)
		if back := KeyToTopic(key); back != topic {
			t.Fatalf("%q → %q → %q", topic, key, back)
		}
		if string(AppendTopicAsKey(nil, topic)) != key {
			t.Fatalf("AppendTopicAsKey and TopicToKey differ on %q", topic)
		}
	})
}
