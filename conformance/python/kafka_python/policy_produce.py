#!/usr/bin/env python3
"""kafka-python producer that reports exactly what the client surfaced per record, for produce-side
policy rejections; the counterpart of the Java PolicyProduce driver.

Produces N records to TOPIC (which must exist): key = the index in decimal, value = S bytes
(default 100) repeating "value-<index>;", each with the --header k=v headers in order
("--header k" = a null value). acks=all unless --config sets it (kafka-python needs
enable_idempotence=false for acks other than all). delivery_timeout_ms = the time left minus
min(10 s, max(2 s, 1/5 of it)) and request_timeout_ms = min(30 s, half of that) unless --config
sets them, so a retriable error ends in the client's own KafkaTimeoutError before --timeout-ms.
Waits for every result (bounded); a record send() refuses (e.g. no metadata for T within
max_block_ms) counts as failed with that exception.

kafka-python passes the broker's error_message (Produce v8+, KIP-467) into the exception it
fails a record with (e.g. PolicyViolationError: [Error 44] ...: <error_message>); with
record_errors a listed record gets its own message.

Output: {"type":"error","index","exception","errno","message","retriable","count","last_index"}
per run of identical consecutive failures; the summary has acked, failed, pending,
unsent (not sent by the deadline), first_index, first_exception, first_errno, first_message,
acked_offsets {partition:[min,max]}.
ok: every record acknowledged; with --expect-failure: none acknowledged and at least one failed.
Exit 0 ok, 1 failed, 2 usage, 3 watchdog.
"""

import argparse
import sys

import common
from common import CONTEXT, Deadline, Parser, crashed, emit, exit_with, start_watchdog, summary

CONTEXT["driver"] = "kafka_python/policy_produce.py"


def headers_of(items):
    out = []
    for kv in items or []:
        k, sep, v = kv.partition("=")
        if not k:
            Parser(prog="policy_produce.py").error("--header expects k=v (or k for a null value), got %r" % (kv,))
        out.append((k, v.encode() if sep else None))
    return out


class Refused:
    """A record send() refused before queueing, shaped like its failed future."""
    is_done = True

    def __init__(self, exception):
        self.exception = exception

    def succeeded(self):
        return False


def value_of(i, size):
    unit = ("value-%d;" % i).encode()
    return (unit * (size // len(unit) + 1))[:size]


def main(argv):
    ap = Parser(prog="policy_produce.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_client_args(ap)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--header", action="append", metavar="K=V")
    ap.add_argument("--partition", type=int, default=None)
    ap.add_argument("--expect-failure", action="store_true")
    ap.add_argument("--timeout-ms", type=int, default=30000)
    args = ap.parse_args(argv)
    if args.records < 1 or args.value_bytes < 0 or args.timeout_ms <= 0:
        ap.error("--records and --timeout-ms must be >= 1, --value-bytes >= 0")
    headers = headers_of(args.header)
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, records=args.records)
    base = common.setup(args)
    try:
        from kafka import KafkaProducer

        left = common.timeout_ms(deadline)
        delivery = left - min(10000, max(2000, left // 5))
        conf = dict({"acks": "all", "linger_ms": 5, "client_id": "strait-kp-policy-producer",
                     "delivery_timeout_ms": delivery, "request_timeout_ms": min(30000, delivery // 2),
                     "max_block_ms": delivery}, **base)
        CONTEXT["producer_config"] = {k: conf[k] for k in ("acks", "enable_idempotence", "compression_type")
                                      if k in conf}
        CONTEXT["phase"] = "produce"
        p = KafkaProducer(**conf)
        futures = []
        try:
            for i in range(args.records):
                if deadline.expired():
                    break  # the rest are unsent
                try:
                    futures.append(p.send(args.topic, key=str(i).encode(), value=value_of(i, args.value_bytes),
                                          headers=headers, partition=args.partition))
                except Exception as e:  # refused before queueing (no metadata within max_block_ms, ...)
                    futures.append(Refused(e))
            p.flush(timeout=deadline.remaining())
        finally:
            p.close(timeout=max(0.0, min(5.0, deadline.remaining())))
        CONTEXT.pop("phase", None)
        acked, failed, pending, runs, offsets = 0, 0, 0, [], {}
        first = None
        for i, f in enumerate(futures):
            if not f.is_done:
                pending += 1
                continue
            if f.succeeded():
                acked += 1
                lo, hi = offsets.get(str(f.value.partition), (f.value.offset, f.value.offset))
                offsets[str(f.value.partition)] = (min(lo, f.value.offset), max(hi, f.value.offset))
                continue
            failed += 1
            d = common.describe(f.exception)
            if first is None:
                first = (i, d)
            if runs and runs[-1]["last_index"] == i - 1 and all(runs[-1][k] == d[k] for k in d):
                runs[-1]["count"] += 1
                runs[-1]["last_index"] = i
            else:
                runs.append(dict({"type": "error", "index": i, "count": 1, "last_index": i}, **d))
        for r in runs:
            emit(r)
        ok = (acked == 0 and failed > 0) if args.expect_failure else acked == args.records
        unsent = args.records - len(futures)
        fields = dict(acked=acked, failed=failed, pending=pending, unsent=unsent, acked_offsets=offsets,
                      first_index=None if first is None else first[0],
                      first_exception=None if first is None else first[1]["exception"],
                      first_errno=None if first is None else first[1]["errno"],
                      first_message=None if first is None else first[1]["message"],
                      elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = ("expected every record to fail" if args.expect_failure else
                               "expected every record acknowledged") + ": %d acked, %d failed, %d pending" % (
                                   acked, failed, pending)
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
