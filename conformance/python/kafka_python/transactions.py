#!/usr/bin/env python3
"""kafka-python transactions: read_committed sees committed data once, aborted data never.

Produces T transactions of K records each to TOPIC (which must exist) with kafka-python's
transactional producer (transactional_id strait-kp-txn-<run>, idempotent, acks=all): every
A-th transaction (the A-th, 2A-th, ...) is aborted after all its records were acknowledged, the
others are committed. Keys "t<transaction>-<index>", values "<run>-<transaction>-<index>",
records spread over the partitions (partition = index % P). Then a read_committed consumer
(assign, from the beginning, up to the last stable offsets taken after the last transaction)
checks: each committed record exactly once with its value intact, no record of an aborted
transaction; records of other runs are skipped and counted as "foreign". With --trace-header
NAME, every record read must carry exactly one NAME header holding a valid W3C traceparent.

Output: one JSON object per line; the last is {"type":"summary","ok":...} with committed,
aborted, consumed, distinct, duplicates, aborted_seen, missing, bad_values, bad_traceparents.
Exit 0 ok, 1 failed, 2 usage, 3 watchdog. Every wait is bounded by --timeout-ms.
"""

import argparse
import re
import sys
import uuid

import common
from common import CONTEXT, Deadline, Parser, crashed, emit, exit_with, log, start_watchdog, summary

CONTEXT["driver"] = "kafka_python/transactions.py"

TRACEPARENT = re.compile(rb"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
MAX_PROBLEM_LINES = 20


def produce(conf, topic, partitions, transactions, per_txn, abort_every, run_id, deadline):
    from kafka import KafkaProducer

    p = KafkaProducer(**conf)
    committed, aborted = set(), set()
    try:
        p.init_transactions()
        for t in range(transactions):
            if deadline.expired():
                raise RuntimeError("timed out producing transaction %d of %d" % (t, transactions))
            p.begin_transaction()
            futures = []
            for i in range(per_txn):
                key = "t%d-%d" % (t, i)
                futures.append((key, p.send(topic, key=key.encode(), value=("%s-%d-%d" % (run_id, t, i)).encode(),
                                            partition=i % partitions)))
            p.flush(timeout=deadline.remaining())
            failed = [(k, f.exception) for k, f in futures if not (f.is_done and f.succeeded())]
            if failed:
                raise RuntimeError("transaction %d: %d record(s) not acknowledged, first %s: %r"
                                   % (t, len(failed), failed[0][0], failed[0][1]))
            keys = {k for k, _f in futures}
            if abort_every and (t + 1) % abort_every == 0:
                p.abort_transaction()
                aborted |= keys
            else:
                p.commit_transaction()
                committed |= keys
    finally:
        p.close(timeout=max(0.0, min(5.0, deadline.remaining())))
    return committed, aborted


def consume(conf, topic, run_id, deadline):
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(**conf)
    records, foreign = [], 0
    try:
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        if not tps:
            raise RuntimeError("topic %s has no partitions" % topic)
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps, timeout_ms=common.timeout_ms(deadline))

        def behind():
            return [tp for tp in tps if c.position(tp, timeout_ms=common.timeout_ms(deadline)) < ends[tp]]
        while behind():
            if deadline.expired():
                raise RuntimeError("read_committed consumer did not reach the last stable offsets %s"
                                   % {tp.partition: o for tp, o in ends.items()})
            for _tp, batch in c.poll(timeout_ms=min(1000, common.timeout_ms(deadline, 10))).items():
                for r in batch:
                    if not (r.value or b"").startswith(run_id.encode() + b"-"):
                        foreign += 1
                        continue
                    records.append((r.key, r.value, list(r.headers or [])))
    finally:
        c.close(autocommit=False)
    return records, foreign


def main(argv):
    ap = Parser(prog="transactions.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_client_args(ap)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--transactions", type=int, default=30)
    ap.add_argument("--per-transaction", type=int, default=50)
    ap.add_argument("--abort-every", type=int, default=3, help="abort every A-th transaction (0: none)")
    ap.add_argument("--trace-header", default=None, help="the header Strait's trace stage adds")
    ap.add_argument("--timeout-ms", type=int, default=90000)
    args = ap.parse_args(argv)
    if args.transactions < 1 or args.per_transaction < 1 or args.abort_every < 0 or args.timeout_ms <= 0:
        ap.error("--transactions, --per-transaction and --timeout-ms must be >= 1, --abort-every >= 0")
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    run_id = uuid.uuid4().hex[:12]
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, run=run_id)
    base = common.setup(args)
    try:
        from kafka import KafkaConsumer

        probe = KafkaConsumer(**base)
        try:
            partitions = len(probe.partitions_for_topic(args.topic) or [])
        finally:
            probe.close()
        if not partitions:
            raise RuntimeError("topic %s does not exist" % args.topic)
        CONTEXT["phase"] = "produce"
        pconf = dict({"transactional_id": "strait-kp-txn-" + run_id, "acks": "all", "linger_ms": 5,
                      "client_id": "strait-kp-txn-producer", "max_block_ms": common.timeout_ms(deadline)}, **base)
        committed, aborted = produce(pconf, args.topic, partitions, args.transactions, args.per_transaction,
                                     args.abort_every, run_id, deadline)
        emit({"type": "produced", "committed": len(committed), "aborted": len(aborted)})

        CONTEXT["phase"] = "consume"
        cconf = dict({"isolation_level": "read_committed", "enable_auto_commit": False,
                      "client_id": "strait-kp-txn-consumer"}, **base)
        records, foreign = consume(cconf, args.topic, run_id, deadline)
        CONTEXT.pop("phase", None)

        seen, problems = {}, []
        bad_values = bad_traceparents = aborted_seen = 0
        for key, value, headers in records:
            k = key.decode()
            seen[k] = seen.get(k, 0) + 1
            t, i = k[1:].split("-")
            if value != ("%s-%s-%s" % (run_id, t, i)).encode():
                bad_values += 1
                problems.append({"key": k, "problem": "value differs"})
            if k in aborted:
                aborted_seen += 1
                problems.append({"key": k, "problem": "record of an aborted transaction"})
            if args.trace_header is not None:
                tps = [v for (h, v) in headers if h == args.trace_header]
                if len(tps) != 1 or TRACEPARENT.match(tps[0] or b"") is None:
                    bad_traceparents += 1
                    problems.append({"key": k, "problem": "traceparent headers %r" % (tps,)})
        for p in problems[:MAX_PROBLEM_LINES]:
            emit(dict(type="problem", **p))
        duplicates = sum(n - 1 for n in seen.values())
        missing = len(committed - set(seen))
        ok = not (duplicates or missing or bad_values or aborted_seen or bad_traceparents)
        fields = dict(committed=len(committed), aborted=len(aborted), consumed=len(records), distinct=len(seen),
                      duplicates=duplicates, aborted_seen=aborted_seen, missing=missing, bad_values=bad_values,
                      bad_traceparents=bad_traceparents, foreign=foreign, elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = ("duplicates %d, missing %d, aborted seen %d, bad values %d, bad traceparents %d"
                               % (duplicates, missing, aborted_seen, bad_values, bad_traceparents))
            log(fields["error"])
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
