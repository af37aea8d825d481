package wire

import "bytes"

// checkTopicName checks a topic name (PUBLISH, will topic, Response Topic):
// a UTF-8 string of at least one character without wildcards. utfRule names
// the rule that makes it a UTF-8 Encoded String for the field at hand.
func checkTopicName(t []byte, what, utfRule string) *Error {
	valid, wild := scanString(t)
	if !valid {
		return malformed("%s is not valid UTF-8 or contains U+0000 %s [MQTT-1.5.4-1] [MQTT-1.5.4-2]", what, utfRule)
	}
	if len(t) == 0 {
		return reasonErr(ReasonTopicNameInvalid, "%s is empty [MQTT-4.7.3-1]", what)
	}
	if wild {
		return reasonErr(ReasonTopicNameInvalid, "%s contains a wildcard character [MQTT-4.7.0-1]", what)
	}
	return nil
}

// checkFilter checks the syntax of topic filter number i of a SUBSCRIBE or
// UNSUBSCRIBE. mochi's own check lets "a+/b" and "sport#" through and treats
// them as plain levels; they are refused here.
func checkFilter(v byte, f []byte, pkt string, i int) *Error {
	if !validString(f) {
		return malformed("%s topic filter %d is not valid UTF-8 or contains U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]", pkt, i)
	}
	if len(f) == 0 {
		return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d is empty [MQTT-4.7.3-1]", pkt, i)
	}
	start := 0
	for j := 0; j <= len(f); j++ {
		if j < len(f) && f[j] != '/' {
			continue
		}
		level := f[start:j]
		start = j + 1
		if bytes.IndexByte(level, '#') >= 0 {
			if len(level) != 1 {
				return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d: '#' must occupy a whole level [MQTT-4.7.1-2]", pkt, i)
			}
			if j != len(f) {
				return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d: '#' must be the last level [MQTT-4.7.1-2]", pkt, i)
			}
		}
		if bytes.IndexByte(level, '+') >= 0 && len(level) != 1 {
			return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d: '+' must occupy a whole level [MQTT-4.7.1-3]", pkt, i)
		}
	}
	if v == 5 && isShared(f) {
		// MQTT 5.0 §4.8.2: $share/{ShareName}/{filter}. Before MQTT 5 the
		// prefix has no meaning and such a filter is an ordinary one.
		rest := f[len(sharePrefix):]
		slash := bytes.IndexByte(rest, '/')
		switch {
		case slash < 0:
			return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d: shared subscription without a topic filter after the ShareName [MQTT-4.8.2-2]", pkt, i)
		case slash == 0:
			return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d: shared subscription with an empty ShareName [MQTT-4.8.2-1]", pkt, i)
		case bytes.ContainsAny(rest[:slash], "+#"):
			return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d: ShareName contains a wildcard [MQTT-4.8.2-2]", pkt, i)
		case slash == len(rest)-1:
			return reasonErr(ReasonTopicFilterInvalid, "%s topic filter %d: shared subscription without a topic filter after the ShareName [MQTT-4.8.2-2]", pkt, i)
		}
	}
	return nil
}

const sharePrefix = "$share/"

func isShared(f []byte) bool {
	return len(f) >= len(sharePrefix) && string(f[:len(sharePrefix)]) == sharePrefix
}
