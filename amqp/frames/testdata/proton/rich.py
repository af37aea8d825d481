#!/usr/bin/env python3
# A Proton client/server pair that exercises most of the AMQP 1.0 wire: every message section,
# the three body forms, a multi-frame delivery, all four terminal outcomes, a selector filter,
# a dynamic node with dynamic-node-properties, capabilities, connection properties and heartbeats.
# Used by amqp/frames tests (proton_test.go) to record real frame transcripts.
#
#   rich.py server HOST:PORT     listen; accept, reject, release, modify incoming messages in turn;
#                                 send 2 messages on each receiving link the client attaches
#                                 and act as a transaction coordinator (declare → declared, discharge → accepted)
#   rich.py client HOST:PORT     connect, send the messages below, receive 2, then close
import sys
import uuid

from proton import (Condition, Data, Delivery, Described, Message, symbol, ulong, int32, char, timestamp,
                    ubyte, Terminus)
from proton.handlers import MessagingHandler
from proton.reactor import Container, Selector, DynamicNodeProperties, LinkOption


class Capabilities(LinkOption):
    def apply(self, link):
        caps = link.source.capabilities
        caps.put_array(False, Data.SYMBOL)
        caps.enter()
        caps.put_symbol("queue")
        caps.put_symbol("shared")
        caps.exit()


class Server(MessagingHandler):
    def __init__(self, url):
        super(Server, self).__init__(auto_accept=False)
        self.url = url
        self.count = 0
        self.txns = 0

    def on_start(self, event):
        self.acceptor = event.container.listen(self.url)

    def on_connection_bound(self, event):
        # Small frames from the client: the 100 KiB message arrives as several transfers.
        event.transport.max_frame_size = 16384

    def on_link_opening(self, event):
        link = event.link
        if link.is_receiver and link.remote_target.type == Terminus.COORDINATOR:
            link.target.type = Terminus.COORDINATOR
            link.target.copy(link.remote_target)
        elif link.is_sender:
            if link.remote_source.dynamic:
                link.source.address = "dynamic-" + str(uuid.UUID(int=7))
            else:
                link.source.address = link.remote_source.address
        else:
            link.target.address = link.remote_target.address

    def on_sendable(self, event):
        s = event.sender
        if getattr(s, "sent", 0) >= 2:
            return
        while s.credit > 0 and getattr(s, "sent", 0) < 2:
            n = getattr(s, "sent", 0)
            s.sent = n + 1
            m = Message(id=ulong(1000 + n), subject="to-client-%d" % n, body="from server %d" % n,
                        properties={"colour": "green"})
            s.send(m)

    def on_message(self, event):
        d = event.delivery
        if event.link.target.type == Terminus.COORDINATOR:
            body = event.message.body
            if body.descriptor in (ulong(0x31), symbol("amqp:declare:list")):
                self.txns += 1
                d.local.data = [b"txn-%d" % self.txns]
                d.update(0x33)  # declared(txn-id), AMQP 1.0 §4.5.5
                d.settle()
            else:
                self.accept(d)  # discharge
            return
        i = self.count % 4
        self.count += 1
        if i == 0:
            self.accept(d)
        elif i == 1:
            d.local.condition = Condition("amqp:invalid-field", "rejected by rich.py",
                                          {symbol("field"): "subject"})
            self.reject(d)
        elif i == 2:
            self.release(d, delivered=False)  # released
        else:
            d.local.failed = True
            d.local.undeliverable = True
            d.local.annotations = {symbol("x-opt-modified"): "yes"}
            d.update(Delivery.MODIFIED)
            d.settle()

    def on_connection_closed(self, event):
        self.acceptor.close()


class Client(MessagingHandler):
    def __init__(self, url):
        super(Client, self).__init__()
        self.url = url
        self.sent = 0
        self.settled = 0
        self.received = 0
        self.messages = self.build()

    def build(self):
        big = bytes(range(256)) * 400  # 102400 bytes: several transfer frames
        return [
            Message(id=uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100"), correlation_id=b"corr-bin",
                    user_id=b"anonymous", address="rich", subject="all-sections", reply_to="replies",
                    content_type="application/octet-stream", content_encoding="identity",
                    expiry_time=1700000060.5, creation_time=1700000000.25, group_id="group",
                    group_sequence=7, reply_to_group_id="reply-group", durable=True, priority=7, ttl=30.0,
                    first_acquirer=True, delivery_count=2,
                    instructions={symbol("x-opt-delivery"): int32(1)},
                    annotations={symbol("x-opt-mqtt-topic"): "a/b", ulong(5): "ulong key"},
                    properties={"device-id": "d1", "n": 42, "f": 1.5, "ok": True, "c": char("x"),
                                "t": timestamp(1700000000000), "u": ubyte(9)},
                    inferred=True, body=b"binary data section"),
            Message(id=ulong(12345), body={"sequence": 1, "nested": [1, 2, "x"], "none": None}),
            Message(id="string-id", inferred=True, body=[1, "two", 3.0]),
            Message(body="amqp-value string"),
            Message(id="big", inferred=True, body=big),
        ]

    def on_start(self, event):
        conn = event.container.connect(self.url, heartbeat=1,
                                       properties={symbol("product"): "rich.py"},
                                       offered_capabilities=[symbol("ANONYMOUS-RELAY")],
                                       desired_capabilities=[symbol("DELAYED_DELIVERY")])
        self.sender = event.container.create_sender(conn, "rich")
        event.container.create_receiver(conn, "rich-out", options=[Selector("colour = 'green'"), Capabilities()])
        event.container.create_receiver(conn, None, dynamic=True, options=DynamicNodeProperties(
            {symbol("lifetime-policy"): Described(symbol("amqp:delete-on-close:list"), [])}))

    def on_sendable(self, event):
        if event.sender != self.sender:
            return
        while self.sender.credit > 0 and self.sent < len(self.messages):
            self.sender.send(self.messages[self.sent])
            self.sent += 1

    def on_settled(self, event):
        self.settled += 1
        self.maybe_done(event)

    def on_message(self, event):
        self.received += 1
        self.maybe_done(event)

    def maybe_done(self, event):
        if self.settled == len(self.messages) and self.received >= 2:
            event.connection.close()


role, addr = sys.argv[1], sys.argv[2]
if role == "server":
    Container(Server(addr)).run()
else:
    Container(Client(addr)).run()
