#!/usr/bin/env python3
"""librdkafka (confluent-kafka) produce / consume round trip.

Produces N records with a key, a binary value and three headers (a unique one and a
duplicated key, "dup", twice) with acks=all, waits for every delivery report, then consumes
them with a fresh consumer group from the earliest offset and checks, for every record:
key, value, headers (names, values and order) and that it is read at the offset its
delivery report gave.

With --trace-header NAME (Strait's trace stage on the topic), every consumed record must
carry the headers it was produced with, in order, followed by Strait's added headers, among
them exactly one NAME header holding a valid W3C traceparent; with --own-traceparent-every K, every K-th record is produced with its own
traceparent (first header), which it must keep unchanged, and gets no second one.
With --skip-foreign-keys, records whose key is not "key-<i>" (another producer's, on a
shared topic) are skipped and counted as "foreign" instead of failing the run.

Output: one JSON object per line on stdout; the last is {"type":"summary","ok":...}.
Logs go to stderr. Exit 0 ok, 1 failed, 2 usage, 3 watchdog (timeout-ms + grace exceeded).
Every wait is bounded by --timeout-ms (default 60000).
"""

import argparse
import re
import sys
import time
import uuid

from driver import (  # noqa: E402  (shared driver plumbing next to this script)
    CONTEXT, Deadline, Parser, emit, crashed, exit_with, key_values, log, start_watchdog, summary,
)

CONTEXT["driver"] = "produce_consume.py"

MAX_MISMATCH_LINES = 20


class DriverTimeout(Exception):
    pass


def expected_key(i):
    return ("key-%d" % i).encode()


def expected_value(run_id, i):
    # Text prefix plus bytes that are not valid UTF-8, so nothing may transcode the value.
    return ("value-%s-%d-" % (run_id, i)).encode() + bytes((i * 31 + j * 7) % 256 for j in range(24))


# Set from the command line: (header name, every K-th record has its own traceparent).
TRACE = {"header": None, "own_every": 0, "skip_foreign": False}
TRACEPARENT = re.compile(rb"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def own_traceparent(i):
    return ("00-%032x-%016x-01" % (0xABC0000 + i + 1, 0xDEF000 + i + 1)).encode()


def has_own(i):
    return TRACE["own_every"] > 0 and i % TRACE["own_every"] == 0


def expected_headers(i):
    own = [(TRACE["header"], own_traceparent(i))] if has_own(i) else []
    return own + [
        ("strait-index", str(i).encode()),
        ("dup", ("first-%d" % i).encode()),
        ("dup", ("second-%d" % i).encode()),
    ]


def headers_match(i, got):
    """Whether consumed headers are the produced ones (plus a valid traceparent
    appended by Strait when the record had none of its own)."""
    want = expected_headers(i)
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
        if not s.startswith("key-"):
            return None
        return int(s[4:])
    except Exception:
        return None


# ---------------------------------------------------------------- steps

def create_topic(admin_conf, topic, partitions, deadline):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(admin_conf)
    md = admin.list_topics(timeout=max(0.1, min(30.0, deadline.remaining())))
    rf = max(1, min(3, len(md.brokers)))
    fut = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=rf)],
                              operation_timeout=max(0.1, min(30.0, deadline.remaining())),
                              request_timeout=max(0.1, min(30.0, deadline.remaining())))[topic]
    try:
        fut.result(timeout=max(0.1, deadline.remaining()))
        log("created topic %s (partitions=%d, rf=%d)" % (topic, partitions, rf))
    except KafkaException as e:
        err = e.args[0]
        if err.name() != "TOPIC_ALREADY_EXISTS":
            raise
        log("topic %s already exists; reusing it" % topic)
    # Bounded wait until every partition has a leader in the metadata.
    while True:
        try:
            md = admin.list_topics(topic=topic, timeout=max(0.1, min(5.0, deadline.remaining())))
            t = md.topics.get(topic)
            if t is not None and t.error is None and len(t.partitions) >= partitions \
                    and all(p.leader >= 0 for p in t.partitions.values()):
                return rf, len(t.partitions)
        except KafkaException as e:
            log("list_topics(%s) failed, retrying: %s" % (topic, e))
        if deadline.expired():
            raise DriverTimeout("timed out waiting for topic %s to have leaders" % topic)
        time.sleep(min(0.1, deadline.remaining()))


def produce(conf, topic, n, run_id, deadline):
    from confluent_kafka import Producer

    delivered = {}  # index -> (partition, offset)
    errors = []

    def on_delivery(err, msg):
        i = index_of(msg.key())
        if err is not None:
            errors.append((i, err))
            log("delivery failed for record %s: %s" % (i, err))
        else:
            delivered[i] = (msg.partition(), msg.offset())

    p = Producer(conf)
    for i in range(n):
        while True:
            if deadline.expired():
                raise DriverTimeout("timed out producing (record %d of %d)" % (i, n))
            try:
                p.produce(topic, key=expected_key(i), value=expected_value(run_id, i),
                          headers=expected_headers(i), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(min(0.1, deadline.remaining()))
        p.poll(0)
    while len(p) > 0 and not deadline.expired():
        p.flush(min(1.0, max(0.01, deadline.remaining())))
    pending = len(p)
    return delivered, errors, pending


def consume(conf, topic, n, run_id, delivered, deadline):
    from confluent_kafka import Consumer, KafkaError

    c = Consumer(conf)
    seen = set()
    consumed = 0
    duplicates = 0
    mismatches = []
    per_partition_last = {}
    order_violations = 0
    try:
        c.subscribe([topic])
        while len(seen) < n and not deadline.expired():
            msgs = c.consume(num_messages=500, timeout=max(0.01, min(1.0, deadline.remaining())))
            for m in msgs:
                if m.error() is not None:
                    err = m.error()
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    log("consumer error: %s" % err)
                    if err.fatal():
                        raise RuntimeError("fatal consumer error: %s" % err)
                    continue
                i = index_of(m.key())
                if i is None and TRACE["skip_foreign"]:
                    continue
                consumed += 1
                problems = []
                if i is None or not (0 <= i < n):
                    problems.append("unexpected key %r" % (m.key(),))
                else:
                    if m.value() != expected_value(run_id, i):
                        problems.append("value differs")
                    got_headers = m.headers() or []
                    if not headers_match(i, list(got_headers)):
                        problems.append("headers differ: %r" % (got_headers,))
                    want = delivered.get(i)
                    if want is not None and want != (m.partition(), m.offset()):
                        problems.append("read at %d@%d, delivered at %d@%d"
                                        % (m.partition(), m.offset(), want[0], want[1]))
                    last = per_partition_last.get(m.partition())
                    if last is not None and m.offset() <= last:
                        order_violations += 1
                        problems.append("offset %d after %d on partition %d" % (m.offset(), last, m.partition()))
                    per_partition_last[m.partition()] = m.offset()
                    if i in seen:
                        duplicates += 1
                    elif not problems:
                        seen.add(i)
                if problems:
                    mismatches.append(i)
                    if len(mismatches) <= MAX_MISMATCH_LINES:
                        emit({"type": "mismatch", "index": i, "partition": m.partition(), "offset": m.offset(),
                              "problems": problems})
        if len(seen) == n:
            try:
                c.commit(asynchronous=False)
            except Exception as e:  # the check is the consumption, not the commit
                log("final commit failed: %s" % e)
    finally:
        c.close()
    return seen, consumed, duplicates, mismatches, order_violations


def main(argv):
    ap = Parser(prog="produce_consume.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True, help="bootstrap.servers")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--timeout-ms", type=int, default=60000)
    ap.add_argument("--partitions", type=int, default=3, help="partitions when creating the topic (default 3)")
    ap.add_argument("--group", default=None, help="consumer group (default strait-py-<random>)")
    ap.add_argument("--no-create-topic", action="store_true", help="the topic must already exist")
    ap.add_argument("--producer-prop", action="append", metavar="K=V", help="extra producer config (repeatable)")
    ap.add_argument("--consumer-prop", action="append", metavar="K=V", help="extra consumer config (repeatable)")
    ap.add_argument("--admin-prop", action="append", metavar="K=V", help="extra admin config (repeatable)")
    ap.add_argument("--trace-header", default=None, help="header Strait's trace stage adds (see above)")
    ap.add_argument("--skip-foreign-keys", action="store_true",
                    help="skip records whose key is not key-<i> (see above)")
    ap.add_argument("--own-traceparent-every", type=int, default=0, metavar="K",
                    help="every K-th record is produced with its own traceparent (needs --trace-header)")
    args = ap.parse_args(argv)
    if args.own_traceparent_every and not args.trace_header:
        ap.error("--own-traceparent-every needs --trace-header")
    if args.own_traceparent_every < 0:
        ap.error("--own-traceparent-every must be >= 0")
    TRACE.update(header=args.trace_header, own_every=args.own_traceparent_every,
                 skip_foreign=args.skip_foreign_keys)
    if args.records < 1:
        ap.error("--records must be >= 1")
    if args.timeout_ms <= 0:
        ap.error("--timeout-ms must be > 0")
    if args.partitions < 1:
        ap.error("--partitions must be >= 1")

    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    run_id = uuid.uuid4().hex[:12]
    group = args.group or "strait-py-" + run_id
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, records=args.records, group=group)

    try:
        import confluent_kafka
        CONTEXT.update(client="confluent-kafka %s" % confluent_kafka.__version__,
                       librdkafka=confluent_kafka.libversion()[0])

        def error_cb(err):
            log("client error: %s" % err)

        base = {"bootstrap.servers": args.bootstrap, "error_cb": error_cb}
        if not args.no_create_topic:
            CONTEXT["phase"] = "create topic"
            admin_conf = dict(base)
            admin_conf.update(key_values(args.admin_prop, "--admin-prop"))
            rf, parts = create_topic(admin_conf, args.topic, args.partitions, deadline)
            CONTEXT.update(replication_factor=rf, partitions=parts)

        CONTEXT["phase"] = "produce"
        pconf = dict(base)
        pconf.update({
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": max(1000, int(deadline.remaining() * 1000)),
            "client.id": "strait-conformance-python-producer",
        })
        pconf.update(key_values(args.producer_prop, "--producer-prop"))
        delivered, errors, pending = produce(pconf, args.topic, args.records, run_id, deadline)
        per_partition = {}
        for (p, _o) in delivered.values():
            per_partition[str(p)] = per_partition.get(str(p), 0) + 1
        emit({"type": "produced", "records": args.records, "delivered": len(delivered),
              "delivery_errors": len(errors), "pending": pending, "per_partition": per_partition})
        if len(delivered) != args.records:
            first = errors[0][1] if errors else None
            return summary(False, delivered=len(delivered), delivery_errors=len(errors), pending=pending,
                           error="only %d of %d records delivered%s"
                                 % (len(delivered), args.records, "" if first is None else "; first error: %s" % first),
                           elapsed_ms=deadline.elapsed_ms())

        CONTEXT["phase"] = "consume"
        cconf = dict(base)
        cconf.update({
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "client.id": "strait-conformance-python-consumer",
        })
        cconf.update(key_values(args.consumer_prop, "--consumer-prop"))
        seen, consumed, duplicates, mismatches, order_violations = consume(
            cconf, args.topic, args.records, run_id, delivered, deadline)
        missing = args.records - len(seen)
        emit({"type": "consumed", "records": consumed, "distinct_ok": len(seen), "missing": missing,
              "duplicates": duplicates, "mismatches": len(mismatches), "order_violations": order_violations})
        CONTEXT.pop("phase", None)
        ok = missing == 0 and not mismatches
        fields = dict(produced=args.records, delivered=len(delivered), consumed=consumed, verified=len(seen),
                      missing=missing, duplicates=duplicates, mismatches=len(mismatches),
                      order_violations=order_violations, elapsed_ms=deadline.elapsed_ms())
        if not ok:
            why = []
            if missing:
                why.append("%d record(s) not consumed intact within the timeout" % missing)
            if mismatches:
                why.append("%d record(s) differ" % len(mismatches))
            fields["error"] = "; ".join(why)
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
