#!/usr/bin/python3
"""A minimal in-memory AMQP 1.0 queue broker on Qpid Proton, for tests.

Modelled on Proton's examples/python/broker.py, with what tests need on top:

  * --port 0 picks a free port; the first stdout line is always
        {"event": "listening", "host": "127.0.0.1", "port": 40123}
    so the test harness knows where to connect without racing for a port.
  * one FIFO queue per address, created on first use; a receiver attaching
    with a dynamic source (AMQP 1.0 §3.5.3) gets a fresh temporary queue,
    which is how request-reply clients get their reply_to address;
  * a sender with a null target is an "anonymous relay": each message goes
    to the queue named by its properties.to;
  * settle modes: the broker mirrors the modes the peer asked for in its
    attach (AMQP 1.0 §2.6.12) and honours rcv-second (outcome first, settle
    after the sender settled) and pre-settled deliveries;
  * a message the consumer releases or modifies goes back to the head of
    its queue; a rejected one is dropped.

Every attach, detach and connection is printed as a JSON line too
(--verbose adds one line per message), which makes failures readable.
Stop it with SIGTERM or SIGINT.
"""

import argparse
import collections
import json
import signal
import sys
import uuid

from proton import Condition, Delivery, Endpoint, Link
from proton.handlers import MessagingHandler
from proton.reactor import Container


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


class Queue(object):
    def __init__(self, address, dynamic=False):
        self.address = address
        self.dynamic = dynamic
        self.messages = collections.deque()
        self.consumers = []

    def subscribe(self, link):
        self.consumers.append(link)

    def unsubscribe(self, link):
        """Returns True when the queue should be deleted: dynamic queues die
        with their last consumer, others once empty and unused."""
        if link in self.consumers:
            self.consumers.remove(link)
        return not self.consumers and (self.dynamic or not self.messages)

    def publish(self, message):
        self.messages.append(message)
        self.dispatch()

    def requeue(self, message):
        self.messages.appendleft(message)
        self.dispatch()

    def dispatch(self, consumer=None):
        """Hands messages to consumers that have credit, round robin."""
        consumers = [consumer] if consumer else list(self.consumers)
        progress = True
        while self.messages and progress:
            progress = False
            for link in consumers:
                if not self.messages:
                    break
                if link.credit > 0 and link.state & Endpoint.LOCAL_ACTIVE:
                    msg = self.messages.popleft()
                    dlv = link.send(msg)
                    dlv.message = msg
                    dlv.queue = self
                    progress = True
        # A consumer that asked to drain gets its unused credit back now
        # (AMQP 1.0 §2.6.7): there is nothing more to send.
        for link in consumers:
            if link.drain_mode and not self.messages:
                link.drained()


class Broker(MessagingHandler):
    def __init__(self, opts):
        # auto_accept off: the broker decides per incoming delivery
        # (rcv-second); auto_settle off: it settles each outgoing delivery as
        # soon as the consumer states an outcome, settled or not, which is
        # what a rcv-second consumer waits for.
        super(Broker, self).__init__(prefetch=opts.credit, auto_accept=False, auto_settle=False)
        self.opts = opts
        self.queues = {}

    def on_start(self, event):
        self.acceptor = event.container.listen("%s:%d" % (self.opts.host, self.opts.port))
        # Proton's Acceptor keeps its socket in a Selectable that forwards
        # attribute lookups to it; the bound port is the one we report.
        try:
            host, port = self.acceptor._selectable.getsockname()[:2]
        except Exception:
            host, port = self.opts.host, self.opts.port
        emit({"event": "listening", "host": host, "port": port})

    def queue(self, address, dynamic=False):
        q = self.queues.get(address)
        if q is None:
            q = self.queues[address] = Queue(address, dynamic)
        return q

    def on_connection_opened(self, event):
        emit({"event": "connection", "remote_container": event.connection.remote_container})

    def on_link_opening(self, event):
        link = event.link
        # Mirror the settle modes the peer asked for (AMQP 1.0 §2.6.12).
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        if link.is_sender:
            if link.remote_source.dynamic:
                address = "dynamic-" + str(uuid.uuid4())
                link.source.address = address
                self.queue(address, dynamic=True).subscribe(link)
            elif link.remote_source.address:
                link.source.address = link.remote_source.address
                self.queue(link.source.address).subscribe(link)
            link.target.address = link.remote_target.address
        else:
            link.target.address = link.remote_target.address
            link.source.address = link.remote_source.address
        emit({"event": "attach", "name": link.name,
              "role": "sender" if link.is_sender else "receiver",
              "source": link.source.address, "target": link.target.address,
              "snd_settle_mode": link.snd_settle_mode, "rcv_settle_mode": link.rcv_settle_mode})

    def unsubscribe(self, link):
        addr = link.source.address
        q = self.queues.get(addr)
        if q is not None and q.unsubscribe(link):
            del self.queues[addr]

    def on_link_closing(self, event):
        emit({"event": "detach", "name": event.link.name})
        if event.link.is_sender:
            self.unsubscribe(event.link)

    def on_connection_closing(self, event):
        self.remove_stale_consumers(event.connection)

    def on_disconnected(self, event):
        self.remove_stale_consumers(event.connection)

    def remove_stale_consumers(self, connection):
        link = connection.link_head(Endpoint.REMOTE_ACTIVE)
        while link:
            if link.is_sender:
                self.unsubscribe(link)
            link = link.next(Endpoint.REMOTE_ACTIVE)

    def on_sendable(self, event):
        addr = event.link.source.address
        if addr in self.queues:
            self.queues[addr].dispatch(event.link)

    def on_link_flow(self, event):
        link = event.link
        if link.is_sender and link.drain_mode:
            addr = link.source.address
            if addr in self.queues:
                self.queues[addr].dispatch(link)
            else:
                link.drained()

    def on_message(self, event):
        dlv, msg = event.delivery, event.message
        address = event.link.target.address or msg.address
        if not address:
            # Anonymous relay without properties.to: nowhere to route it.
            dlv.local.condition = Condition("amqp:not-found", "message has no properties.to")
            dlv.update(Delivery.REJECTED)
            dlv.settle()
            return
        self.queue(address).publish(msg)
        if self.opts.verbose:
            emit({"event": "stored", "address": address, "depth": len(self.queues[address].messages)})
        if dlv.settled:
            dlv.settle()
        elif event.link.rcv_settle_mode == Link.RCV_SECOND:
            dlv.update(Delivery.ACCEPTED)  # settled in on_settled
        else:
            self.accept(dlv)

    def on_settled(self, event):
        dlv = event.delivery
        if dlv.link.is_receiver:
            dlv.settle()  # rcv-second: the sender settled, now we do

    def on_accepted(self, event):
        event.delivery.settle()

    def on_rejected(self, event):
        event.delivery.settle()  # dropped: this broker has no dead-letter queue

    def on_released(self, event):
        # released and modified (AMQP 1.0 §3.4.4, §3.4.5): deliver again.
        dlv = event.delivery
        q = getattr(dlv, "queue", None)
        if q is not None and getattr(dlv, "message", None) is not None:
            q.requeue(dlv.message)
            dlv.message = None
        dlv.settle()


def stop_on_sigterm(signum, frame):
    # Lets SIGTERM from the harness end the run loop like Ctrl-C does.
    raise KeyboardInterrupt()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (reported on the first line)")
    p.add_argument("--credit", type=int, default=100, help="credit granted to each incoming link")
    p.add_argument("--verbose", action="store_true", help="one JSON line per stored message")
    opts = p.parse_args()

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        Container(Broker(opts)).run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
