package mapping

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/isthmus-iot/isthmus/amqp/frames"
)

// frameConditions reads every Cond* constant declared in package frames from its source, so that
// a condition added there fails TestReasonCode until it is given a row here.
func frameConditions(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../amqp/frames/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("frames sources: %v %v", files, err)
	}
	conds := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "Cond") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						conds[n.Name] = v
					}
				}
			}
		}
	}
	if len(conds) < 20 {
		t.Fatalf("found only %d conditions in frames: the scan is broken", len(conds))
	}
	return conds
}

// TestReasonCode covers every AMQP error condition frames defines (SPEC §5.4).
func TestReasonCode(t *testing.T) {
	table := map[frames.Symbol]byte{
		frames.CondInternalError:             0x80,
		frames.CondNotFound:                  0x80,
		frames.CondUnauthorizedAccess:        0x87,
		frames.CondDecodeError:               0x80,
		frames.CondResourceLimitExceeded:     0x97,
		frames.CondNotAllowed:                0x80,
		frames.CondInvalidField:              0x80,
		frames.CondNotImplemented:            0x80,
		frames.CondResourceLocked:            0x80,
		frames.CondPreconditionFailed:        0x80,
		frames.CondResourceDeleted:           0x80,
		frames.CondIllegalState:              0x80,
		frames.CondFrameSizeTooSmall:         0x80,
		frames.CondConnectionForced:          0x80,
		frames.CondConnectionFramingError:    0x80,
		frames.CondConnectionRedirect:        0x80,
		frames.CondSessionWindowViolation:    0x80,
		frames.CondSessionErrantLink:         0x80,
		frames.CondSessionHandleInUse:        0x80,
		frames.CondSessionUnattachedHandle:   0x80,
		frames.CondLinkDetachForced:          0x80,
		frames.CondLinkTransferLimitExceeded: 0x80,
		frames.CondLinkMessageSizeExceeded:   0x80,
		frames.CondLinkRedirect:              0x80,
		frames.CondLinkStolen:                0x80,
		frames.CondTransactionUnknownID:      0x80,
		frames.CondTransactionRollback:       0x80,
		frames.CondTransactionTimeout:        0x80,
		"com.example:vendor-condition":       0x80,
	}
	var missing []string
	for name, cond := range frameConditions(t) {
		if _, ok := table[frames.Symbol(cond)]; !ok {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("conditions without a row in this table: %v", missing)
	}
	for cond, want := range table {
		if got := ReasonCode(cond); got != want {
			t.Errorf("ReasonCode(%s) = %#x, want %#x", cond, got, want)
		}
		// Every code used must be one a PUBACK/PUBREC may carry (MQTT 5 §3.4.2.1).
		switch ReasonCode(cond) {
		case 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99:
		default:
			t.Errorf("ReasonCode(%s) = %#x is not a PUBACK reason code", cond, ReasonCode(cond))
		}
	}
}

func rejected(cond frames.Symbol, desc string) *frames.Rejected {
	e := &frames.Error{Condition: cond}
	if desc != "" {
		e.Description = frames.Some(desc)
	}
	return &frames.Rejected{Error: e}
}

func TestMQTTAck(t *testing.T) {
	tests := []struct {
		name  string
		state frames.DeliveryState
		v5    Ack
		v311  Ack
	}{
		{"accepted", &frames.Accepted{}, Ack{Action: AckSend}, Ack{Action: AckSend}},
		{"rejected unauthorized", rejected(frames.CondUnauthorizedAccess, "no"),
			Ack{Action: AckSend, Reason: 0x87, ReasonString: "amqp:unauthorized-access: no"}, Ack{Action: AckClose}},
		{"rejected quota", rejected(frames.CondResourceLimitExceeded, ""),
			Ack{Action: AckSend, Reason: 0x97, ReasonString: "amqp:resource-limit-exceeded"}, Ack{Action: AckClose}},
		{"rejected other", rejected(frames.CondDecodeError, "bad"),
			Ack{Action: AckSend, Reason: 0x80, ReasonString: "amqp:decode-error: bad"}, Ack{Action: AckClose}},
		{"rejected without error", &frames.Rejected{},
			Ack{Action: AckSend, Reason: 0x80, ReasonString: "amqp:internal-error"}, Ack{Action: AckClose}},
		{"released", &frames.Released{}, Ack{Action: AckRetry}, Ack{Action: AckRetry}},
		{"modified", &frames.Modified{DeliveryFailed: frames.Some(true)}, Ack{Action: AckRetry}, Ack{Action: AckRetry}},
		{"no state", nil, Ack{Action: AckRetry}, Ack{Action: AckRetry}},
		{"received", &frames.Received{SectionNumber: 1}, Ack{Action: AckWait}, Ack{Action: AckWait}},
		{"transactional accepted", &frames.TransactionalState{TxnID: []byte{1}, Outcome: &frames.Accepted{}}, Ack{Action: AckSend}, Ack{Action: AckSend}},
		{"transactional rejected", &frames.TransactionalState{TxnID: []byte{1}, Outcome: rejected(frames.CondResourceLimitExceeded, "")},
			Ack{Action: AckSend, Reason: 0x97, ReasonString: "amqp:resource-limit-exceeded"}, Ack{Action: AckClose}},
		{"transactional pending", &frames.TransactionalState{TxnID: []byte{1}}, Ack{Action: AckWait}, Ack{Action: AckWait}},
		{"declared", &frames.Declared{TxnID: []byte{1}},
			Ack{Action: AckSend, Reason: 0x80, ReasonString: "unexpected delivery state"}, Ack{Action: AckClose}},
		{"extension", &frames.Extension{},
			Ack{Action: AckSend, Reason: 0x80, ReasonString: "unexpected delivery state"}, Ack{Action: AckClose}},
	}
	for _, tt := range tests {
		if got := MQTTAck(tt.state, 5); got != tt.v5 {
			t.Errorf("%s, MQTT 5: %+v, want %+v", tt.name, got, tt.v5)
		}
		for _, v := range []byte{3, 4} {
			if got := MQTTAck(tt.state, v); got != tt.v311 {
				t.Errorf("%s, MQTT version %d: %+v, want %+v", tt.name, v, got, tt.v311)
			}
		}
	}
}

func TestWorseAck(t *testing.T) {
	ok := Ack{Action: AckSend}
	wait := Ack{Action: AckWait}
	retry := Ack{Action: AckRetry}
	neg := Ack{Action: AckSend, Reason: 0x97}
	closeConn := Ack{Action: AckClose}
	order := []Ack{ok, wait, retry, neg, closeConn}
	for i, a := range order {
		for j, b := range order {
			want := order[max(i, j)]
			if got := WorseAck(a, b); got != want {
				t.Errorf("WorseAck(%+v, %+v) = %+v, want %+v", a, b, got, want)
			}
		}
	}
	for _, a := range []AckAction{AckWait, AckSend, AckRetry, AckClose} {
		if strings.Contains(a.String(), "?") {
			t.Errorf("%d has no name", a)
		}
	}
}
