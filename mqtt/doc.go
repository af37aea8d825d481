// Package mqtt is the gateway's MQTT face: mochi-mqtt v2 embedded behind the
// project's own adapter. It is the only package that imports mochi.
//
// The flow for one device connection:
//
//	net.Listener.Accept (ours, not mochi's)  ── socket cap (max_connections + pre-CONNECT slack)
//	  └─ wire.NewConn: framing + structural validation, max_packet_size from the
//	     fixed header, CONNECT deadline                     ── mochi sees only valid packets
//	       └─ mochi Server.EstablishConnection              ── blocks until the client is gone
//
// WebSocket connections arrive already turned into a net.Conn by package ws and
// take the same path through Broker.ServeConn.
//
// Why the adapter owns accept loops and shutdown instead of mochi's listeners:
// mochi v2.7.9 has no pre-CONNECT timeout, allocates a packet's declared length
// before reading it, panics on some truncated MQTT 5 packets, and its Close
// writes DISCONNECT to every client under the client's lock without a write
// deadline, so one client that stopped reading hangs shutdown (issue 488).
// Broker.Shutdown instead stops accepting, says goodbye with a write deadline
// (MQTT 5 DISCONNECT 0x8B; 3.1.1 has no server DISCONNECT, the socket is
// closed), waits for connection goroutines, and only then closes mochi.
package mqtt
