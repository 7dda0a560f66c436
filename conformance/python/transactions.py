#!/usr/bin/env python3
"""librdkafka (confluent-kafka) transactions: read_committed sees committed data once,
aborted data never.

Produces T transactions of K records each to TOPIC (which must exist) with a transactional
producer (transactional.id strait-py-txn-<run>, idempotent, acks=all); every A-th
transaction (the A-th, 2A-th, ...) is aborted after all its records were delivered, the
others are committed. Keys are "t<transaction>-<index>", values "<run>-<transaction>-<index>".
Then a fresh read_committed consumer (group strait-py-<run>, from the earliest offset, with
partition EOF events) reads every partition to its end and checks: each committed record
exactly once with its value intact, no record of an aborted transaction, no record of
another run (records of other runs are skipped and counted as "foreign"). With
--trace-header NAME, every record read must carry exactly one NAME header holding a valid
W3C traceparent (Strait's trace stage).

Output: one JSON object per line on stdout; the last is {"type":"summary","ok":...} with
committed, aborted, consumed, distinct, duplicates, aborted_seen, missing, bad_values,
bad_traceparents. Exit 0 ok, 1 failed, 2 usage, 3 watchdog (timeout-ms + grace exceeded).
Every wait is bounded by --timeout-ms (default 60000).
"""

import argparse
import re
import sys
import uuid

from driver import (  # noqa: E402  (shared driver plumbing next to this script)
    CONTEXT, Deadline, Parser, emit, crashed, exit_with, key_values, log, start_watchdog, summary,
)

CONTEXT["driver"] = "transactions.py"

TRACEPARENT = re.compile(rb"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
MAX_PROBLEM_LINES = 20


def produce(conf, topic, transactions, per_txn, abort_every, run_id, deadline):
    from confluent_kafka import Producer

    p = Producer(conf)
    timeout = lambda: max(1.0, deadline.remaining())  # noqa: E731
    p.init_transactions(timeout())
    committed, aborted = set(), set()
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append("%s: %s" % (msg.key(), err))

    for t in range(transactions):
        if deadline.expired():
            raise RuntimeError("timed out producing transaction %d of %d" % (t, transactions))
        p.begin_transaction()
        keys = []
        for i in range(per_txn):
            key = ("t%d-%d" % (t, i)).encode()
            p.produce(topic, key=key, value=("%s-%d-%d" % (run_id, t, i)).encode(), on_delivery=on_delivery)
            keys.append(key)
        p.flush(timeout())
        if failures:
            raise RuntimeError("delivery failed in transaction %d: %s" % (t, failures[0]))
        if abort_every and (t + 1) % abort_every == 0:
            p.abort_transaction(timeout())
            aborted.update(keys)
        else:
            p.commit_transaction(timeout())
            committed.update(keys)
    return committed, aborted


def consume(conf, topic, run_id, deadline):
    from confluent_kafka import Consumer, KafkaError

    c = Consumer(conf)
    records = []
    foreign = 0
    try:
        md = c.list_topics(topic, timeout=max(1.0, deadline.remaining()))
        partitions = set(md.topics[topic].partitions)
        if not partitions:
            raise RuntimeError("topic %s has no partitions" % topic)
        at_end = set()
        c.subscribe([topic])
        while at_end != partitions and not deadline.expired():
            for m in c.consume(num_messages=500, timeout=max(0.01, min(1.0, deadline.remaining()))):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                        continue
                    if err.fatal():
                        raise RuntimeError("fatal consumer error: %s" % err)
                    log("consumer error: %s" % err)
                    continue
                at_end.discard(m.partition())
                if not (m.value() or b"").startswith(run_id.encode() + b"-"):
                    foreign += 1
                    continue
                records.append((m.key(), m.value(), m.headers() or []))
        if at_end != partitions:
            raise RuntimeError("read_committed consumer did not reach the end of partitions %s"
                               % sorted(partitions - at_end))
    finally:
        c.close()
    return records, foreign


def main(argv):
    ap = Parser(prog="transactions.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True, help="bootstrap.servers")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--transactions", type=int, default=30)
    ap.add_argument("--per-transaction", type=int, default=50)
    ap.add_argument("--abort-every", type=int, default=3, help="abort every A-th transaction (0: none)")
    ap.add_argument("--trace-header", default=None, help="header Strait's trace stage adds (see above)")
    ap.add_argument("--timeout-ms", type=int, default=60000)
    ap.add_argument("--producer-prop", action="append", metavar="K=V", help="extra producer config (repeatable)")
    ap.add_argument("--consumer-prop", action="append", metavar="K=V", help="extra consumer config (repeatable)")
    args = ap.parse_args(argv)
    if args.transactions < 1 or args.per_transaction < 1:
        ap.error("--transactions and --per-transaction must be >= 1")
    if args.abort_every < 0 or args.timeout_ms <= 0:
        ap.error("--abort-every must be >= 0 and --timeout-ms > 0")

    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    run_id = uuid.uuid4().hex[:12]
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, run=run_id)
    try:
        import confluent_kafka
        CONTEXT.update(client="confluent-kafka %s" % confluent_kafka.__version__,
                       librdkafka=confluent_kafka.libversion()[0])

        def error_cb(err):
            log("client error: %s" % err)

        base = {"bootstrap.servers": args.bootstrap, "error_cb": error_cb}
        CONTEXT["phase"] = "produce"
        pconf = dict(base)
        pconf.update({
            "transactional.id": "strait-py-txn-" + run_id,
            "acks": "all",
            "linger.ms": 5,
            "client.id": "strait-conformance-python-txn-producer",
        })
        pconf.update(key_values(args.producer_prop, "--producer-prop"))
        committed, aborted = produce(pconf, args.topic, args.transactions, args.per_transaction,
                                     args.abort_every, run_id, deadline)
        emit({"type": "produced", "committed": len(committed), "aborted": len(aborted)})

        CONTEXT["phase"] = "consume"
        cconf = dict(base)
        cconf.update({
            "group.id": "strait-py-" + run_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "client.id": "strait-conformance-python-txn-consumer",
        })
        cconf.update(key_values(args.consumer_prop, "--consumer-prop"))
        records, foreign = consume(cconf, args.topic, run_id, deadline)
        CONTEXT.pop("phase", None)

        seen = {}
        bad_values = bad_traceparents = aborted_seen = 0
        problems = []
        for key, value, headers in records:
            seen[key] = seen.get(key, 0) + 1
            t, i = key.decode()[1:].split("-")
            if value != ("%s-%s-%s" % (run_id, t, i)).encode():
                bad_values += 1
                problems.append({"key": key.decode(), "problem": "value differs"})
            if key in aborted:
                aborted_seen += 1
                problems.append({"key": key.decode(), "problem": "record of an aborted transaction"})
            if args.trace_header is not None:
                tps = [v for (k, v) in headers if k == args.trace_header]
                if len(tps) != 1 or TRACEPARENT.match(tps[0] or b"") is None:
                    bad_traceparents += 1
                    problems.append({"key": key.decode(), "problem": "traceparent headers %r" % (tps,)})
        for p in problems[:MAX_PROBLEM_LINES]:
            emit(dict(type="problem", **p))
        duplicates = sum(n - 1 for n in seen.values())
        missing = len(committed - set(seen))
        ok = not (duplicates or missing or bad_values or aborted_seen or bad_traceparents)
        fields = dict(committed=len(committed), aborted=len(aborted), consumed=len(records),
                      distinct=len(seen), duplicates=duplicates, aborted_seen=aborted_seen,
                      missing=missing, bad_values=bad_values, bad_traceparents=bad_traceparents,
                      foreign=foreign, elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = ("duplicates %d, missing %d, aborted seen %d, bad values %d, bad traceparents %d"
                               % (duplicates, missing, aborted_seen, bad_values, bad_traceparents))
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
