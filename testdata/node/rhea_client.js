// AMQP 1.0 test client on rhea (npm), the Node.js peer isthmus is tested
// against. Same contract as testdata/proton/client.py: one JSON object per
// line on stdout ("connected", "attached", "sent", "delivered", "message",
// "drained", "error") and a final {"event":"summary","ok":...} line.
//
// Usage:
//   node rhea_client.js send|receive [options]
//
//   --url URL               amqp://host:port or ws://host:port/path (AMQP over
//                           WebSocket, AMQP WebSocket Binding 1.0, through the
//                           `ws` package and rhea's websocket_connect)
//   --ws-protocol P         WebSocket subprotocol to offer (default "amqp")
//   --address A             target of send, source of receive (default "examples")
//   --count N               messages (default 10; receive 0 = until --idle-exit/drain)
//   --body TEXT             body; {n} is the index (default "message-{n}")
//   --size N                pad or cut each body to N characters
//   --binary                body as one data section (binary), not amqp-value string
//   --snd-settle-mode M     settled | unsettled (default) | mixed (odd ones pre-settled)
//   --rcv-settle-mode M     first (default) | second
//   --credit N              credit window (default 10); 0: exactly --count
//   --drain                 receive: grant --credit with drain=true, stop when drained
//   --idle-exit S           receive: stop after S seconds without a message
//   --user U --password P   SASL PLAIN (without --password: ANONYMOUS with U as trace)
//   --no-sasl               no SASL layer
//   --idle-timeout S        idle-time-out to announce, seconds (heartbeats)
//   --max-frame-size N
//   --hostname H            open.hostname
//   --container-id ID
//   --durable --priority N --ttl S --subject S --content-type T
//   --message-id ID --correlation-id ID --reply-to A --to A     ({n} = index)
//   --property K=V          application property, V parsed as JSON if it parses
//   --annotation K=V        message annotation
//   --timeout S             give up after S seconds (exit 2; default 30; 0 never)
//
// Exit status: 0 when the work finished (the summary counts outcomes), 1 on an
// error from the peer or the transport, 2 on --timeout.
// DEBUG=rhea:frames prints every frame on stderr.
"use strict";

const rhea = require("rhea");

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function parseArgs(argv) {
  const o = {
    mode: argv[0], url: "amqp://127.0.0.1:5672", wsProtocol: "amqp", address: "examples", count: 10,
    body: "message-{n}", size: 0, binary: false, sndSettleMode: "unsettled", rcvSettleMode: "first",
    credit: 10, drain: false, idleExit: 0, user: undefined, password: undefined, noSasl: false,
    idleTimeout: 0, maxFrameSize: 0, hostname: undefined, containerId: undefined, durable: false,
    priority: undefined, ttl: 0, subject: undefined, contentType: undefined, messageId: undefined,
    correlationId: undefined, replyTo: undefined, to: undefined, property: [], annotation: [], timeout: 30,
  };
  const flags = new Set(["binary", "drain", "noSasl", "durable"]);
  const lists = new Set(["property", "annotation"]);
  const numbers = new Set(["count", "size", "credit", "idleExit", "idleTimeout", "maxFrameSize", "priority", "ttl", "timeout"]);
  if (o.mode !== "send" && o.mode !== "receive") usage("mode must be send or receive");
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) usage("unexpected argument " + a);
    const key = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o)) usage("unknown option " + a);
    if (flags.has(key)) { o[key] = true; continue; }
    if (i + 1 >= argv.length) usage(a + " needs a value");
    const v = argv[++i];
    if (lists.has(key)) o[key].push(v);
    else if (numbers.has(key)) {
      o[key] = Number(v);
      if (Number.isNaN(o[key])) usage(a + " needs a number");
    } else o[key] = v;
  }
  if (!["settled", "unsettled", "mixed"].includes(o.sndSettleMode)) usage("bad --snd-settle-mode");
  if (!["first", "second"].includes(o.rcvSettleMode)) usage("bad --rcv-settle-mode");
  return o;
}

function usage(msg) {
  process.stderr.write("rhea_client.js: " + msg + "\n(see the comment at the top of the file)\n");
  process.exit(64);
}

// Values of --property/--annotation: JSON when it parses (5, true, "x"),
// otherwise the text itself.
function parseValue(text) {
  try { return JSON.parse(text); } catch (e) { return text; }
}

function pairs(items) {
  const out = {};
  for (const item of items) {
    const i = item.indexOf("=");
    if (i < 0) usage("expected KEY=VALUE, got " + item);
    out[item.slice(0, i)] = parseValue(item.slice(i + 1));
  }
  return out;
}

// AMQP values as rhea decodes them, made JSON: binary becomes
// {"$binary": base64}, a data/sequence body section keeps its section code.
function jsonable(v) {
  if (v === undefined || v === null) return null;
  if (Buffer.isBuffer(v)) return { $binary: v.toString("base64") };
  if (v instanceof Date) return v.getTime();
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(jsonable);
  if (typeof v === "object") {
    if (v.typecode !== undefined && v.content !== undefined && typeof v.described === "function") {
      return { $section: v.typecode, content: jsonable(v.content), multiple: Boolean(v.multiple) };
    }
    const out = {};
    for (const k of Object.keys(v)) out[k] = jsonable(v[k]);
    return out;
  }
  return v;
}

function bodyType(b) {
  if (b === undefined || b === null) return "null";
  if (typeof b === "object" && b.typecode === 0x75) return "data";
  if (typeof b === "object" && b.typecode === 0x76) return "sequence";
  if (typeof b === "string") return "string";
  if (Buffer.isBuffer(b)) return "binary";
  if (typeof b === "boolean") return "boolean";
  if (typeof b === "number") return "number";
  if (Array.isArray(b)) return "list";
  return "map";
}

function messageEvent(n, m, delivery, link) {
  return {
    event: "message", n,
    body: jsonable(m.body), body_type: bodyType(m.body),
    header: { durable: Boolean(m.durable), priority: m.priority === undefined ? null : m.priority,
      ttl: m.ttl === undefined ? null : m.ttl, first_acquirer: Boolean(m.first_acquirer),
      delivery_count: m.delivery_count || 0 },
    properties: {
      message_id: jsonable(m.message_id), user_id: jsonable(m.user_id), to: jsonable(m.to),
      subject: jsonable(m.subject), reply_to: jsonable(m.reply_to), correlation_id: jsonable(m.correlation_id),
      content_type: jsonable(m.content_type), content_encoding: jsonable(m.content_encoding),
      absolute_expiry_time: jsonable(m.absolute_expiry_time), creation_time: jsonable(m.creation_time),
      group_id: jsonable(m.group_id), group_sequence: jsonable(m.group_sequence),
      reply_to_group_id: jsonable(m.reply_to_group_id),
    },
    application_properties: jsonable(m.application_properties),
    annotations: jsonable(m.message_annotations),
    delivery_annotations: jsonable(m.delivery_annotations),
    // settled: the sender sent it pre-settled (at-most-once).
    settled: Boolean(delivery.remote_settled),
    tag: delivery.tag ? delivery.tag.toString() : null,
    link: link.name,
  };
}

const o = parseArgs(process.argv.slice(2));
const container = rhea.create_container(o.containerId ? { id: o.containerId } : {});

const st = { sent: 0, settledSent: 0, outcomes: {}, received: 0, waitingSettle: 0, bodies: [], errors: [],
  timedOut: false, done: false };
let conn = null;
let idleTimer = null;

function fail(on, condition, description) {
  const err = { event: "error", on, condition: String(condition), description: description === undefined ? null : String(description) };
  emit(err);
  if (!st.done) st.errors.push(err);
}

function finish() {
  if (st.done) return;
  st.done = true;
  clearTimeout(timer);
  clearTimeout(idleTimer);
  const summary = { event: "summary", mode: o.mode, sent: st.sent, settled_sent: st.settledSent,
    outcomes: st.outcomes, received: st.received, bodies: st.bodies, errors: st.errors,
    timed_out: st.timedOut, ok: st.errors.length === 0 };
  const exit = () => {
    emit(summary);
    process.exit(st.timedOut ? 2 : (summary.ok ? 0 : 1));
  };
  // Close politely and wait for the peer's close (so our last frames are on
  // the wire), but not forever.
  if (conn && conn.is_open()) {
    conn.once("connection_close", exit);
    conn.once("disconnected", exit);
    conn.close();
    setTimeout(exit, 2000).unref();
  } else exit();
}

const timer = o.timeout > 0 ? setTimeout(() => {
  st.errors.push({ event: "error", on: "client", condition: "timeout", description: `no result after ${o.timeout}s` });
  st.timedOut = true;
  finish();
}, o.timeout * 1000) : null;

function resetIdle() {
  if (o.mode !== "receive" || !o.idleExit) return;
  clearTimeout(idleTimer);
  idleTimer = setTimeout(finish, o.idleExit * 1000);
}

// --- connection ------------------------------------------------------------

const url = new URL(o.url);
const connOpts = { reconnect: false };
if (o.noSasl) connOpts.sasl = { enabled: false };
if (o.user !== undefined) {
  connOpts.username = o.user;
  if (o.password !== undefined) connOpts.password = o.password;
}
if (o.idleTimeout) connOpts.idle_time_out = Math.round(o.idleTimeout * 1000);
if (o.maxFrameSize) connOpts.max_frame_size = o.maxFrameSize;
if (o.hostname) connOpts.hostname = o.hostname;
if (url.protocol === "ws:" || url.protocol === "wss:") {
  // AMQP WebSocket Binding: every WebSocket binary message carries AMQP
  // bytes; rhea wraps the socket and ignores host/port.
  const WebSocket = require("ws");
  const wsConnect = container.websocket_connect(WebSocket);
  connOpts.connection_details = wsConnect(o.url, [o.wsProtocol], {});
} else {
  connOpts.host = url.hostname;
  connOpts.port = Number(url.port || 5672);
}

container.on("connection_open", (ctx) => {
  const c = ctx.connection;
  emit({ event: "connected", remote_container: (c.remote.open && c.remote.open.container_id) || null,
    remote_hostname: c.remote.open ? c.remote.open.hostname || null : null,
    remote_idle_timeout_ms: c.remote.open && c.remote.open.idle_time_out ? c.remote.open.idle_time_out : null,
    remote_max_frame_size: c.remote.open ? c.remote.open.max_frame_size : null,
    remote_offered_capabilities: jsonable(c.remote.open ? c.remote.open.offered_capabilities : null),
    remote_properties: jsonable(c.remote.open ? c.remote.open.properties : null) });
});

container.on("connection_error", (ctx) => {
  // SASL failures are local transport errors (get_error), protocol
  // ones arrive in the peer's close (error).
  const c = ctx.connection;
  const e = (c.get_error && c.get_error()) || c.error || {};
  fail("connection", e.condition || "error", e.description || e.message);
});
container.on("connection_close", () => { if (!st.done) { fail("connection", "closed", "peer closed the connection"); finish(); } });
container.on("session_error", (ctx) => { const e = ctx.session.error || {}; fail("session", e.condition, e.description); finish(); });
container.on("sender_error", (ctx) => { const e = ctx.sender.error || {}; fail("link", e.condition, e.description); finish(); });
container.on("receiver_error", (ctx) => { const e = ctx.receiver.error || {}; fail("link", e.condition, e.description); finish(); });
container.on("sender_close", () => { if (!st.done) { fail("link", "closed", "peer closed the link"); finish(); } });
container.on("receiver_close", () => { if (!st.done) { fail("link", "closed", "peer closed the link"); finish(); } });
container.on("protocol_error", (ctx) => { fail("transport", "protocol-error", ctx.error); finish(); });
container.on("error", (ctx) => { fail("transport", "error", ctx.error && ctx.error.message ? ctx.error.message : ctx.error); finish(); });
container.on("disconnected", (ctx) => {
  if (!st.done) {
    fail("transport", "disconnected", ctx.error && ctx.error.message ? ctx.error.message : "connection lost before the work was done");
    finish();
  }
});

function attachedEvent(link, role) {
  const r = link.remote.attach || {};
  emit({ event: "attached", name: link.name, role,
    source: r.source ? r.source.address || null : null, target: r.target ? r.target.address || null : null,
    snd_settle_mode: r.snd_settle_mode === undefined ? 0 : r.snd_settle_mode,
    rcv_settle_mode: r.rcv_settle_mode === undefined ? 0 : r.rcv_settle_mode });
}

const SND = { unsettled: 0, settled: 1, mixed: 2 };
const RCV = { first: 0, second: 1 };

conn = container.connect(connOpts);

// --- send -------------------------------------------------------------------

function makeMessage(n) {
  let text = o.body.split("{n}").join(String(n));
  if (o.size) text = text.length < o.size ? (text + "-" + "x".repeat(o.size)).slice(0, o.size) : text.slice(0, o.size);
  const m = { body: o.binary ? rhea.message.data_section(Buffer.from(text, "utf8")) : text };
  if (o.durable) m.durable = true;
  if (o.priority !== undefined) m.priority = o.priority;
  if (o.ttl) m.ttl = Math.round(o.ttl * 1000);
  if (o.subject) m.subject = o.subject;
  if (o.contentType) m.content_type = o.contentType;
  if (o.messageId) m.message_id = o.messageId.split("{n}").join(String(n));
  if (o.correlationId) m.correlation_id = o.correlationId.split("{n}").join(String(n));
  if (o.replyTo) m.reply_to = o.replyTo;
  if (o.to) m.to = o.to;
  if (o.property.length) m.application_properties = pairs(o.property);
  if (o.annotation.length) m.message_annotations = pairs(o.annotation);
  return { m, size: text.length };
}

function checkSendDone() {
  const outcomes = Object.values(st.outcomes).reduce((a, b) => a + b, 0);
  if (st.sent >= o.count && st.settledSent + outcomes >= st.sent) finish();
}

if (o.mode === "send") {
  // autosettle off: settle when the outcome arrives, settled or not, which a
  // rcv-second receiver waits for (AMQP 1.0 §2.6.12).
  const sender = conn.open_sender({ target: { address: o.address }, autosettle: false,
    snd_settle_mode: SND[o.sndSettleMode], rcv_settle_mode: RCV[o.rcvSettleMode] });
  sender.on("sender_open", (ctx) => attachedEvent(ctx.sender, "sender"));
  sender.on("sendable", (ctx) => {
    const s = ctx.sender;
    while (s.sendable() && st.sent < o.count) {
      const n = st.sent;
      const { m, size } = makeMessage(n);
      const d = s.send(m);
      d.n = n;
      let pre = o.sndSettleMode === "settled";
      if (o.sndSettleMode === "mixed" && n % 2 === 1) {
        // Mixed: the sender picks per delivery (AMQP 1.0 §2.7.5).
        d.settled = true;
        pre = true;
      }
      if (pre) st.settledSent++;
      st.sent++;
      emit({ event: "sent", n, settled: pre, tag: d.tag.toString(), size });
    }
    checkSendDone();
  });
  const outcome = (name) => (ctx) => {
    const d = ctx.delivery;
    const ev = { event: "delivered", n: d.n === undefined ? null : d.n, outcome: name,
      remote_settled: Boolean(d.remote_settled), link: ctx.sender.name };
    if (name === "rejected" && d.remote_state && d.remote_state.error) {
      ev.condition = String(d.remote_state.error.condition);
      ev.description = d.remote_state.error.description || null;
    }
    emit(ev);
    st.outcomes[name] = (st.outcomes[name] || 0) + 1;
    if (!d.settled) d.update(true);
    checkSendDone();
  };
  sender.on("accepted", outcome("accepted"));
  sender.on("rejected", outcome("rejected"));
  sender.on("released", outcome("released"));
  sender.on("modified", outcome("modified"));
}

// --- receive ----------------------------------------------------------------

if (o.mode === "receive") {
  const manual = o.drain || o.credit === 0;
  const receiver = conn.open_receiver({ source: { address: o.address }, credit_window: manual ? 0 : o.credit,
    autoaccept: true, snd_settle_mode: SND[o.sndSettleMode], rcv_settle_mode: RCV[o.rcvSettleMode] });
  receiver.on("receiver_open", (ctx) => {
    attachedEvent(ctx.receiver, "receiver");
    if (o.drain) {
      // Drain (AMQP 1.0 §2.6.7): credit plus drain=true; the sender uses it
      // or gives it back with a flow, which rhea reports as receiver_drained.
      ctx.receiver.add_credit(o.credit);
      ctx.receiver.drain_credit();
    } else if (o.credit === 0 && o.count) {
      ctx.receiver.add_credit(o.count);
    }
    resetIdle();
  });
  receiver.on("receiver_drained", () => {
    if (!o.drain || !receiver.drain) return;
    receiver.drain = false;
    emit({ event: "drained", received: st.received });
    finish();
  });
  receiver.on("message", (ctx) => {
    emit(messageEvent(st.received, ctx.message, ctx.delivery, ctx.receiver));
    st.received++;
    st.bodies.push(jsonable(ctx.message.body));
    // autoaccept answers (unsettled in rcv-second); rhea settles when the
    // sender's settlement arrives ("settled" below).
    if (o.rcvSettleMode === "second" && !ctx.delivery.remote_settled) st.waitingSettle++;
    resetIdle();
    checkReceiveDone();
  });
  receiver.on("settled", () => {
    st.waitingSettle--;
    checkReceiveDone();
  });
}

function checkReceiveDone() {
  if (o.count && st.received >= o.count && st.waitingSettle <= 0) finish();
}
