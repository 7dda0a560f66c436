#!/usr/bin/env python3
"""kafka-python counterpart of Kafka's VerifiableProducer, for failover tests.

Produces values "0".."N-1" (no key) to TOPIC with kafka-python's idempotent producer
(enable_idempotence=True, acks=all, retries unbounded within delivery_timeout_ms) at about
--throughput records per second, and prints one JSON line per acknowledgement or failure in
VerifiableProducer's format, so the same test code reads both:
  {"name":"producer_send_success","topic":T,"partition":p,"offset":o,"value":"<i>"}
  {"name":"producer_send_error","exception":"<exception class>","message":"...","value":"<i>"}
and finally {"name":"shutdown_complete","acked":a,"failed":f,"pending":n}. flush() is bounded by
--timeout-ms (each record by delivery_timeout_ms before that). Exit 0 when every record got a
result (acknowledged or failed), 1 otherwise, 2 on usage errors, 3 watchdog.
"""

import argparse
import json
import sys
import threading
import time

import common
from common import CONTEXT, Deadline, Parser, crashed, exit_with, start_watchdog

CONTEXT["driver"] = "kafka_python/verifiable_producer.py"

_lock = threading.Lock()


def out(obj):
    with _lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main(argv):
    ap = Parser(prog="verifiable_producer.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_client_args(ap)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--max-messages", type=int, required=True)
    ap.add_argument("--throughput", type=int, default=2000, help="records per second (about)")
    ap.add_argument("--timeout-ms", type=int, default=180000)
    args = ap.parse_args(argv)
    if args.max_messages < 1 or args.throughput < 1 or args.timeout_ms <= 0:
        ap.error("--max-messages, --throughput and --timeout-ms must be >= 1")
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    base = common.setup(args)
    counts = {"acked": 0, "failed": 0}
    try:
        from kafka import KafkaProducer

        # Records a crash holds up wait in the accumulator: the pace never blocks on them, and
        # each one fails by delivery_timeout_ms, well before the run's deadline.
        p = KafkaProducer(**dict({
            "enable_idempotence": True, "acks": "all", "linger_ms": 5,
            "client_id": "strait-kp-verifiable-producer",
            "delivery_timeout_ms": min(120000, common.timeout_ms(deadline) // 2),
        }, **base))

        def callbacks(value):
            def ok(md):
                with _lock:
                    counts["acked"] += 1
                out({"name": "producer_send_success", "topic": md.topic, "partition": md.partition,
                     "offset": md.offset, "value": value})

            def failed(e):
                with _lock:
                    counts["failed"] += 1
                out({"name": "producer_send_error", "exception": type(e).__name__, "message": str(e),
                     "value": value})
            return ok, failed

        start = time.monotonic()
        for i in range(args.max_messages):
            if deadline.expired():
                break
            ahead = i / args.throughput - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)  # pacing to the target rate, not synchronisation
            value = str(i)
            ok, failed = callbacks(value)
            p.send(args.topic, value=value.encode()).add_callback(ok).add_errback(failed)
        p.flush(timeout=deadline.remaining())
        with _lock:
            done = counts["acked"] + counts["failed"]
        out({"name": "shutdown_complete", "acked": counts["acked"], "failed": counts["failed"],
             "pending": args.max_messages - done})
        p.close(timeout=max(0.0, min(5.0, deadline.remaining())))
        return 0 if done == args.max_messages else 1
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
