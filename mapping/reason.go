package mapping

import (
	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// MQTT 5 reason codes a PUBACK or PUBREC can carry for a message that went to AMQP
// (MQTT 5 §3.4.2.1, §3.5.2.1).
const (
	ReasonSuccess          byte = 0x00
	ReasonUnspecifiedError byte = 0x80
	ReasonNotAuthorized    byte = 0x87
	ReasonQuotaExceeded    byte = 0x97
)

// conditionReasons is the one table from AMQP error conditions (AMQP 1.0 §2.8.15–§2.8.18,
// §4.5.8) to MQTT 5 reason codes (SPEC §5.4). Every condition not listed maps to 0x80
// (unspecified error): PUBACK and PUBREC allow only 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91,
// 0x97 and 0x99, and none of the others says more about an AMQP refusal than 0x80 with the
// condition in the reason string.
var conditionReasons = map[frames.Symbol]byte{
	frames.CondUnauthorizedAccess:    ReasonNotAuthorized,
	frames.CondResourceLimitExceeded: ReasonQuotaExceeded,
}

// ReasonCode maps an AMQP error condition to the MQTT 5 reason code of the negative PUBACK or
// PUBREC that reports it to the device.
func ReasonCode(cond frames.Symbol) byte {
	if r, ok := conditionReasons[cond]; ok {
		return r
	}
	return ReasonUnspecifiedError
}

// AckAction is what the gateway does toward an MQTT publisher once an AMQP destination has
// settled the message.
type AckAction uint8

const (
	// AckWait: the state is not an outcome (received, or nothing yet): keep waiting.
	AckWait AckAction = iota
	// AckSend: send PUBACK (QoS 1) or PUBREC (QoS 2) with Ack.Reason; below 0x80 the message was
	// accepted.
	AckSend
	// AckRetry: the destination did not process the message (released, modified, or settled
	// without an outcome). Send nothing: the gateway may try the destination again (uplinks
	// retry from their buffer); otherwise the message stays unacknowledged and the device
	// resends it when it reconnects ([MQTT-4.4.0-1]).
	AckRetry
	// AckClose: MQTT 3.1.1 has no negative acknowledgement. Leave the message unacknowledged and
	// close the connection, so that the device resends it after reconnecting (SPEC §5.4).
	AckClose
)

func (a AckAction) String() string {
	switch a {
	case AckWait:
		return "wait"
	case AckSend:
		return "ack"
	case AckRetry:
		return "retry"
	case AckClose:
		return "close"
	}
	return "ack-action?"
}

// Ack is the answer to an MQTT publisher.
type Ack struct {
	Action       AckAction
	Reason       byte   // AckSend: the MQTT 5 reason code (0x00 success)
	ReasonString string // AckSend with Reason ≥ 0x80: the MQTT 5 reason string, "condition: description"
}

// MQTTAck decides how a device learns the outcome an AMQP destination gave its message
// (SPEC §5.4). version is the client's MQTT protocol version (3, 4 or 5).
//
//	state                           MQTT 5                          MQTT 3.1.1 and 3.1
//	accepted                        PUBACK/PUBREC 0x00              PUBACK/PUBREC
//	rejected (condition)            PUBACK/PUBREC ReasonCode(cond)  no ack, close the connection
//	                                with "condition: description"
//	released, modified, nil         no ack: retry (AckRetry)        no ack: retry
//	received                        wait                            wait
//	transactional-state             as its outcome                  as its outcome
//	declared, unknown outcomes      PUBACK/PUBREC 0x80              no ack, close the connection
func MQTTAck(state frames.DeliveryState, version byte) Ack {
	switch s := state.(type) {
	case *frames.Accepted:
		return Ack{Action: AckSend, Reason: ReasonSuccess}
	case *frames.Rejected:
		cond, desc := frames.CondInternalError, ""
		if s.Error != nil {
			cond, desc = s.Error.Condition, s.Error.Description.V
		}
		return negative(ReasonCode(cond), reasonString(cond, desc), version)
	case *frames.Released, *frames.Modified, nil:
		// AMQP 1.0 §3.4.4, §3.4.5: not processed; another attempt may succeed. A receiver that
		// settles without a state leaves it to the link's default outcome, which is released
		// unless the link says otherwise (§3.5.3).
		return Ack{Action: AckRetry}
	case *frames.Received:
		return Ack{Action: AckWait}
	case *frames.TransactionalState:
		// AMQP 1.0 §4.5.6: the provisional outcome inside a transaction.
		if s.Outcome == nil {
			return Ack{Action: AckWait}
		}
		return MQTTAck(s.Outcome, version)
	}
	return negative(ReasonUnspecifiedError, "unexpected delivery state", version)
}

func negative(reason byte, str string, version byte) Ack {
	if version < 5 {
		return Ack{Action: AckClose}
	}
	return Ack{Action: AckSend, Reason: reason, ReasonString: str}
}

func reasonString(cond frames.Symbol, desc string) string {
	if desc == "" {
		return string(cond)
	}
	return string(cond) + ": " + desc
}

// WorseAck combines the answers of several destinations of one message: the device is answered
// once, with the worst of them (SPEC §5.3: acknowledged only when every destination accepted).
// Close beats a negative ack, which beats retry, which beats waiting, which beats success.
func WorseAck(a, b Ack) Ack {
	if ackRank(b) > ackRank(a) {
		return b
	}
	return a
}

func ackRank(a Ack) int {
	switch {
	case a.Action == AckClose:
		return 4
	case a.Action == AckSend && a.Reason >= 0x80:
		return 3
	case a.Action == AckRetry:
		return 2
	case a.Action == AckWait:
		return 1
	}
	return 0
}
