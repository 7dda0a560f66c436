#!/usr/bin/env python3
"""kafka-python consumer group: members join, rebalance when one leaves, commit, and the survivor
resumes exactly at the committed offsets (no loss, no duplicates); a new member resumes after
everyone left.

TOPIC must exist with >= 2 partitions. Each member is a KafkaConsumer on its own thread
(subscribe, enable_auto_commit=False, a synchronous commit after every poll that returned
records), holding (its partitions paused, still polling) until the run lets it consume:
  1. N records (key "<i>", partition i % P) are produced with acks=all;
  2. A joins: it must be assigned every partition;
  3. B joins: A and B must end with disjoint, non-empty assignments covering every partition;
  4. each consumes --part records (max_records bounds each poll) and commits; the group's
     committed offsets are then read (KafkaConsumer.committed) and must equal, per partition,
     the last offset its member read + 1;
  5. B closes (leaves): A must be assigned every partition again; A consumes to the end, and its
     first offset on each partition must be the committed one; then its committed offsets must
     equal the end offsets, and every offset of every partition must have been read exactly
     once by A or B;
  6. A closes; M more records are produced; C joins the group and must read exactly those.

Output: one JSON object per line ({"type":"step","step":...} per step, "assignment",
"committed", "resume" lines); the last is {"type":"summary","ok":...} with missing, duplicates,
resume_mismatches, commit_mismatches. Exit 0 ok, 1 failed, 2 usage, 3 watchdog.
"""

import argparse
import queue
import sys
import threading
import uuid

import common
from common import CONTEXT, Deadline, Parser, crashed, emit, exit_with, log, start_watchdog, summary

CONTEXT["driver"] = "kafka_python/group.py"


class Member(threading.Thread):
    """A KafkaConsumer used by this thread only; the run steers it with `budget` (records it may
    have read in all; None: no limit) and runs calls on it through `call`."""

    def __init__(self, name, conf, topic):
        super().__init__(name="member-" + name, daemon=True)
        self.label, self.conf, self.topic = name, conf, topic
        self.lock = threading.Lock()
        self.budget = 0
        self.assigned = set()
        self.generation = 0
        self.read = []  # (partition, offset, key)
        self.first = {}  # generation -> {partition: first offset read}
        self.committed_reads = 0
        self.error = None
        self.stopping = False
        self.calls = queue.Queue()
        self.consumer = None

    # listener: runs inside poll
    def on_partitions_revoked(self, revoked):
        with self.lock:
            self.assigned = set()

    def on_partitions_assigned(self, assigned):
        with self.lock:
            self.assigned = {tp.partition for tp in assigned}
            self.generation += 1
            holding = self.budget is not None and len(self.read) >= self.budget
        if holding and assigned:
            self.consumer.pause(*assigned)

    def on_partitions_lost(self, lost):
        self.on_partitions_revoked(lost)

    def run(self):
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        member = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                member.on_partitions_revoked(revoked)

            def on_partitions_assigned(self, assigned):
                member.on_partitions_assigned(assigned)

            def on_partitions_lost(self, lost):
                member.on_partitions_lost(lost)

        try:
            self.consumer = c = KafkaConsumer(**self.conf)
            c.subscribe([self.topic], listener=Listener())
            while not self.stopping:
                self._serve_calls()
                with self.lock:
                    budget, done = self.budget, len(self.read)
                    generation = self.generation
                holding = budget is not None and done >= budget
                assignment = c.assignment()
                if assignment:
                    (c.pause if holding else c.resume)(*assignment)
                batches = c.poll(timeout_ms=100, max_records=500 if budget is None else max(1, budget - done))
                got = [r for records in batches.values() for r in records]
                if got:
                    with self.lock:
                        first = self.first.setdefault(generation, {})
                        for r in got:
                            first.setdefault(r.partition, r.offset)
                            self.read.append((r.partition, r.offset, r.key.decode()))
                    c.commit()
                    with self.lock:
                        self.committed_reads = len(self.read)
            self._serve_calls()
            c.close(autocommit=False)
        except Exception as e:
            log("member %s: %s: %s" % (self.label, type(e).__name__, e))
            self.error = "%s: %s" % (type(e).__name__, e)

    def _serve_calls(self):
        while True:
            try:
                fn, box, done = self.calls.get_nowait()
            except queue.Empty:
                return
            try:
                box.append(("ok", fn(self.consumer)))
            except Exception as e:
                box.append(("error", e))
            done.set()

    def call(self, fn, deadline):
        """Runs fn(consumer) on the member's thread; returns its result (bounded by the deadline)."""
        box, done = [], threading.Event()
        self.calls.put((fn, box, done))
        if not done.wait(max(0.01, deadline.remaining())):
            raise RuntimeError("member %s did not run a call before the deadline" % self.label)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def snapshot(self):
        with self.lock:
            return set(self.assigned), self.generation, len(self.read), self.committed_reads

    def set_budget(self, budget):
        with self.lock:
            self.budget = budget

    def stop(self, deadline):
        self.stopping = True
        self.join(max(0.01, deadline.remaining()))
        if self.is_alive():
            raise RuntimeError("member %s did not close before the deadline" % self.label)


def wait(what, deadline, members, cond):
    """Bounded wait for cond(); the members poll on their own threads meanwhile."""
    event = threading.Event()
    while not cond():
        for m in members:
            if m.error:
                raise RuntimeError("member %s failed: %s" % (m.label, m.error))
        if deadline.expired():
            raise RuntimeError("timed out waiting for %s (members: %s)"
                               % (what, {m.label: sorted(m.snapshot()[0]) for m in members}))
        event.wait(0.05)  # polling interval of a bounded wait, not a synchronisation sleep


def produce(conf, topic, keys, partitions, deadline):
    from kafka import KafkaProducer

    p = KafkaProducer(**conf)
    try:
        futures = [p.send(topic, key=k.encode(), value=b"v-" + k.encode(), partition=n % partitions)
                   for n, k in enumerate(keys)]
        p.flush(timeout=deadline.remaining())
        failed = [f for f in futures if not (f.is_done and f.succeeded())]
        if failed:
            raise RuntimeError("%d of %d records not acknowledged (first: %r)"
                               % (len(failed), len(keys), failed[0].exception))
    finally:
        p.close(timeout=max(0.0, min(5.0, deadline.remaining())))


def committed_of(partitions, topic, deadline):
    from kafka import TopicPartition

    def fn(c):
        out = {}
        for p in sorted(partitions):
            om = c.committed(TopicPartition(topic, p), timeout_ms=common.timeout_ms(deadline))
            out[p] = None if om is None else (om if isinstance(om, int) else om.offset)
        return out
    return fn


def main(argv):
    ap = Parser(prog="group.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_client_args(ap)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, default=1000, help="N")
    ap.add_argument("--part", type=int, default=None, help="records each member reads before B leaves (N/10)")
    ap.add_argument("--more", type=int, default=50, help="M")
    ap.add_argument("--timeout-ms", type=int, default=90000)
    args = ap.parse_args(argv)
    part = args.part if args.part is not None else args.records // 10
    if args.records < 1 or args.more < 1 or part < 1 or args.timeout_ms <= 0:
        ap.error("--records, --part, --more and --timeout-ms must be positive")
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    group = "strait-kp-group-" + uuid.uuid4().hex[:12]
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, group=group, records=args.records, part=part)
    base = common.setup(args)
    members = []
    try:
        from kafka import KafkaConsumer, TopicPartition

        CONTEXT["phase"] = "metadata"
        probe = KafkaConsumer(**base)
        try:
            parts = probe.partitions_for_topic(args.topic)
        finally:
            probe.close()
        if not parts or len(parts) < 2:
            raise RuntimeError("topic %s needs >= 2 partitions, has %r" % (args.topic, parts))
        every = set(parts)
        if part * 2 > args.records // len(every):
            ap.error("--part must leave records for the survivor: at most N / (2 * partitions)")
        CONTEXT["phase"] = "produce"
        pconf = dict({"acks": "all", "linger_ms": 5}, **base)
        produce(pconf, args.topic, [str(i) for i in range(args.records)], len(every), deadline)
        emit({"type": "step", "step": "produced", "records": args.records, "partitions": len(every)})

        cconf = dict({"group_id": group, "auto_offset_reset": "earliest", "enable_auto_commit": False,
                      "session_timeout_ms": 10000, "heartbeat_interval_ms": 1000}, **base)
        CONTEXT["phase"] = "A joins"
        a = Member("A", dict(cconf, client_id="strait-kp-A"), args.topic)
        members.append(a)
        a.start()
        wait("A to be assigned every partition", deadline, [a], lambda: a.snapshot()[0] == every)
        emit({"type": "step", "step": "A joined", "A": sorted(a.snapshot()[0])})

        CONTEXT["phase"] = "B joins"
        b = Member("B", dict(cconf, client_id="strait-kp-B"), args.topic)
        members.append(b)
        b.start()

        def shared():
            sa, sb = a.snapshot()[0], b.snapshot()[0]
            return sa and sb and not (sa & sb) and (sa | sb) == every
        wait("A and B to share the partitions", deadline, [a, b], shared)
        a_parts, b_parts = a.snapshot()[0], b.snapshot()[0]
        emit({"type": "step", "step": "B joined, rebalanced", "A": sorted(a_parts), "B": sorted(b_parts)})

        CONTEXT["phase"] = "consume part"
        a.set_budget(part)
        b.set_budget(part)
        wait("A and B to read and commit %d records each" % part, deadline, [a, b],
             lambda: a.snapshot()[3] >= part and b.snapshot()[3] >= part)
        last = {}
        for p, o, _k in a.read + b.read:
            last[p] = max(last.get(p, -1), o)
        committed = dict(a.call(committed_of(a_parts, args.topic, deadline), deadline))
        committed.update(b.call(committed_of(b_parts, args.topic, deadline), deadline))
        commit_mismatches = {p: [committed.get(p), last[p] + 1] for p in last if committed.get(p) != last[p] + 1}
        emit({"type": "committed", "before_leave": {str(p): o for p, o in committed.items()},
              "read_a": len(a.read), "read_b": len(b.read)})
        emit({"type": "step", "step": "consumed and committed", "A": len(a.read), "B": len(b.read)})

        CONTEXT["phase"] = "B leaves"
        a_generation = a.snapshot()[1]
        b.stop(deadline)
        if b.error:
            raise RuntimeError("member B failed: %s" % b.error)
        wait("A to take every partition after B left", deadline, [a],
             lambda: a.snapshot()[0] == every and a.snapshot()[1] > a_generation)
        resumed_generation = a.snapshot()[1]
        emit({"type": "step", "step": "B left, rebalanced", "A": sorted(a.snapshot()[0])})

        CONTEXT["phase"] = "A consumes to the end"
        a.set_budget(None)
        wait("A to read the rest", deadline, [a], lambda: a.snapshot()[3] >= args.records - len(b.read))
        ends = a.call(lambda c: c.end_offsets([TopicPartition(args.topic, p) for p in every],
                                              timeout_ms=common.timeout_ms(deadline)), deadline)
        ends = {tp.partition: o for tp, o in ends.items()}
        final = a.call(committed_of(every, args.topic, deadline), deadline)
        with a.lock:
            first = dict(a.first.get(resumed_generation, {}))
        resume_mismatches = {}
        for p in sorted(every):
            want = committed.get(p) or 0
            if want < ends[p] and first.get(p) != want:
                resume_mismatches[p] = {"committed": committed.get(p), "first_read": first.get(p)}
        emit({"type": "resume", "first_read": {str(p): o for p, o in first.items()},
              "committed": {str(p): o for p, o in committed.items()}})
        final_mismatches = {p: [final.get(p), ends[p]] for p in every if final.get(p) != ends[p]}
        emit({"type": "committed", "final": {str(p): o for p, o in final.items()},
              "end": {str(p): o for p, o in ends.items()}})
        a.stop(deadline)

        reads = [(p, o) for p, o, _k in a.read + b.read]
        distinct = set(reads)
        duplicates = len(reads) - len(distinct)
        missing = sum(1 for p in every for o in range(ends[p]) if (p, o) not in distinct)
        keys_missing = args.records - len({k for _p, _o, k in a.read + b.read} & {str(i) for i in range(args.records)})

        CONTEXT["phase"] = "C resumes"
        more = ["more-%d" % i for i in range(args.more)]
        produce(pconf, args.topic, more, len(every), deadline)
        c = Member("C", dict(cconf, client_id="strait-kp-C"), args.topic)
        members.append(c)
        c.set_budget(None)
        c.start()
        wait("C to read the new records", deadline, [c], lambda: c.snapshot()[2] >= args.more)
        c.stop(deadline)
        reread = sorted({k for _p, _o, k in c.read} - set(more))
        emit({"type": "step", "step": "C resumed", "read": len(c.read), "reread": len(reread)})
        CONTEXT.pop("phase", None)

        ok = not (missing or keys_missing or duplicates or resume_mismatches or commit_mismatches
                  or final_mismatches or reread) and len(c.read) == args.more and b.read and a.read
        fields = dict(read_by_a=len(a.read), read_by_b=len(b.read), read_by_c=len(c.read), missing=missing,
                      keys_missing=keys_missing, duplicates=duplicates,
                      resume_mismatches={str(k): v for k, v in resume_mismatches.items()},
                      commit_mismatches={str(k): v for k, v in commit_mismatches.items()},
                      final_commit_mismatches={str(k): v for k, v in final_mismatches.items()},
                      reread_by_c=len(reread), elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = "group checks failed (see the counts)"
        return summary(bool(ok), **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
