package wire

// The crash-proof property: whatever Validate accepts, mochi-mqtt 2.7.9
// decodes without panicking (and, as it happens, without error). Only the
// tests import mochi; the package itself must not.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochiDecode does to pkt what mochi does to a packet it reads from a client:
// FixedHeader.Decode and DecodeLength (Client.ReadFixedHeader), the type's
// decoder on a copy of the body (Client.ReadPacket), then the checks
// server.go runs and the topic index operations a PUBLISH, SUBSCRIBE or
// UNSUBSCRIBE leads to. version is the connection's; mochi decodes a CONNECT
// with version 0 and takes the version from it. A panic is recovered and
// returned instead of killing the test binary.
func mochiDecode(version byte, pkt []byte) (panicked any, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = r
		}
	}()
	var fh packets.FixedHeader
	if err := fh.Decode(pkt[0]); err != nil {
		return nil, fmt.Errorf("FixedHeader.Decode: %w", err)
	}
	rem, n, err := packets.DecodeLength(bytes.NewReader(pkt[1:]))
	if err != nil {
		return nil, fmt.Errorf("DecodeLength: %w", err)
	}
	fh.Remaining = rem
	if 1+n+rem > len(pkt) {
		return nil, fmt.Errorf("mochi would wait for %d more bytes", 1+n+rem-len(pkt))
	}
	body := append([]byte{}, pkt[1+n:1+n+rem]...)
	if fh.Type == packets.Connect {
		version = 0
	}
	p := packets.Packet{FixedHeader: fh, ProtocolVersion: version}
	switch fh.Type {
	case packets.Connect:
		err = p.ConnectDecode(body)
	case packets.Disconnect:
		err = p.DisconnectDecode(body)
	case packets.Connack:
		err = p.ConnackDecode(body)
	case packets.Publish:
		err = p.PublishDecode(body)
	case packets.Puback:
		err = p.PubackDecode(body)
	case packets.Pubrec:
		err = p.PubrecDecode(body)
	case packets.Pubrel:
		err = p.PubrelDecode(body)
	case packets.Pubcomp:
		err = p.PubcompDecode(body)
	case packets.Subscribe:
		err = p.SubscribeDecode(body)
	case packets.Suback:
		err = p.SubackDecode(body)
	case packets.Unsubscribe:
		err = p.UnsubscribeDecode(body)
	case packets.Unsuback:
		err = p.UnsubackDecode(body)
	case packets.Pingreq, packets.Pingresp:
	case packets.Auth:
		err = p.AuthDecode(body)
	default:
		err = fmt.Errorf("invalid packet type %d", fh.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s decode: %w", packets.PacketNames[fh.Type], err)
	}
	idx := mqtt.NewTopicsIndex()
	switch fh.Type {
	case packets.Connect:
		p.ConnectValidate()
	case packets.Publish:
		p.PublishValidate(65535)
		mqtt.IsValidFilter(p.TopicName, true)
		p.FixedHeader.Retain = true
		idx.RetainMessage(p)
		idx.Subscribers(p.TopicName)
	case packets.Subscribe:
		p.SubscribeValidate()
		for _, s := range p.Filters {
			if mqtt.IsValidFilter(s.Filter, false) {
				mqtt.IsSharedFilter(s.Filter)
				idx.Subscribe("c", s)
				idx.Messages(s.Filter)
				idx.Unsubscribe(s.Filter, "c")
			}
		}
	case packets.Unsubscribe:
		p.UnsubscribeValidate()
		for _, s := range p.Filters {
			idx.Unsubscribe(s.Filter, "c")
		}
	case packets.Auth:
		p.AuthValidate()
	}
	return nil, nil
}

// The hazard this package exists for: mochi panics on this packet.
func TestMochiPanicsOnCrashSubscribe(t *testing.T) {
	panicked, _ := mochiDecode(5, crashSubscribe)
	if panicked == nil {
		t.Fatal("mochi no longer panics on 82 06 00 01 00 00 01 74: re-check the doc comment and this package's reasons")
	}
	t.Logf("mochi 2.7.9 on % X: panic: %v", crashSubscribe, panicked)
	if err := Validate(5, crashSubscribe); err == nil {
		t.Fatal("Validate accepts the packet that crashes mochi")
	}
}

func TestMochiDecodesEveryValidVector(t *testing.T) {
	for _, v := range validVectors {
		panicked, err := mochiDecode(v.v, v.pkt)
		if panicked != nil {
			t.Errorf("%s: mochi panics: %v", v.name, panicked)
		}
		if err != nil {
			t.Errorf("%s: mochi refuses what Validate accepts: %v", v.name, err)
		}
	}
}

// mutate derives a packet from seed the way a fuzzer would. With fix it
// rewrites the Remaining Length to match the mutated body, so most mutants
// get past the framing and exercise the field validators.
func mutate(rng *rand.Rand, seed []byte, other []byte) []byte {
	_, n, st := decodeVBI(seed[1:])
	if st != vbiOK {
		n = 0
	}
	first := seed[0]
	body := append([]byte{}, seed[1+n:]...)
	interesting := []byte{0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFF, '+', '#', '/', 0x0B, 0x23, 0x26, 0x1F, 0x15}
	for k := 1 + rng.IntN(3); k > 0; k-- {
		switch op := rng.IntN(9); {
		case op == 0 && len(body) > 0:
			body[rng.IntN(len(body))] ^= 1 << rng.IntN(8)
		case op == 1 && len(body) > 0:
			body[rng.IntN(len(body))] = interesting[rng.IntN(len(interesting))]
		case op == 2 && len(body) > 0:
			body = body[:rng.IntN(len(body))]
		case op == 3:
			i := rng.IntN(len(body) + 1)
			body = append(body[:i], append([]byte{interesting[rng.IntN(len(interesting))]}, body[i:]...)...)
		case op == 4 && len(body) > 0:
			i := rng.IntN(len(body))
			body = append(body[:i], body[i+1:]...)
		case op == 5 && len(other) > 1:
			i, j := rng.IntN(len(other)), rng.IntN(len(other))
			if i > j {
				i, j = j, i
			}
			at := rng.IntN(len(body) + 1)
			body = append(body[:at], append(append([]byte{}, other[i:j]...), body[at:]...)...)
		case op == 6:
			first ^= 1 << rng.IntN(4) // flag bits
		case op == 7 && len(body) > 0:
			body = append(body, body[rng.IntN(len(body)):]...)
		default:
			first = first&0x0F | byte(rng.IntN(16))<<4
		}
	}
	if rng.IntN(4) == 0 {
		return cat(b(first), seed[1:1+n], body) // old length: framing errors
	}
	return cat(b(first), vbi(len(body)), body)
}

// TestMochiCrashProofGenerated mutates every vector many times. Every mutant
// Validate accepts must decode in mochi without a panic and without an error.
// Mutants Validate refuses are decoded too, to show the generator does reach
// mochi's panics (so the property is not vacuous).
func TestMochiCrashProofGenerated(t *testing.T) {
	rounds := 1500
	if testing.Short() {
		rounds = 100
	}
	rng := rand.New(rand.NewPCG(1, 2))
	vs := allVectors()
	var accepted, refused, refusedPanics int
	for r := 0; r < rounds; r++ {
		for _, v := range vs {
			if len(v.pkt) < 2 || v.v > 5 {
				continue
			}
			m := mutate(rng, v.pkt, vs[rng.IntN(len(vs))].pkt)
			panicked, derr := mochiDecode(v.v, m)
			if err := Validate(v.v, m); err != nil {
				refused++
				if panicked != nil {
					refusedPanics++
				}
				continue
			}
			accepted++
			if panicked != nil {
				t.Fatalf("Validate(%d) accepts % X and mochi panics: %v", v.v, m, panicked)
			}
			if derr != nil {
				t.Errorf("Validate(%d) accepts % X and mochi refuses it: %v", v.v, m, derr)
			}
		}
	}
	t.Logf("%d mutants accepted, %d refused, of which %d panic mochi", accepted, refused, refusedPanics)
	if accepted < rounds*len(vs)/40 {
		t.Fatalf("only %d mutants accepted: the generator does not exercise the accepting path", accepted)
	}
	if refusedPanics == 0 {
		t.Fatal("no refused mutant panics mochi: the generator does not reach mochi's weak spots")
	}
}
