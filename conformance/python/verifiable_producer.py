#!/usr/bin/env python3
"""librdkafka (confluent-kafka) counterpart of Kafka's VerifiableProducer, for failover tests.

Produces values "0".."N-1" (no key) to TOPIC with an idempotent producer (enable.idempotence
=true, acks=all) at about --throughput records per second, and prints one JSON line per
delivery report in VerifiableProducer's format, so the same test code reads both:
  {"name":"producer_send_success","topic":T,"partition":p,"offset":o,"value":"<i>"}
  {"name":"producer_send_error","exception":"<librdkafka error name>","message":"...","value":"<i>"}
and finally {"name":"shutdown_complete","sent":s,"acked":a,"failed":f}. Every delivery report
arrives before exit: message.timeout.ms (default 60000) bounds each record. --max-messages -1
produces until SIGTERM or SIGINT (VerifiableProducer's convention), then flushes. Exit 0 when
every record sent got a report (acked or failed), 1 otherwise, 2 on usage errors.
"""

import argparse
import itertools
import json
import os
import signal
import sys
import time


def main(argv):
    ap = argparse.ArgumentParser(prog="verifiable_producer.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-server", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--max-messages", type=int, required=True)
    ap.add_argument("--throughput", type=int, default=5000, help="records per second (about)")
    ap.add_argument("--message-timeout-ms", type=int, default=60000)
    ap.add_argument("--prop", action="append", metavar="K=V", default=[],
                    help="extra producer config (repeatable, overrides defaults), e.g. SASL settings")
    args = ap.parse_args(argv)
    extra = {}
    for kv in args.prop:
        k, eq, v = kv.partition("=")
        if not k or not eq:
            ap.error("--prop expects K=V, got %r" % kv)
        extra[k] = v
    if (args.max_messages < 1 and args.max_messages != -1) or args.throughput < 1:
        ap.error("--max-messages must be >= 1 or -1 (until SIGTERM); --throughput >= 1")
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))

    from confluent_kafka import Producer

    counts = {"sent": 0, "acked": 0, "failed": 0}

    def out(obj):
        sys.stdout.write(json.dumps(obj) + "\n")

    def report(err, msg):
        value = msg.value().decode()
        if err is None:
            counts["acked"] += 1
            out({"name": "producer_send_success", "topic": msg.topic(), "partition": msg.partition(),
                 "offset": msg.offset(), "value": value})
        else:
            counts["failed"] += 1
            out({"name": "producer_send_error", "exception": err.name(), "message": err.str(), "value": value})

    p = Producer({
        "bootstrap.servers": args.bootstrap_server,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": args.message_timeout_ms,
        "client.id": "strait-conformance-python-verifiable-producer",
        "error_cb": lambda e: sys.stderr.write("client error: %s\n" % e),
        **extra,
    })
    start = time.monotonic()
    values = range(args.max_messages) if args.max_messages > 0 else itertools.count()
    for i in values:
        if stop:
            break
        # Pace to the target rate: a driver's pacing, not test synchronisation.
        ahead = i / args.throughput - (time.monotonic() - start)
        if ahead > 0:
            p.poll(ahead)
        while True:
            try:
                p.produce(args.topic, value=str(i).encode(), on_delivery=report)
                counts["sent"] += 1
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    while len(p) > 0:
        p.flush(1.0)
    out({"name": "shutdown_complete", **counts})
    sys.stdout.flush()
    return 0 if counts["acked"] + counts["failed"] == counts["sent"] else 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
