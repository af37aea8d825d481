// A rhea (npm) container that listens and acts as a small in-memory queue
// broker, the Node.js counterpart of testdata/proton/broker.py.
//
// Usage:
//   node rhea_server.js [--host 127.0.0.1] [--port 0] [--ws-port -1]
//                       [--ws-path PATH] [--users user:pass,...] [--credit 100]
//
//   --port 0       any free port; the first stdout line always says which:
//                  {"event":"listening","host":"127.0.0.1","port":40123,"ws_port":null}
//   --ws-port N    also accept AMQP over WebSocket (AMQP WebSocket Binding,
//                  subprotocol "amqp") on N (0: any free port); -1 (default): off
//   --ws-path P    accept WebSocket upgrades on path P only (default: any path)
//   --users LIST   also offer SASL PLAIN for these user:password pairs
//                  (ANONYMOUS stays allowed)
//
// Queues: one FIFO per address, made on first use; a receiver attaching with
// a dynamic source (AMQP 1.0 §3.5.3) gets a temporary queue; a sender with a
// null target routes each message by its properties.to. Settle modes are
// mirrored from the peer's attach (AMQP 1.0 §2.6.12), rcv-second included.
// Released or modified deliveries go back to the head of their queue; a drain
// request (AMQP 1.0 §2.6.7) is answered after sending what the queue holds.
// Attaches, detaches and connections are printed as JSON lines. Stop with
// SIGTERM or SIGINT.
"use strict";

const rhea = require("rhea");

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const opts = { host: "127.0.0.1", port: 0, wsPort: -1, wsPath: "", users: "", credit: 100 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  if (!(key in opts) || i + 1 >= argv.length) {
    process.stderr.write("rhea_server.js: bad option " + argv[i] + " (see the comment at the top)\n");
    process.exit(64);
  }
  opts[key] = typeof opts[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
}

const container = rhea.create_container({ id: "rhea-server-" + process.pid });
if (opts.users) {
  const users = new Map(opts.users.split(",").map((p) => { const i = p.indexOf(":"); return [p.slice(0, i), p.slice(i + 1)]; }));
  container.sasl_server_mechanisms.enable_plain((user, pass) => users.has(user) && users.get(user) === pass);
  container.sasl_server_mechanisms.enable_anonymous();
}

class Queue {
  constructor(address, dynamic) {
    this.address = address;
    this.dynamic = dynamic;
    this.messages = [];
    this.consumers = [];
    this.next = 0; // round-robin position
  }
  publish(m) { this.messages.push(m); this.dispatch(); }
  requeue(m) { this.messages.unshift(m); this.dispatch(); }
  dispatch() {
    let progress = true;
    while (this.messages.length && progress) {
      progress = false;
      for (let i = 0; i < this.consumers.length && this.messages.length; i++) {
        const s = this.consumers[(this.next + i) % this.consumers.length];
        if (s.is_open() && s.sendable()) {
          const m = this.messages.shift();
          const d = s.send(m);
          d.queued = { queue: this, message: m };
          progress = true;
        }
      }
      this.next++;
    }
  }
}

const queues = new Map();
function queue(address, dynamic) {
  let q = queues.get(address);
  if (!q) { q = new Queue(address, Boolean(dynamic)); queues.set(address, q); }
  return q;
}
function unsubscribe(sender) {
  const q = sender.queue;
  if (!q) return;
  q.consumers = q.consumers.filter((s) => s !== sender);
  if (!q.consumers.length && (q.dynamic || !q.messages.length)) queues.delete(q.address);
  sender.queue = undefined;
}

function mirrorSettleModes(link) {
  const r = link.remote.attach;
  link.local.attach.snd_settle_mode = r.snd_settle_mode || 0;
  link.local.attach.rcv_settle_mode = r.rcv_settle_mode || 0;
}

container.on("connection_open", (ctx) => {
  emit({ event: "connection", remote_container: ctx.connection.remote.open.container_id });
});

// A peer's receiver attached: we are its sender, feeding it from a queue.
container.on("sender_open", (ctx) => {
  const s = ctx.sender;
  mirrorSettleModes(s);
  const src = s.remote.attach.source || {};
  let address = src.address;
  if (src.dynamic) {
    address = "dynamic-" + rhea.generate_uuid();
    s.set_source({ address, dynamic: true });
  } else {
    s.set_source({ address });
  }
  s.set_target(s.remote.attach.target || {});
  emit({ event: "attach", name: s.name, role: "sender", source: address || null,
    snd_settle_mode: s.local.attach.snd_settle_mode, rcv_settle_mode: s.local.attach.rcv_settle_mode });
  if (address) {
    const q = queue(address, src.dynamic);
    // rhea writes a session's transfers before its links' attach frames
    // within one processing pass, so a message sent now (a peer that sends
    // attach and flow together makes us sendable at once) would precede our
    // attach. rhea flushes on process.nextTick; setImmediate runs after it.
    setImmediate(() => {
      if (!s.is_open()) return;
      s.queue = q;
      q.consumers.push(s);
      q.dispatch();
    });
  }
});

// A peer's sender attached: we receive into queues.
container.on("receiver_open", (ctx) => {
  const r = ctx.receiver;
  mirrorSettleModes(r);
  r.set_target(r.remote.attach.target || {});
  r.set_source(r.remote.attach.source || {});
  // rhea grants credit_window on receiver_open for links it creates; links
  // the peer opened get ours here.
  if (r.credit === 0) r.add_credit(opts.credit);
  emit({ event: "attach", name: r.name, role: "receiver",
    target: (r.remote.attach.target && r.remote.attach.target.address) || null,
    snd_settle_mode: r.local.attach.snd_settle_mode, rcv_settle_mode: r.local.attach.rcv_settle_mode });
});

container.on("message", (ctx) => {
  const r = ctx.receiver;
  const d = ctx.delivery;
  const target = r.remote.attach.target;
  const address = (target && target.address) || ctx.message.to;
  if (!address) {
    d.reject({ condition: "amqp:not-found", description: "message has no properties.to" });
  } else {
    queue(address).publish(ctx.message);
    // With autoaccept on (rhea's default) the container has already
    // accepted; in rcv-second mode that disposition is unsettled and we
    // settle on the sender's settlement below.
  }
  // Keep the window open like a broker would.
  if (r.credit < opts.credit / 2) r.add_credit(opts.credit - r.credit);
});

container.on("settled", (ctx) => {
  const d = ctx.delivery;
  if (ctx.receiver && !d.settled) d.update(true); // rcv-second: sender settled first
});

container.on("sendable", (ctx) => { if (ctx.sender.queue) ctx.sender.queue.dispatch(); });
// Drain (AMQP 1.0 §2.6.7): send what the queue has, then hand back the
// credit left: either it is all used or the queue is empty.
container.on("sender_draining", (ctx) => {
  const s = ctx.sender;
  if (s.queue) s.queue.dispatch();
  s.set_drained(true);
});

// Outcomes from consumers: settle (the broker is done with the message) and
// requeue released/modified ones (AMQP 1.0 §3.4.4, §3.4.5).
function settle(ctx) { if (!ctx.delivery.settled) ctx.delivery.update(true); }
container.on("accepted", settle);
container.on("rejected", settle);
container.on("released", (ctx) => {
  const q = ctx.delivery.queued;
  if (q) { ctx.delivery.queued = undefined; q.queue.requeue(q.message); }
  settle(ctx);
});

container.on("sender_close", (ctx) => { emit({ event: "detach", name: ctx.sender.name }); unsubscribe(ctx.sender); });
container.on("receiver_close", (ctx) => emit({ event: "detach", name: ctx.receiver.name }));
function dropConnection(ctx) {
  const c = ctx.connection;
  for (const q of Array.from(queues.values())) {
    for (const s of q.consumers.slice()) if (s.connection === c) unsubscribe(s);
  }
}
container.on("connection_close", dropConnection);
container.on("disconnected", dropConnection);
container.on("error", (ctx) => emit({ event: "error", description: String(ctx.error && ctx.error.message ? ctx.error.message : ctx.error) }));

const server = container.listen({ host: opts.host, port: opts.port });
let wsPort = null;
let pending = opts.wsPort >= 0 ? 2 : 1;
let tcpPort = null;
function ready() {
  if (--pending === 0) emit({ event: "listening", host: opts.host, port: tcpPort, ws_port: wsPort });
}
server.on("listening", () => { tcpPort = server.address().port; ready(); });
server.on("error", (e) => { process.stderr.write("listen: " + e.message + "\n"); process.exit(1); });

let wss = null;
if (opts.wsPort >= 0) {
  const WebSocket = require("ws");
  wss = new WebSocket.Server({
    host: opts.host, port: opts.wsPort, path: opts.wsPath || undefined,
    // AMQP WebSocket Binding: the subprotocol is "amqp".
    handleProtocols: (protocols) => (protocols.has("amqp") ? "amqp" : false),
  });
  wss.on("listening", () => { wsPort = wss.address().port; ready(); });
  wss.on("connection", (socket) => container.websocket_accept(socket));
  wss.on("error", (e) => { process.stderr.write("ws listen: " + e.message + "\n"); process.exit(1); });
}

function stop() {
  server.close();
  if (wss) wss.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
