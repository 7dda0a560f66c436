#!/usr/bin/env python3
"""Large records with an otherwise unmodified kafka-python client: produce N values of BYTES
bytes, or consume and fingerprint them. Twins: `conformance/java/run LargeRecords` and
`conformance/python/large_records.py` (librdkafka): same command line, same JSON lines, same
values (the value spec and its self-check are in conformance/python/large_records.py).

  large_records.py produce --bootstrap B --topic T --count N --size BYTES [--seed S] [--partition P]
        [--key-prefix K] [--transactional-id ID [--abort-indices i,j,...]] [--config k=v ...]
  large_records.py consume --bootstrap B --topic T --expect N [--group G] [--read-committed]
        [--seek P:O ...] [--stop-after K] [--config k=v ...]
  (both: --timeout-s S, default 120, or --timeout-ms MS; TLS options as the other kafka-python
  drivers)

produce: to T (must exist), kafka-python's defaults (acks=all, idempotent) except the size
  setting max_request_size = max(1 MiB, BYTES + 1 MiB) (kafka-python refuses a larger record
  locally with MessageSizeTooLargeError; it has no buffer-memory bound to raise). Records are
  sent one after another without waiting. With --transactional-id each record is its own
  transaction (begin, send, flush, then abort when its index is in --abort-indices, else commit).
  Output: {"type":"acked"|"aborted","index","partition","offset","size","sha256"} per record;
  {"type":"error","index","error","retriable"} per failed record; summary count, acked,
  aborted, errors, pending, unsent, size_settings.
consume: without --group assigns every partition of T from the beginning (or the --seek P:O
  partitions from offset O); with --group G subscribes (auto_offset_reset=earliest,
  enable_auto_commit=False) and commits each record's offset + 1 synchronously after printing
  it. kafka-python's consumer defaults otherwise: fetch_max_bytes (50 MiB) and
  max_partition_fetch_bytes (1 MiB) are left alone (a first batch larger than them comes whole),
  receive_message_max_bytes is 100000000. --read-committed: isolation_level=read_committed.
  Output: {"type":"record","partition","offset","size","sha256","headers":[[k,v],...],"key",
  "index"} per record; summary count. ok: N records read.
  --stop-after K: after the K-th record (printed and committed) print the summary (halted=true)
  and exit at once with os._exit(0): no close, no LeaveGroup, like a crash.

Exit 0 ok, 1 failed, 2 usage, 3 watchdog (timeout + 15 s grace exceeded).
"""

import argparse
import hashlib
import importlib.util
import os
import sys

import common
from common import CONTEXT, EXIT_OK, Deadline, Parser, crashed, emit, exit_with, log, start_watchdog, summary

MIB = 1024 * 1024
DEFAULT_TIMEOUT_MS = 120000


def _value_spec():
    """value() and self_check() of the librdkafka twin, so both stacks make the same bytes."""
    spec = importlib.util.spec_from_file_location("librdkafka_large_records",
                                                  os.path.join(common.PYTHON_DIR, "large_records.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.value, module.self_check


value, self_check = _value_spec()
CONTEXT["driver"] = "kafka_python/large_records.py"  # after loading the twin, which sets its own


class Usage(Exception):
    pass


def produce(args, base, deadline):
    from kafka import KafkaProducer

    if args.count < 0 or args.size < 0:
        raise Usage("--count and --size must be >= 0")
    abort = set()
    if args.abort_indices is not None:
        if args.transactional_id is None:
            raise Usage("--abort-indices needs --transactional-id")
        try:
            abort = {int(s) for s in args.abort_indices.split(",") if s.strip()}
        except ValueError:
            raise Usage("--abort-indices expects i,j,..., got %r" % args.abort_indices)
    n, size, txn = args.count, args.size, args.transactional_id
    conf = {"max_request_size": max(MIB, size + MIB), "client_id": "strait-kp-large-producer"}
    if txn is not None:
        conf["transactional_id"] = txn
    conf.update(base)
    CONTEXT.update(count=n, size=size, seed=args.seed, transactional_id=txn, abort_indices=sorted(abort),
                   size_settings={"max_request_size": conf["max_request_size"]})
    counts = {"acked": 0, "aborted": 0, "errors": 0}
    sent = 0

    def error_line(i, e):
        counts["errors"] += 1
        d = common.describe(e)
        emit({"type": "error", "index": i, "error": "%s: %s" % (d["exception"], d["message"]),
              "retriable": d["retriable"]})

    def result_line(kind, i, md, sha):
        counts[kind] += 1
        emit({"type": kind, "index": i, "partition": md.partition, "offset": md.offset, "size": size,
              "sha256": sha})

    CONTEXT["phase"] = "create producer"
    p = KafkaProducer(**conf)
    try:
        if txn is not None:
            CONTEXT["phase"] = "init_transactions"
            p.init_transactions()
        CONTEXT["phase"] = "produce"
        futures = []
        for i in range(n):
            if deadline.expired():
                break
            v = value(args.seed, i, size)
            sha = hashlib.sha256(v).hexdigest()
            if txn is not None:
                p.begin_transaction()
            try:
                f = p.send(args.topic, key=(args.key_prefix + str(i)).encode(), value=v,
                           headers=[("n", str(i).encode())], partition=args.partition)
            except Exception as e:  # refused before queueing (e.g. MessageSizeTooLargeError)
                sent += 1
                error_line(i, e)
                if txn is not None:
                    p.abort_transaction()
                continue
            sent += 1
            del v
            if txn is None:
                futures.append((i, f, sha))
                continue
            p.flush(timeout=deadline.remaining())
            if not f.is_done:
                log("record %d: no result within the timeout" % i)
                break
            if not f.succeeded():
                error_line(i, f.exception)
                p.abort_transaction()
            elif i in abort:
                p.abort_transaction()
                result_line("aborted", i, f.value, sha)
            else:
                p.commit_transaction()
                result_line("acked", i, f.value, sha)
        CONTEXT["phase"] = "flush"
        p.flush(timeout=deadline.remaining())
        for i, f, sha in futures:
            if not f.is_done:
                continue
            if f.succeeded():
                result_line("acked", i, f.value, sha)
            else:
                error_line(i, f.exception)
    finally:
        p.close(timeout=max(0.0, min(5.0, deadline.remaining())))
    CONTEXT.pop("phase", None)
    done = counts["acked"] + counts["aborted"] + counts["errors"]
    want_aborted = len([i for i in abort if 0 <= i < n]) if txn is not None else 0
    ok = (counts["errors"] == 0 and done == n and counts["acked"] == n - want_aborted
          and counts["aborted"] == want_aborted)
    fields = dict(acked=counts["acked"], aborted=counts["aborted"], errors=counts["errors"],
                  pending=sent - done, unsent=n - sent, elapsed_ms=deadline.elapsed_ms())
    if not ok:
        fields["error"] = "%d error(s), %d without a result, %d unsent (%d acked, %d aborted of %d)" % (
            counts["errors"], sent - done, n - sent, counts["acked"], counts["aborted"], n)
    return summary(ok, **fields)


def consume(args, base, deadline):
    from kafka import KafkaConsumer, TopicPartition

    if args.expect < 0:
        raise Usage("--expect must be >= 0")
    if args.stop_after is not None and args.stop_after < 1:
        raise Usage("--stop-after must be >= 1")
    seeks = []
    for s in args.seek or []:
        try:
            part, off = s.split(":")
            seeks.append((int(part), int(off)))
        except ValueError:
            raise Usage("--seek expects PARTITION:OFFSET, got %r" % s)
    if args.group is not None and seeks:
        raise Usage("--seek is for the no-group mode (without --group)")
    conf = {"isolation_level": "read_committed" if args.read_committed else "read_uncommitted",
            "enable_auto_commit": False, "client_id": "strait-kp-large-consumer"}
    if args.group is not None:
        conf.update(group_id=args.group, auto_offset_reset="earliest")
    conf.update(base)
    CONTEXT.update(expect=args.expect, group=args.group, isolation=conf["isolation_level"])
    count = nbytes = 0
    CONTEXT["phase"] = "create consumer"
    c = KafkaConsumer(**conf)
    try:
        if args.group is not None:
            c.subscribe([args.topic])
        else:
            if seeks:
                tps = [TopicPartition(args.topic, p) for p, _o in seeks]
            else:
                parts = c.partitions_for_topic(args.topic)
                if not parts:
                    raise RuntimeError("topic %s: no partitions" % args.topic)
                tps = [TopicPartition(args.topic, p) for p in sorted(parts)]
            c.assign(tps)
            if seeks:
                for (p, o) in seeks:
                    c.seek(TopicPartition(args.topic, p), o)
            else:
                c.seek_to_beginning(*tps)
            CONTEXT["assigned"] = [tp.partition for tp in tps]
        CONTEXT["phase"] = "consume"
        while count < args.expect and not deadline.expired():
            batches = c.poll(timeout_ms=min(1000, common.timeout_ms(deadline, 10)), max_records=1)
            for tp, records in batches.items():
                for r in records:
                    v = r.value
                    headers, index = [], None
                    for k, hv in r.headers or []:
                        text = None if hv is None else hv.decode("utf-8", "replace")
                        headers.append([k, text])
                        if k == "n" and index is None and text is not None:
                            try:
                                index = int(text)
                            except ValueError:
                                pass
                    emit({"type": "record", "partition": r.partition, "offset": r.offset,
                          "size": None if v is None else len(v),
                          "sha256": None if v is None else hashlib.sha256(v).hexdigest(), "headers": headers,
                          "key": None if r.key is None else r.key.decode("utf-8", "replace"), "index": index})
                    count += 1
                    nbytes += 0 if v is None else len(v)
                    if args.group is not None:
                        from kafka.structs import OffsetAndMetadata
                        c.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
                    if args.stop_after is not None and count >= args.stop_after:
                        CONTEXT.pop("phase", None)
                        summary(True, count=count, bytes=nbytes, halted=True, elapsed_ms=deadline.elapsed_ms())
                        exit_with(EXIT_OK)  # os._exit: no close, no LeaveGroup
    finally:
        c.close(autocommit=False)
    CONTEXT.pop("phase", None)
    ok = count == args.expect
    fields = dict(count=count, bytes=nbytes, elapsed_ms=deadline.elapsed_ms())
    if not ok:
        fields["error"] = "read %d of %d record(s) within the timeout (%d ms)" % (count, args.expect,
                                                                                deadline.timeout_ms)
    return summary(ok, **fields)


def main(argv):
    ap = Parser(prog="large_records.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", metavar="MODE", parser_class=Parser)

    def sub_parser(name, help_text):
        sp = sub.add_parser(name, help=help_text, description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        common.add_client_args(sp)
        sp.add_argument("--topic", required=True)
        sp.add_argument("--timeout-s", type=float, default=None, help="bound on the whole run (default 120)")
        sp.add_argument("--timeout-ms", type=int, default=None, help="the same bound in milliseconds")
        return sp

    pp = sub_parser("produce", "produce N large records")
    pp.add_argument("--count", type=int, required=True)
    pp.add_argument("--size", type=int, required=True)
    pp.add_argument("--seed", type=int, default=1)
    pp.add_argument("--partition", type=int, default=None)
    pp.add_argument("--key-prefix", default="")
    pp.add_argument("--transactional-id", default=None)
    pp.add_argument("--abort-indices", default=None, metavar="i,j,...")
    cp = sub_parser("consume", "consume and fingerprint records")
    cp.add_argument("--expect", type=int, required=True)
    cp.add_argument("--group", default=None)
    cp.add_argument("--read-committed", action="store_true")
    cp.add_argument("--seek", action="append", metavar="P:O")
    cp.add_argument("--stop-after", type=int, default=None, metavar="K")
    args = ap.parse_args(argv)
    if args.mode is None:
        ap.error("missing mode: produce or consume")
    CONTEXT.update(mode=args.mode)
    timeout_ms = (args.timeout_ms if args.timeout_ms is not None else
                  int(round(args.timeout_s * 1000)) if args.timeout_s is not None else DEFAULT_TIMEOUT_MS)
    if timeout_ms <= 0:
        ap.error("the timeout must be > 0")
    deadline = Deadline(timeout_ms)
    start_watchdog(deadline)
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic)
    base = common.setup(args)
    try:
        self_check()
        if args.mode == "produce":
            return produce(args, base, deadline)
        return consume(args, base, deadline)
    except Usage as e:
        (pp if args.mode == "produce" else cp).error(str(e))
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
