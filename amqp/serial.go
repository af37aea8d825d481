package amqp

// Serial-number arithmetic of RFC 1982 on 32 bits, used for delivery-count, delivery-id and
// transfer-id (AMQP 1.0 §2.8.9 sequence-no: "32-bit RFC-1982 serial number").

// serialDiff returns a − b as a signed distance, valid while the two are less than 2^31 apart.
func serialDiff(a, b uint32) int64 { return int64(int32(a - b)) }

// serialLess reports a < b in serial order. RFC 1982 §3.2.
func serialLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// serialInRange reports first ≤ x ≤ last in serial order.
func serialInRange(x, first, last uint32) bool { return !serialLess(x, first) && !serialLess(last, x) }

// clampWindow turns a signed window into the uint32 a field carries: negative becomes 0, never a
// wrap-around to 4294967295 (go-amqp PR #48, PROTON-2790).
func clampWindow(v int64) uint32 {
	switch {
	case v < 0:
		return 0
	case v > 0xFFFFFFFF:
		return 0xFFFFFFFF
	}
	return uint32(v)
}
