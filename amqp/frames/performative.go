package frames

import "strconv"

// DecodePerformative decodes the performative at the start of an AMQP frame body (AMQP 1.0 §2.3.2)
// and returns it with the rest of the body: the payload of a transfer, empty otherwise. A descriptor
// that is not one of the 9 performatives is a *DecodeError. It allocates the returned performative;
// to decode a transfer into a reused value, call PeekDescriptor and Transfer.Decode.
func DecodePerformative(body []byte) (Performative, []byte, error) {
	code, _, err := PeekDescriptor(body)
	if err != nil {
		return nil, nil, err
	}
	var p interface {
		Performative
		Decode([]byte) (int, error)
	}
	switch code {
	case DescriptorOpen:
		p = new(Open)
	case DescriptorBegin:
		p = new(Begin)
	case DescriptorAttach:
		p = new(Attach)
	case DescriptorFlow:
		p = new(Flow)
	case DescriptorTransfer:
		p = new(Transfer)
	case DescriptorDisposition:
		p = new(Disposition)
	case DescriptorDetach:
		p = new(Detach)
	case DescriptorEnd:
		p = new(End)
	case DescriptorClose:
		p = new(Close)
	default:
		return nil, nil, unknownBody("performative", body)
	}
	n, err := p.Decode(body)
	if err != nil {
		return nil, nil, err
	}
	return p, body[n:], nil
}

// DecodeSASLFrame decodes the body of a SASL frame (AMQP 1.0 §5.3.3). Bytes after the SASL
// frame body are ignored. A descriptor that is not one of the 5 SASL frames is a *DecodeError.
func DecodeSASLFrame(body []byte) (SASLFrame, error) {
	code, _, err := PeekDescriptor(body)
	if err != nil {
		return nil, err
	}
	var p interface {
		SASLFrame
		Decode([]byte) (int, error)
	}
	switch code {
	case DescriptorSASLMechanisms:
		p = new(SASLMechanisms)
	case DescriptorSASLInit:
		p = new(SASLInit)
	case DescriptorSASLChallenge:
		p = new(SASLChallenge)
	case DescriptorSASLResponse:
		p = new(SASLResponse)
	case DescriptorSASLOutcome:
		p = new(SASLOutcome)
	default:
		return nil, unknownBody("sasl-frame", body)
	}
	if _, err := p.Decode(body); err != nil {
		return nil, err
	}
	return p, nil
}

func unknownBody(kind string, body []byte) error {
	code, known, _ := PeekDescriptor(body)
	what := "unknown descriptor"
	switch {
	case known && descriptorName(code) != "":
		what = descriptorName(code)
	case known:
		what = "descriptor 0x" + strconv.FormatUint(code, 16)
	}
	return decodeError(kind, "descriptor", 0, what+" is not a "+kind, nil)
}
