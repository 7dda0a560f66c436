#!/usr/bin/env python3
"""librdkafka (confluent-kafka) consumer group: join, rebalance on join and on leave,
commit, and resume from the committed offsets.

TOPIC must exist with >= 2 partitions. Steps (each bounded by --timeout-ms overall):
  1. produce N/2 records (keys "first-<i>", spread over every partition), acks=all;
  2. consumer A joins group G: it must be assigned every partition;
  3. consumer B joins: A and B must end with disjoint, non-empty assignments covering every
     partition (rebalance on join); the other N/2 records are produced; A and B consume
     until the N records are read (B must read some: those on its partitions), committing
     synchronously what they processed;
  4. B closes (leaves): A must be assigned every partition again (rebalance on leave);
  5. A commits and closes; M more records are produced (keys "second-<i>");
  6. consumer C joins G: it must read exactly the M new records and none of the first N
     (it resumed from the committed offsets).
Every record of step 1 must be read by A or B (at least once; duplicates are counted).
Both consumers are polled from one thread, alternately, so eager rebalances complete.

Output: one JSON object per line ({"type":"step",...} per step); the last is
{"type":"summary","ok":...}. Exit 0 ok, 1 failed, 2 usage, 3 watchdog.
"""

import argparse
import sys
import uuid

from driver import (  # noqa: E402  (shared driver plumbing next to this script)
    CONTEXT, Deadline, Parser, emit, crashed, exit_with, key_values, log, start_watchdog, summary,
)

CONTEXT["driver"] = "group.py"


class Member:
    """One consumer with its current assignment, kept from the rebalance callbacks."""

    def __init__(self, name, conf, topic):
        from confluent_kafka import Consumer

        self.name = name
        self.assigned = set()
        self.read = []
        self.c = Consumer(conf)
        self.c.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke, on_lost=self._revoke)

    def _assign(self, consumer, partitions):
        self.assigned = {p.partition for p in partitions}

    def _revoke(self, consumer, partitions):
        # Commit what was processed before giving the partitions away.
        try:
            consumer.commit(asynchronous=False)
        except Exception as e:  # nothing consumed yet: no offsets to commit
            log("%s: commit on revoke: %s" % (self.name, e))
        self.assigned = set()

    def poll(self, timeout=0.2):
        for m in self.c.consume(num_messages=200, timeout=timeout):
            if m.error() is None:
                self.read.append(m.key().decode())

    def commit(self):
        try:
            self.c.commit(asynchronous=False)
        except Exception as e:
            log("%s: commit: %s" % (self.name, e))

    def close(self):
        self.c.close()


def wait(what, deadline, members, cond):
    while not cond():
        if deadline.expired():
            raise RuntimeError("timed out waiting for %s (assignments: %s)"
                               % (what, {m.name: sorted(m.assigned) for m in members}))
        for m in members:
            m.poll()


def produce(conf, topic, prefix, n, partitions, deadline, start=0):
    from confluent_kafka import Producer

    p = Producer(conf)
    errors = []
    for i in range(start, start + n):
        p.produce(topic, key=("%s-%d" % (prefix, i)).encode(), value=b"v", partition=i % partitions,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    p.flush(max(1.0, deadline.remaining()))
    if errors or len(p):
        raise RuntimeError("produce %s: %d errors, %d undelivered" % (prefix, len(errors), len(p)))


def main(argv):
    ap = Parser(prog="group.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, default=600, help="N")
    ap.add_argument("--more", type=int, default=60, help="M")
    ap.add_argument("--timeout-ms", type=int, default=90000)
    ap.add_argument("--consumer-prop", action="append", metavar="K=V")
    args = ap.parse_args(argv)
    if args.records < 1 or args.more < 1 or args.timeout_ms <= 0:
        ap.error("--records, --more and --timeout-ms must be positive")
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    run_id = uuid.uuid4().hex[:12]
    group = "strait-py-group-" + run_id
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, group=group)
    try:
        import confluent_kafka
        from confluent_kafka.admin import AdminClient

        CONTEXT.update(client="confluent-kafka %s" % confluent_kafka.__version__)
        base = {"bootstrap.servers": args.bootstrap, "error_cb": lambda e: log("client error: %s" % e)}
        md = AdminClient(base).list_topics(args.topic, timeout=max(1.0, deadline.remaining()))
        partitions = sorted(md.topics[args.topic].partitions)
        if len(partitions) < 2:
            raise RuntimeError("topic %s needs >= 2 partitions, has %d" % (args.topic, len(partitions)))
        every = set(partitions)
        half = args.records // 2
        produce(dict(base, acks="all"), args.topic, "first", half, len(partitions), deadline, start=0)
        emit({"type": "step", "step": "produced", "records": half})

        cconf = dict(base, **{"group.id": group, "auto.offset.reset": "earliest",
                              "enable.auto.commit": False, "session.timeout.ms": 10000})
        cconf.update(key_values(args.consumer_prop, "--consumer-prop"))
        a = Member("A", dict(cconf, **{"client.id": "strait-py-A"}), args.topic)
        wait("A to be assigned every partition", deadline, [a], lambda: a.assigned == every)
        emit({"type": "step", "step": "A joined", "A": sorted(a.assigned)})

        b = Member("B", dict(cconf, **{"client.id": "strait-py-B"}), args.topic)
        wait("A and B to share the partitions", deadline, [a, b],
             lambda: a.assigned and b.assigned and not (a.assigned & b.assigned)
             and (a.assigned | b.assigned) == every)
        emit({"type": "step", "step": "B joined, rebalanced", "A": sorted(a.assigned), "B": sorted(b.assigned)})
        b_partitions = set(b.assigned)
        produce(dict(base, acks="all"), args.topic, "first", args.records - half, len(partitions), deadline,
                start=half)

        first = {"first-%d" % i for i in range(args.records)}
        wait("A and B to read the first records", deadline, [a, b],
             lambda: first <= set(a.read) | set(b.read))
        a.commit()
        b.commit()
        b.close()
        wait("A to take every partition after B left", deadline, [a], lambda: a.assigned == every)
        emit({"type": "step", "step": "B left, rebalanced", "A": sorted(a.assigned)})
        a.commit()
        a.close()

        produce(dict(base, acks="all"), args.topic, "second", args.more, len(partitions), deadline)
        c = Member("C", dict(cconf, **{"client.id": "strait-py-C"}), args.topic)
        second = {"second-%d" % i for i in range(args.more)}
        wait("C to read the new records", deadline, [c], lambda: second <= set(c.read))
        # A little longer, bounded: anything else C would read arrives with the same fetches.
        for _ in range(5):
            c.poll()
        c.close()
        reread = sorted(set(c.read) - second)
        read_ab = a.read + b.read
        duplicates = len(read_ab) - len(set(read_ab))
        emit({"type": "step", "step": "C resumed", "read": len(c.read), "reread": len(reread)})
        ok = not reread and len(c.read) == args.more and len(b.read) > 0
        if not b.read:
            fields_error = "B read nothing from its partitions %s" % sorted(b_partitions)
        else:
            fields_error = "C did not resume at the committed offsets: reread %s" % reread[:10]
        fields = dict(read_by_a=len(a.read), read_by_b=len(b.read), duplicates_ab=duplicates,
                      read_by_c=len(c.read), reread_by_c=len(reread), elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = fields_error
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
