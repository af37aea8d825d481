#!/usr/bin/python3
"""AMQP 1.0 test client built on Qpid Proton (Debian python3-qpid-proton).

isthmus tests drive this real peer against the project's AMQP 1.0 engine,
the gateway and other brokers. It prints one JSON object per line on stdout,
so a test can assert on every event without scraping prose:

    {"event": "connected", ...}              connection opened by the peer
    {"event": "attached", "role": ...}       a link was opened by the peer
    {"event": "sent", "n": 0, ...}           a message was written to the link
    {"event": "delivered", "n": 0, ...}      its outcome (accepted/rejected/
                                             released/modified) arrived
    {"event": "message", "n": 0, ...}        a message arrived: body,
                                             properties, application_properties,
                                             annotations, settled state
    {"event": "drained", ...}                a drain request completed
    {"event": "error", ...}                  a condition from the peer
    {"event": "summary", "ok": true, ...}    always the last line

Modes:
    send      send --count messages to --address, wait for every outcome
    receive   receive --count messages from --address (0: until --idle-exit
              seconds pass without a message, or until drained with --drain)
    request   request-reply: open a dynamic receiver for replies, send --count
              requests to --address with reply_to set, wait for each reply
    serve     the other half of request-reply: receive requests on --address
              and send each body back to its reply_to with the same
              correlation_id (--count 0: forever)

Exit status: 0 when the mode's work finished (whatever the outcomes were: the
summary counts them), 1 on an error from the peer or the connection, 2 on
--timeout. Run with PN_TRACE_FRM=1 to see every frame on stderr.
"""

import argparse
import base64
import json
import sys
import uuid

from cproton import pn_message_get_content_encoding, pn_message_get_content_type
from proton import Delivery, Described, Endpoint, Link, Message, symbol
from proton.handlers import MessagingHandler
from proton.reactor import Container, LinkOption


def emit(obj):
    """Print one JSON line and flush it, so a parent reading a pipe sees it now."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def jsonable(v):
    """Turns an AMQP value decoded by Proton into plain JSON.

    binary becomes {"$binary": base64} so it cannot be mistaken for a string;
    described values keep their descriptor; timestamps are milliseconds.
    """
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$binary": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, Described):
        return {"$described": [jsonable(v.descriptor), jsonable(v.value)]}
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


def body_type(v):
    """The AMQP type name of a body section, for assertions on encoding."""
    if v is None:
        return "null"
    if isinstance(v, symbol):
        return "symbol"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "binary"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, (list, tuple)):
        return "list"
    return type(v).__name__


OUTCOMES = {
    Delivery.ACCEPTED: "accepted",
    Delivery.REJECTED: "rejected",
    Delivery.RELEASED: "released",
    Delivery.MODIFIED: "modified",
    Delivery.RECEIVED: "received",
}


def outcome_name(state):
    return OUTCOMES.get(state, None if not state else str(state))


def millis(seconds):
    """Proton gives times in float seconds; AMQP carries milliseconds
    (AMQP 1.0 §3.2.1 ttl, §3.2.4 timestamps). 0 means unset."""
    return int(round(seconds * 1000)) if seconds else None


def raw_symbol(getter, msg):
    """content-type and content-encoding are symbols; Proton's Python
    property turns an unset one into symbol('None'), so read the C field."""
    v = getter(msg._msg)
    return None if v is None else str(v)


def message_event(n, msg, dlv):
    """Every field of a received message, as JSON."""
    return {
        "event": "message",
        "n": n,
        "body": jsonable(msg.body),
        "body_type": body_type(msg.body),
        "inferred": msg.inferred,
        "header": {
            "durable": msg.durable,
            "priority": msg.priority,
            "ttl": millis(msg.ttl),
            "first_acquirer": msg.first_acquirer,
            "delivery_count": msg.delivery_count,
        },
        "properties": {
            "message_id": jsonable(msg.id),
            "user_id": jsonable(msg.user_id) if msg.user_id else None,
            "to": msg.address,
            "subject": msg.subject,
            "reply_to": msg.reply_to,
            "correlation_id": jsonable(msg.correlation_id),
            "content_type": raw_symbol(pn_message_get_content_type, msg),
            "content_encoding": raw_symbol(pn_message_get_content_encoding, msg),
            "absolute_expiry_time": millis(msg.expiry_time),
            "creation_time": millis(msg.creation_time),
            "group_id": msg.group_id,
            "group_sequence": msg.group_sequence,
            "reply_to_group_id": msg.reply_to_group_id,
        },
        "application_properties": jsonable(msg.properties),
        "annotations": jsonable(msg.annotations),
        "delivery_annotations": jsonable(msg.instructions),
        # settled: the sender sent it pre-settled (at-most-once) or has
        # settled it by the time we decoded it.
        "settled": dlv.settled,
        "tag": jsonable(dlv.tag),
        "link": dlv.link.name,
    }


def parse_value(text):
    """Values of --property/--annotation: JSON when it parses (5, true,
    "x", 1.5), otherwise the text as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(items, key_type=str):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit("expected KEY=VALUE, got %r" % item)
        k, v = item.split("=", 1)
        out[key_type(k)] = parse_value(v)
    return out


class SettleModes(LinkOption):
    """Sets the settle modes this end asks for in its attach (AMQP 1.0 §2.6.12)."""

    def __init__(self, snd, rcv):
        self.snd, self.rcv = snd, rcv

    def apply(self, link):
        if self.snd is not None:
            link.snd_settle_mode = self.snd
        if self.rcv is not None:
            link.rcv_settle_mode = self.rcv


SND_MODES = {"settled": Link.SND_SETTLED, "unsettled": Link.SND_UNSETTLED, "mixed": Link.SND_MIXED}
RCV_MODES = {"first": Link.RCV_FIRST, "second": Link.RCV_SECOND}


class Client(MessagingHandler):
    def __init__(self, opts):
        # Credit is ours to manage with --drain (prefetch 0); otherwise
        # Proton's flow controller keeps a window of --credit open.
        prefetch = 0 if (opts.drain or opts.credit == 0) else opts.credit
        super(Client, self).__init__(prefetch=prefetch, auto_accept=False, auto_settle=False)
        self.o = opts
        self.sent = 0          # messages written
        self.outcomes = {}     # outcome name -> count
        self.settled_sent = 0  # deliveries sent pre-settled (no outcome expected)
        self.received = 0
        self.unsettled_in = 0  # rcv-second deliveries waiting for the sender to settle
        self.replied = 0
        self.bodies = []
        self.errors = []
        self.done = False
        self.timed_out = False
        self.sender = self.receiver = self.conn = None
        self.reply_to = None
        self.tasks = []       # timers to cancel on finish
        self.link_opts = [SettleModes(SND_MODES[opts.snd_settle_mode], RCV_MODES[opts.rcv_settle_mode])]

    # -- connection ---------------------------------------------------------

    def on_start(self, event):
        o = self.o
        kw = {"reconnect": False, "sasl_enabled": not o.no_sasl}
        if o.user is not None:
            kw["user"] = o.user
            kw["password"] = o.password or ""
        if o.mechs:
            kw["allowed_mechs"] = o.mechs
        # PLAIN over an unencrypted loopback socket is what tests do.
        kw["allow_insecure_mechs"] = True
        if o.idle_timeout:
            kw["heartbeat"] = o.idle_timeout
        if o.max_frame_size:
            kw["max_frame_size"] = o.max_frame_size
        if o.virtual_host:
            kw["virtual_host"] = o.virtual_host
        if o.container_id:
            event.container.container_id = o.container_id
        self.conn = event.container.connect(o.url, **kw)
        self.container = event.container
        if o.timeout > 0:
            self.tasks.append(event.container.schedule(o.timeout, self.Timeout(self)))

        if o.mode == "send":
            self.sender = event.container.create_sender(self.conn, o.address, options=self.link_opts)
        elif o.mode in ("receive", "serve"):
            self.receiver = event.container.create_receiver(self.conn, o.address, options=self.link_opts)
            if o.mode == "serve":
                # Replies go to each request's reply_to through one anonymous
                # sender (null target; AMQP 1.0 §3.5.3, the "anonymous relay").
                self.sender = event.container.create_sender(self.conn, None, options=self.link_opts)
        elif o.mode == "request":
            self.receiver = event.container.create_receiver(self.conn, None, dynamic=True, options=self.link_opts)
            self.sender = event.container.create_sender(self.conn, o.address, options=self.link_opts)

    class Timeout(object):
        def __init__(self, client):
            self.client = client

        def on_timer_task(self, event):
            c = self.client
            if not c.done:
                c.timed_out = True
                c.errors.append({"condition": "timeout", "description": "no result after %ss" % c.o.timeout})
                c.finish()

    class IdleExit(object):
        def __init__(self, client, received):
            self.client, self.received = client, received

        def on_timer_task(self, event):
            if self.client.received == self.received and not self.client.done:
                self.client.finish()

    def on_connection_opened(self, event):
        c = event.connection
        emit({
            "event": "connected",
            "remote_container": c.remote_container,
            "remote_hostname": c.remote_hostname,
            "remote_offered_capabilities": jsonable(c.remote_offered_capabilities),
            "remote_properties": jsonable(c.remote_properties),
            "remote_idle_timeout_ms": millis(event.transport.remote_idle_timeout) if event.transport else None,
            "remote_max_frame_size": event.transport.remote_max_frame_size if event.transport else None,
            "user": event.transport.user if event.transport else None,
        })

    def on_link_opened(self, event):
        link = event.link
        ev = {
            "event": "attached",
            "name": link.name,
            "role": "sender" if link.is_sender else "receiver",
            "source": link.remote_source.address,
            "target": link.remote_target.address,
            "snd_settle_mode": link.remote_snd_settle_mode,
            "rcv_settle_mode": link.remote_rcv_settle_mode,
        }
        emit(ev)
        if link.is_receiver and self.o.mode == "request":
            # The peer names the dynamic node in its attach (AMQP 1.0 §3.5.3).
            self.reply_to = link.remote_source.address
            self.send_available(self.sender)
        if link.is_receiver and self.o.drain:
            # Drain (AMQP 1.0 §2.6.7): grant credit and ask the sender to use
            # it all now or give it back; on_link_flow sees the result.
            link.drain(self.o.credit)
        elif link.is_receiver and self.o.credit == 0 and self.o.count:
            link.flow(self.o.count)
        if link.is_receiver and self.o.mode == "receive" and self.o.idle_exit:
            self.tasks.append(self.container.schedule(self.o.idle_exit, self.IdleExit(self, self.received)))

    def on_link_flow(self, event):
        link = event.link
        if link.is_receiver and self.o.drain and link.drain_mode and not link.draining() and link.credit == 0:
            # The sender answered the drain with a flow of credit 0.
            link.drain_mode = False
            emit({"event": "drained", "received": self.received})
            if self.o.mode == "receive":
                self.finish()

    def check_condition(self, what, endpoint):
        cond = endpoint.remote_condition
        if cond:
            err = {"event": "error", "on": what, "condition": str(cond.name), "description": cond.description}
            emit(err)
            self.errors.append(err)
            return True
        return False

    def on_connection_error(self, event):
        self.check_condition("connection", event.connection)
        self.finish()

    def on_session_error(self, event):
        self.check_condition("session", event.session)
        self.finish()

    def on_link_error(self, event):
        self.check_condition("link", event.link)
        self.finish()

    def on_link_closed(self, event):
        if not self.done:
            if not self.check_condition("link", event.link):
                self.errors.append({"event": "error", "on": "link", "condition": "closed", "description": "peer closed link %s" % event.link.name})
            self.finish()

    def on_transport_error(self, event):
        cond = event.transport.condition
        err = {"event": "error", "on": "transport",
               "condition": str(cond.name) if cond else "transport",
               "description": cond.description if cond else None}
        emit(err)
        if not self.done:
            self.errors.append(err)
        self.abort()

    def on_disconnected(self, event):
        if not self.done:
            self.errors.append({"event": "error", "on": "transport", "condition": "disconnected",
                                "description": "connection lost before the work was done"})
        self.abort()

    def abort(self):
        """The socket is gone: nothing left to say, stop now."""
        self.done = True
        for task in self.tasks:
            task.cancel()
        self.container.stop()

    # -- sending ------------------------------------------------------------

    def make_message(self, n):
        o = self.o
        text = o.body.replace("{n}", str(n))
        if o.size:
            text = (text + "-" + "x" * o.size)[:o.size] if len(text) < o.size else text[:o.size]
        body = text.encode("utf-8") if o.binary else text
        m = Message(body=body)
        m.durable = o.durable
        if o.priority is not None:
            m.priority = o.priority
        if o.ttl:
            m.ttl = o.ttl
        if o.subject:
            m.subject = o.subject
        if o.content_type:
            m.content_type = symbol(o.content_type)
        if o.message_id:
            m.id = o.message_id.replace("{n}", str(n))
        if o.correlation_id:
            m.correlation_id = o.correlation_id.replace("{n}", str(n))
        if o.reply_to:
            m.reply_to = o.reply_to
        if o.to:
            m.address = o.to
        if o.property:
            m.properties = parse_pairs(o.property)
        if o.annotation:
            m.annotations = parse_pairs(o.annotation, symbol)
        return m

    def on_sendable(self, event):
        if event.link == self.sender and self.o.mode in ("send", "request"):
            self.send_available(event.link)

    def send_available(self, link):
        if self.o.mode == "request" and self.reply_to is None:
            return  # no reply address yet
        while link.credit > 0 and self.sent < self.o.count:
            n = self.sent
            m = self.make_message(n)
            if self.o.mode == "request":
                m.reply_to = self.reply_to
                m.correlation_id = "req-%d" % n
            dlv = link.send(m)  # settles it itself when snd-settle-mode is settled
            dlv.n = n
            presettled = link.snd_settle_mode == Link.SND_SETTLED
            if not presettled and self.o.snd_settle_mode == "mixed" and n % 2 == 1:
                # Mixed mode: the sender chooses per delivery (AMQP 1.0
                # §2.7.5); odd ones go pre-settled to exercise both paths.
                dlv.settle()
                presettled = True
            if presettled:
                self.settled_sent += 1
            self.sent += 1
            emit({"event": "sent", "n": n, "settled": presettled, "tag": jsonable(dlv.tag),
                  "size": len(m.body) if isinstance(m.body, (str, bytes)) else None})
        self.check_send_done()

    def on_delivery(self, event):
        dlv = event.delivery
        if dlv.link.is_sender:
            if dlv.updated and dlv.remote_state in OUTCOMES:
                name = outcome_name(dlv.remote_state)
                ev = {"event": "delivered", "n": getattr(dlv, "n", None), "outcome": name,
                      "remote_settled": dlv.settled, "link": dlv.link.name}
                cond = dlv.remote_condition if dlv.remote_state == Delivery.REJECTED else None
                if cond:
                    ev["condition"] = str(cond.name)
                    ev["description"] = cond.description
                emit(ev)
                self.outcomes[name] = self.outcomes.get(name, 0) + 1
                # Settle once the outcome is known: in rcv-second mode the
                # receiver waits for this before it settles (AMQP 1.0 §2.6.12).
                dlv.settle()
                self.check_send_done()
        # Receiving side: Proton's IncomingMessageHandler (one of
        # MessagingHandler's child handlers) decodes and calls on_message.

    def check_send_done(self):
        if self.o.mode != "send":
            return
        if self.sent >= self.o.count and self.settled_sent + sum(self.outcomes.values()) >= self.sent:
            self.finish()

    # -- receiving ----------------------------------------------------------

    def on_message(self, event):
        dlv, msg = event.delivery, event.message
        if dlv.link != self.receiver:
            return
        n = self.received
        emit(message_event(n, msg, dlv))
        self.received += 1
        self.bodies.append(jsonable(msg.body))
        if self.o.mode == "serve":
            self.reply(msg)
        if dlv.settled:
            dlv.settle()  # pre-settled by the sender: nothing to answer
        elif self.o.rcv_settle_mode == "second" or dlv.link.rcv_settle_mode == Link.RCV_SECOND:
            # rcv-second: state the outcome now, settle only after the
            # sender settled (AMQP 1.0 §2.6.12); see on_settled.
            dlv.update(Delivery.ACCEPTED)
            dlv.awaiting_settle = True
            self.unsettled_in += 1
        else:
            self.accept(dlv)
        if self.o.mode == "receive" and self.o.idle_exit:
            self.tasks.append(self.container.schedule(self.o.idle_exit, self.IdleExit(self, self.received)))
        self.check_receive_done()

    def on_settled(self, event):
        dlv = event.delivery
        if dlv.link.is_receiver and getattr(dlv, "awaiting_settle", False):
            dlv.awaiting_settle = False
            dlv.settle()
            self.unsettled_in -= 1
            self.check_receive_done()

    def reply(self, req):
        if not req.reply_to:
            emit({"event": "error", "on": "message", "condition": "no-reply-to", "description": "request without reply_to"})
            return
        r = Message(body=req.body, address=req.reply_to,
                    correlation_id=req.correlation_id if req.correlation_id is not None else req.id)
        r.properties = req.properties
        dlv = self.sender.send(r)
        dlv.n = self.replied
        self.replied += 1
        emit({"event": "replied", "to": req.reply_to, "correlation_id": jsonable(r.correlation_id)})

    def check_receive_done(self):
        if self.o.count and self.received >= self.o.count and self.unsettled_in <= 0:
            if self.o.mode in ("receive", "serve", "request"):
                self.finish()

    # -- end ----------------------------------------------------------------

    def finish(self):
        """Closes the connection politely and stops once the peer answered
        the close (so our last frames are on the wire), or after 2 s."""
        if self.done:
            return
        self.done = True
        for task in self.tasks:
            task.cancel()
        if self.conn is not None and self.conn.state & Endpoint.LOCAL_ACTIVE:
            self.conn.close()
            self.container.schedule(2.0, self.Stop(self.container))
        else:
            self.container.stop()

    class Stop(object):
        def __init__(self, container):
            self.container = container

        def on_timer_task(self, event):
            self.container.stop()

    def on_connection_closed(self, event):
        if self.done:
            self.container.stop()

    def on_transport_closed(self, event):
        if self.done:
            self.container.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["send", "receive", "request", "serve"])
    p.add_argument("--url", default="amqp://127.0.0.1:5672", help="amqp://[user:pass@]host:port")
    p.add_argument("--address", default="examples", help="node address (target of send, source of receive)")
    p.add_argument("--count", type=int, default=10, help="messages to send / receive (receive 0: no limit)")
    p.add_argument("--body", default="message-{n}", help="body text; {n} is the message index")
    p.add_argument("--size", type=int, default=0, help="pad or cut each body to exactly SIZE characters")
    p.add_argument("--binary", action="store_true", help="send the body as AMQP binary, not string")
    p.add_argument("--snd-settle-mode", choices=sorted(SND_MODES), default="unsettled",
                   help="settled: pre-settle all; unsettled: wait for outcomes; mixed: odd messages pre-settled")
    p.add_argument("--rcv-settle-mode", choices=sorted(RCV_MODES), default="first")
    p.add_argument("--credit", type=int, default=10, help="link credit (prefetch window); 0: exactly --count")
    p.add_argument("--drain", action="store_true", help="receive: grant --credit with drain=true, stop when drained")
    p.add_argument("--idle-exit", type=float, default=0, help="receive: stop after SECONDS without a message")
    p.add_argument("--user", help="SASL user (PLAIN unless --mechs says otherwise)")
    p.add_argument("--password")
    p.add_argument("--mechs", help="allowed SASL mechanisms, space separated, e.g. 'PLAIN' or 'ANONYMOUS'")
    p.add_argument("--no-sasl", action="store_true", help="no SASL layer at all (bare AMQP header)")
    p.add_argument("--idle-timeout", type=float, default=0, help="seconds; heartbeats (AMQP 1.0 §2.4.5)")
    p.add_argument("--max-frame-size", type=int, default=0)
    p.add_argument("--virtual-host", help="hostname sent in open")
    p.add_argument("--container-id")
    p.add_argument("--durable", action="store_true")
    p.add_argument("--priority", type=int)
    p.add_argument("--ttl", type=float, default=0, help="seconds")
    p.add_argument("--subject")
    p.add_argument("--content-type")
    p.add_argument("--message-id", help="{n} is the message index")
    p.add_argument("--correlation-id", help="{n} is the message index")
    p.add_argument("--reply-to")
    p.add_argument("--to", help="properties.to")
    p.add_argument("--property", action="append", metavar="K=V", help="application property; V as JSON if it parses")
    p.add_argument("--annotation", action="append", metavar="K=V", help="message annotation (symbol key)")
    p.add_argument("--timeout", type=float, default=30, help="give up after SECONDS (exit 2); 0: never")
    o = p.parse_args()

    c = Client(o)
    try:
        Container(c).run()
    except KeyboardInterrupt:
        pass
    summary = {
        "event": "summary",
        "mode": o.mode,
        "sent": c.sent,
        "settled_sent": c.settled_sent,
        "outcomes": c.outcomes,
        "received": c.received,
        "replied": c.replied,
        "bodies": c.bodies,
        "errors": c.errors,
        "timed_out": c.timed_out,
    }
    summary["ok"] = not c.errors
    emit(summary)
    if c.timed_out:
        sys.exit(2)
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
