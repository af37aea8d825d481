package mapping

import "strings"

// Separator translation for uplinks (SPEC §5.3, `separator: "."`).
//
// RabbitMQ topic exchanges and ActiveMQ Artemis addresses separate words with `.` where MQTT
// separates levels with `/`. A topic becomes a routing key by joining its levels with `.`; a `.`
// or `%` inside a level is percent-escaped first so that the translation is reversible:
//
//	%  →  %25
//	.  →  %2E
//
// and nothing else changes. The inverse splits a key at `.`, turns %2E (or %2e) back into `.`
// and %25 into `%` in each word, and joins the words with `/`. Other % sequences are left as they
// are, so a key that was not produced by the escape still translates to something sensible
// (it just does not round-trip). Examples:
//
//	devices/sensor-1/temp     ↔  devices.sensor-1.temp
//	devices/v1.2/temp         ↔  devices.v1%2E2.temp
//	rates/100%/x              ↔  rates.100%25.x
//	a//b                      ↔  a..b

// EscapeLevel escapes one topic level for use as one word of a `.`-separated key.
func EscapeLevel(level string) string {
	if !strings.ContainsAny(level, ".%") {
		return level
	}
	return string(appendEscapedLevel(nil, level))
}

func appendEscapedLevel(dst []byte, level string) []byte {
	for i := 0; i < len(level); i++ {
		switch c := level[i]; c {
		case '%':
			dst = append(dst, "%25"...)
		case '.':
			dst = append(dst, "%2E"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// UnescapeLevel undoes EscapeLevel on one word of a key.
func UnescapeLevel(word string) string {
	if strings.IndexByte(word, '%') < 0 {
		return word
	}
	return string(appendUnescapedLevel(make([]byte, 0, len(word)), word))
}

func appendUnescapedLevel(dst []byte, word string) []byte {
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c == '%' && i+3 <= len(word) {
			switch word[i+1 : i+3] {
			case "25":
				dst = append(dst, '%')
				i += 2
				continue
			case "2E", "2e":
				dst = append(dst, '.')
				i += 2
				continue
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// TopicToKey turns an MQTT topic into a `.`-separated key, escaping each level.
func TopicToKey(topic string) string {
	if !strings.ContainsAny(topic, "/.%") {
		return topic
	}
	return string(AppendTopicAsKey(make([]byte, 0, len(topic)+8), topic))
}

// AppendTopicAsKey appends TopicToKey(topic) to dst.
func AppendTopicAsKey(dst []byte, topic string) []byte {
	for i := 0; i < len(topic); i++ {
		switch c := topic[i]; c {
		case '/':
			dst = append(dst, '.')
		case '%':
			dst = append(dst, "%25"...)
		case '.':
			dst = append(dst, "%2E"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// KeyToTopic turns a `.`-separated key into an MQTT topic: the inverse of TopicToKey.
func KeyToTopic(key string) string {
	if !strings.ContainsAny(key, ".%") {
		return key
	}
	dst := make([]byte, 0, len(key))
	for {
		j := strings.IndexByte(key, '.')
		if j < 0 {
			return string(appendUnescapedLevel(dst, key))
		}
		dst = append(appendUnescapedLevel(dst, key[:j]), '/')
		key = key[j+1:]
	}
}
