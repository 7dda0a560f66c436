#!/usr/bin/env python3
"""kafka-python produce / consume round trip (also over TLS / mTLS).

Produces N records to TOPIC (which must exist) with a key ("key-<i>"), a binary value (text
then bytes that are not UTF-8) and headers [strait-index, dup, dup] (a duplicated name, kept in
order), acks=all, waits for every acknowledgement, then reads them back with a fresh consumer
group from the earliest offset and checks, for every record: key, value, headers (names, values,
order) and that it is read at the partition and offset its acknowledgement gave, offsets
increasing per partition.

With --trace-header NAME (Strait's trace stage on the topic), each consumed record must carry
its produced headers, in order, followed by the headers Strait adds, among them exactly one NAME
header holding a valid W3C traceparent; with --own-traceparent-every K every K-th record is
produced with its own traceparent (its first header), which it must keep, and gets no second.

With --expect-failure (a TLS or mTLS refusal): ok iff the client reports an error and no record
is acknowledged; the summary lists the client's log lines about TLS (`tls_log`).

Output: one JSON object per line on stdout; the last is {"type":"summary","ok":...}. Logs on
stderr. Exit 0 ok, 1 failed, 2 usage, 3 watchdog (timeout-ms + grace exceeded).
"""

import argparse
import re
import sys
import uuid

import common
from common import CONTEXT, Deadline, Parser, crashed, emit, exit_with, log, start_watchdog, summary

CONTEXT["driver"] = "kafka_python/produce_consume.py"

MAX_MISMATCH_LINES = 20
TRACEPARENT = re.compile(rb"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
TRACE = {"header": None, "own_every": 0}


def key_of(i):
    return ("key-%d" % i).encode()


def value_of(run_id, i):
    # Text plus bytes that are not valid UTF-8, so nothing may transcode the value.
    return ("value-%s-%d-" % (run_id, i)).encode() + bytes((i * 31 + j * 7) % 256 for j in range(24))


def own_traceparent(i):
    return ("00-%032x-%016x-01" % (0xABC0000 + i + 1, 0xDEF000 + i + 1)).encode()


def has_own(i):
    return TRACE["own_every"] > 0 and i % TRACE["own_every"] == 0


def headers_of(i):
    own = [(TRACE["header"], own_traceparent(i))] if has_own(i) else []
    return own + [("strait-index", str(i).encode()), ("dup", ("first-%d" % i).encode()),
                  ("dup", ("second-%d" % i).encode())]


def headers_match(i, got):
    want = headers_of(i)
    if TRACE["header"] is None:
        return got == want
    if got[:len(want)] != want:
        return False
    added = [v for (k, v) in got[len(want):] if k == TRACE["header"]]
    if has_own(i):
        return not added
    return len(added) == 1 and TRACEPARENT.match(added[0] or b"") is not None


def index_of(key):
    try:
        s = key.decode()
        return int(s[4:]) if s.startswith("key-") else None
    except Exception:
        return None


def produce(conf, topic, n, run_id, deadline):
    from kafka import KafkaProducer

    p = KafkaProducer(**conf)
    futures = []
    try:
        for i in range(n):
            futures.append((i, p.send(topic, key=key_of(i), value=value_of(run_id, i), headers=headers_of(i))))
        p.flush(timeout=deadline.remaining())
        acked, errors = {}, []
        for i, f in futures:
            if not f.is_done:
                continue
            if f.succeeded():
                acked[i] = (f.value.partition, f.value.offset)
            else:
                errors.append((i, f.exception))
        pending = len(futures) - len(acked) - len(errors)
        return acked, errors, pending
    finally:
        p.close(timeout=max(0.0, min(5.0, deadline.remaining())))


def consume(conf, topic, n, run_id, acked, deadline):
    from kafka import KafkaConsumer

    c = KafkaConsumer(**conf)
    seen, mismatches = set(), []
    consumed = duplicates = order_violations = foreign = 0
    last = {}
    try:
        c.subscribe([topic])
        while len(seen) < n and not deadline.expired():
            batches = c.poll(timeout_ms=min(1000, common.timeout_ms(deadline, 10)), max_records=500)
            for records in batches.values():
                for r in records:
                    if not (r.value or b"").startswith(("value-%s-" % run_id).encode()):
                        foreign += 1  # another run's record on a shared topic
                        continue
                    consumed += 1
                    i = index_of(r.key)
                    problems = []
                    if i is None or not 0 <= i < n:
                        problems.append("unexpected key %r" % (r.key,))
                    else:
                        if r.value != value_of(run_id, i):
                            problems.append("value differs")
                        if not headers_match(i, list(r.headers or [])):
                            problems.append("headers differ: %r" % (r.headers,))
                        if acked.get(i) not in (None, (r.partition, r.offset)):
                            problems.append("read at %d@%d, acknowledged at %d@%d"
                                            % ((r.partition, r.offset) + acked[i]))
                    if last.get(r.partition, -1) >= r.offset:
                        order_violations += 1
                        problems.append("offset %d after %d" % (r.offset, last[r.partition]))
                    last[r.partition] = r.offset
                    if i in seen:
                        duplicates += 1
                    elif not problems:
                        seen.add(i)
                    if problems:
                        mismatches.append(i)
                        if len(mismatches) <= MAX_MISMATCH_LINES:
                            emit({"type": "mismatch", "index": i, "partition": r.partition, "offset": r.offset,
                                  "problems": problems})
        if len(seen) == n:
            c.commit()
    finally:
        c.close(autocommit=False)
    return seen, consumed, duplicates, mismatches, order_violations, foreign


def main(argv):
    ap = Parser(prog="produce_consume.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_client_args(ap)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--timeout-ms", type=int, default=60000)
    ap.add_argument("--trace-header", default=None, help="the header Strait's trace stage adds (see above)")
    ap.add_argument("--own-traceparent-every", type=int, default=0, metavar="K")
    ap.add_argument("--compression", default=None, choices=["gzip", "snappy", "lz4", "zstd"],
                    help="the producer's compression_type (default: none)")
    ap.add_argument("--expect-failure", action="store_true", help="ok iff refused (see above)")
    args = ap.parse_args(argv)
    if args.records < 1 or args.timeout_ms <= 0 or args.own_traceparent_every < 0:
        ap.error("--records and --timeout-ms must be positive, --own-traceparent-every >= 0")
    if args.own_traceparent_every and not args.trace_header:
        ap.error("--own-traceparent-every needs --trace-header")
    TRACE.update(header=args.trace_header, own_every=args.own_traceparent_every)
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    run_id = uuid.uuid4().hex[:12]
    group = "strait-kp-" + run_id
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, records=args.records, group=group,
                   security_protocol=args.security_protocol)
    base = common.setup(args)
    try:
        CONTEXT["phase"] = "produce"
        pconf = dict({"acks": "all", "linger_ms": 5, "client_id": "strait-kp-producer",
                      "max_block_ms": common.timeout_ms(deadline),
                      "request_timeout_ms": min(30000, common.timeout_ms(deadline) // 2),
                      "delivery_timeout_ms": common.timeout_ms(deadline),
                      "compression_type": args.compression}, **base)
        try:
            acked, errors, pending = produce(pconf, args.topic, args.records, run_id, deadline)
        except Exception as e:
            if not args.expect_failure:
                raise
            errors, acked, pending = [(None, e)], {}, 0
        for i, e in errors[:MAX_MISMATCH_LINES]:
            emit(dict({"type": "error", "index": i}, **common.describe(e)))
        emit({"type": "produced", "records": args.records, "acked": len(acked), "errors": len(errors),
              "pending": pending})
        if args.expect_failure:
            CONTEXT.pop("phase", None)
            ok = not acked and bool(errors)
            fields = dict(acked=len(acked), errors=len(errors), tls_log=common.CLIENT_LOG.tls,
                          first_exception=common.describe(errors[0][1])["exception"] if errors else None,
                          first_message=str(errors[0][1]) if errors else None, elapsed_ms=deadline.elapsed_ms())
            if not ok:
                fields["error"] = "expected a refusal: %d record(s) acknowledged, %d error(s)" % (len(acked), len(errors))
            return summary(ok, **fields)
        if len(acked) != args.records:
            return summary(False, acked=len(acked), errors=len(errors), pending=pending,
                           error="only %d of %d records acknowledged%s" % (
                               len(acked), args.records, "; first error: %r" % (errors[0][1],) if errors else ""),
                           elapsed_ms=deadline.elapsed_ms())

        CONTEXT["phase"] = "consume"
        cconf = dict({"group_id": group, "auto_offset_reset": "earliest", "enable_auto_commit": False,
                      "client_id": "strait-kp-consumer"}, **base)
        seen, consumed, duplicates, mismatches, order_violations, foreign = consume(
            cconf, args.topic, args.records, run_id, acked, deadline)
        CONTEXT.pop("phase", None)
        missing = args.records - len(seen)
        ok = missing == 0 and not mismatches and not duplicates
        fields = dict(produced=args.records, acked=len(acked), consumed=consumed, verified=len(seen),
                      missing=missing, duplicates=duplicates, mismatches=len(mismatches),
                      order_violations=order_violations, foreign=foreign, elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = "%d missing, %d differ, %d duplicates" % (missing, len(mismatches), duplicates)
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
