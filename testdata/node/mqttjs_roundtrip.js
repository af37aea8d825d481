// MQTT.js over WebSocket against isthmus: subscribe, publish at QoS 1, print
// what came back as one JSON line. Usage:
//   node mqttjs_roundtrip.js URL PROTOCOL_VERSION [ORIGIN]
// Exit 0 after printing {"topic":..,"payload":..,"qos":..}; exit 2 on error
// (printing {"error": ...}) — the Go test asserts either outcome.
const mqtt = require("mqtt");

const [url, version, origin] = process.argv.slice(2);
const opts = {
  protocolVersion: Number(version),
  clientId: "mqttjs-" + process.pid,
  reconnectPeriod: 0,
  connectTimeout: 5000,
};
if (origin) opts.wsOptions = { headers: { Origin: origin } };

let done = false;
const fail = (err) => {
  if (done) return; // errors while closing after success do not count
  console.log(JSON.stringify({ error: String(err && err.message ? err.message : err) }));
  process.exit(2);
};
const timer = setTimeout(() => fail("timeout"), 8000);
const client = mqtt.connect(url, opts);
client.on("error", fail);
client.on("close", () => { if (!client.connected) fail("closed before connect"); });
client.on("connect", () => {
  client.subscribe("js/echo", { qos: 1 }, (err) => {
    if (err) return fail(err);
    const props = Number(version) === 5 ? { properties: { contentType: "text/plain", userProperties: { from: "mqttjs" } } } : {};
    client.publish("js/echo", "hello over websocket", { qos: 1, ...props });
  });
});
client.on("message", (topic, payload, packet) => {
  clearTimeout(timer);
  done = true;
  const out = { topic, payload: payload.toString(), qos: packet.qos };
  if (packet.properties) out.properties = packet.properties;
  console.log(JSON.stringify(out));
  client.end(false, () => process.exit(0));
});
