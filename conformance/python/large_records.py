#!/usr/bin/env python3
"""Large records with an otherwise unmodified librdkafka client (confluent-kafka): produce N
values of BYTES bytes, or consume and fingerprint them. The Java twin is
`conformance/java/run LargeRecords`: same command line, same JSON lines, same values.

  large_records.py produce --bootstrap B --topic T --count N --size BYTES [--seed S] [--partition P]
        [--key-prefix K] [--transactional-id ID [--abort-indices i,j,...]] [--config k=v ...]
  large_records.py consume --bootstrap B --topic T --expect N [--group G] [--read-committed]
        [--seek P:O ...] [--stop-after K] [--config k=v ...]
  (both: --timeout-s S, default 120, or --timeout-ms MS; `large_records.py MODE --help`)

Value spec (shared with LargeRecords.java): value(seed, i, size) is the first `size` bytes of
SHA-256(S || I || B0) || SHA-256(S || I || B1) || ..., where S = seed, I = the record index
(0-based) and Bk = the block counter k (0, 1, 2, ...), each as 8 bytes, big-endian two's
complement. Self-check at start: sha256(value(1, 0, 1000)) =
739fcd158512c980256fb6d98a076d27b3f9e9e6115029dddb0c00b6c482815e.
Key = K + str(i) (default K empty); one header ("n", str(i)) per record.

produce: to T (must exist). librdkafka defaults (acks=all; idempotence off, its default) except
  the size setting message.max.bytes = min(1000000000, max(1000000, BYTES + 1 MiB)) (librdkafka
  fails a larger message locally with MSG_SIZE_TOO_LARGE). Nothing else needs raising: batch.size
  is applied after a batch's first message, queue.buffering.max.kbytes is 1 GiB, and
  receive.message.max.bytes (100000000) only bounds responses. Records are queued one after
  another without waiting. With --transactional-id each record is its own transaction
  (begin, produce, flush, then abort_transaction when its index is in --abort-indices, else
  commit_transaction).
  Output: {"type":"acked"|"aborted","index","partition","offset","size","sha256"} per record as
  acknowledged (committed / aborted); {"type":"error","index","error","retriable"} per failed
  record; summary count, acked, aborted, errors, pending, unsent.
  ok: no error, every record acknowledged (and committed or aborted as asked).
consume: without --group assigns every partition of T from the beginning (or only the --seek
  P:O partitions, from offset O; repeatable); librdkafka needs a group.id anyway, so a throwaway
  one is set and never used (no subscribe, no commit). With --group G subscribes
  (auto.offset.reset=earliest, enable.auto.commit=false) and commits each record's offset + 1
  synchronously after printing it. Consumer defaults otherwise: no fetch or receive size is raised
  (a broker returns a first batch larger than fetch.max.bytes / max.partition.fetch.bytes whole,
  and a 50 MiB batch fits in receive.message.max.bytes = 100000000). isolation.level is set to
  read_uncommitted unless --read-committed (librdkafka's own default is read_committed; the Java
  client's is read_uncommitted, so both drivers behave alike). Stops after N records or at the
  timeout.
  Output: {"type":"record","partition","offset","size","sha256","headers":[[k,v],...],"key",
  "index"} per record (index = the "n" header as a number, else null; size and sha256 null for a
  null value); summary count. ok: N records read.
  --stop-after K: after the K-th record (printed and committed) print the summary (halted=true)
  and exit at once with os._exit(0): no close, no LeaveGroup, like a crash.

Output: one JSON object per line on stdout; the last is {"type":"summary","ok":...}. Logs on
stderr. Exit 0 ok, 1 failed, 2 usage, 3 watchdog (timeout + 15 s grace exceeded).
"""

import argparse
import hashlib
import struct
import sys
import uuid

from driver import (  # noqa: E402  (shared driver plumbing next to this script)
    CONTEXT, EXIT_OK, Deadline, Parser, emit, crashed, exit_with, key_values, log, start_watchdog, summary,
)

CONTEXT["driver"] = "large_records.py"

SELF_CHECK_SHA256 = "739fcd158512c980256fb6d98a076d27b3f9e9e6115029dddb0c00b6c482815e"
MIB = 1024 * 1024
DEFAULT_TIMEOUT_MS = 120000


# ---------------------------------------------------------------- values


def value(seed, index, size):
    """value(seed, index, size) as specified in the module docstring."""
    base = hashlib.sha256(struct.pack(">qq", seed, index))
    blocks = []
    for b in range((size + 31) // 32):
        h = base.copy()
        h.update(struct.pack(">q", b))
        blocks.append(h.digest())
    return b"".join(blocks)[:size]


def self_check():
    got = hashlib.sha256(value(1, 0, 1000)).hexdigest()
    if got != SELF_CHECK_SHA256:
        raise RuntimeError("value generator self-check failed: sha256(value(1, 0, 1000)) = %s, expected %s"
                           % (got, SELF_CHECK_SHA256))


def as_number(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


def err_text(err):
    """'NAME: text' of a KafkaError."""
    try:
        return "%s: %s" % (err.name(), err.str())
    except Exception:
        return str(err)


def exc_error(e):
    """(text, retriable, fatal, txn_requires_abort) of an exception from the client."""
    from confluent_kafka import KafkaError, KafkaException

    err = e.args[0] if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError) else None
    if err is None:
        return "%s: %s" % (type(e).__name__, e), False, False, False
    return err_text(err), bool(err.retriable()), bool(err.fatal()), bool(err.txn_requires_abort())


# ---------------------------------------------------------------- produce


def produce(args, deadline):
    from confluent_kafka import KafkaException, Producer

    if args.count < 0:
        raise Usage("--count must be >= 0")
    if args.size < 0 or args.size > 1000000000 - MIB:
        raise Usage("--size must be in [0, 1000000000 - 1 MiB] (librdkafka's message.max.bytes limit)")
    abort = set()
    if args.abort_indices is not None:
        if args.transactional_id is None:
            raise Usage("--abort-indices needs --transactional-id")
        try:
            abort = {int(s) for s in args.abort_indices.split(",") if s.strip()}
        except ValueError:
            raise Usage("--abort-indices expects i,j,..., got %r" % args.abort_indices)
    user = key_values(args.config, "--config")
    n, size, txn = args.count, args.size, args.transactional_id

    conf = {
        "bootstrap.servers": args.bootstrap,
        "error_cb": lambda err: log("client error: %s" % err),
        # the size setting; everything else stays at librdkafka's defaults
        "message.max.bytes": min(1000000000, max(1000000, size + MIB)),
    }
    if txn is not None:
        conf["transactional.id"] = txn
    conf.update(user)
    CONTEXT.update(count=n, size=size, seed=args.seed, transactional_id=txn, abort_indices=sorted(abort),
                   size_settings={"message.max.bytes": as_number(conf["message.max.bytes"])}, config=user)

    counts = {"acked": 0, "aborted": 0, "errors": 0}
    results = {}  # index -> (err, msg) from the delivery report
    sent = 0

    def on_delivery(i, sha):
        def cb(err, msg):
            results[i] = (err, msg)
            if txn is not None:
                return  # reported after commit / abort
            if err is None:
                counts["acked"] += 1
                emit({"type": "acked", "index": i, "partition": msg.partition(), "offset": msg.offset(),
                      "size": size, "sha256": sha})
            else:
                counts["errors"] += 1
                emit({"type": "error", "index": i, "error": err_text(err), "retriable": bool(err.retriable())})
        return cb

    def error_line(i, text, retriable):
        counts["errors"] += 1
        emit({"type": "error", "index": i, "error": text, "retriable": retriable})

    def remaining():
        return max(0.01, deadline.remaining())

    CONTEXT["phase"] = "create producer"
    p = Producer(conf)
    if txn is not None:
        CONTEXT["phase"] = "init_transactions"
        p.init_transactions(remaining())
    CONTEXT["phase"] = "produce"
    for i in range(n):
        if deadline.expired():
            break
        v = value(args.seed, i, size)
        sha = hashlib.sha256(v).hexdigest()
        kwargs = dict(key=(args.key_prefix + str(i)).encode(), value=v, headers=[("n", str(i).encode())],
                      on_delivery=on_delivery(i, sha))
        if args.partition is not None:
            kwargs["partition"] = args.partition
        if txn is not None:
            try:
                p.begin_transaction()
            except KafkaException as e:
                text, retriable, fatal, _ = exc_error(e)
                log("begin_transaction for record %d failed: %s; stopping" % (i, text))
                error_line(i, text, retriable)
                sent += 1
                break
        queued = refused = False
        while not deadline.expired():
            try:
                p.produce(args.topic, **kwargs)
                queued = True
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                p.poll(min(0.1, remaining()))
            except KafkaException as e:  # refused before queueing (e.g. MSG_SIZE_TOO_LARGE)
                text, retriable, _, _ = exc_error(e)
                error_line(i, text, retriable)
                refused = True
                break
        if not (queued or refused):
            break  # deadline passed while the local queue was full: this and the rest are unsent
        sent += 1
        p.poll(0)
        if txn is None:
            continue
        # one transaction per record: wait for its delivery report, then commit or abort
        try:
            if refused:
                p.abort_transaction(remaining())
                continue
            while len(p) > 0 and not deadline.expired():
                p.flush(min(1.0, remaining()))
            if i not in results:
                log("record %d: no delivery report within the timeout" % i)
                break
            err, msg = results[i]
            if err is not None:
                error_line(i, err_text(err), bool(err.retriable()))
                p.abort_transaction(remaining())
                continue
            if i in abort:
                p.abort_transaction(remaining())
                counts["aborted"] += 1
                kind = "aborted"
            else:
                p.commit_transaction(remaining())
                counts["acked"] += 1
                kind = "acked"
            emit({"type": kind, "index": i, "partition": msg.partition(), "offset": msg.offset(),
                  "size": size, "sha256": sha})
        except KafkaException as e:
            text, retriable, fatal, _ = exc_error(e)
            error_line(i, text, retriable)
            if fatal:
                log("fatal transactional error at record %d: %s; stopping" % (i, text))
                break
            try:
                p.abort_transaction(remaining())
            except KafkaException as ae:
                log("abort_transaction after the error of record %d failed: %s; stopping" % (i, exc_error(ae)[0]))
                break

    CONTEXT["phase"] = "flush"
    while len(p) > 0 and not deadline.expired():
        p.flush(min(1.0, remaining()))
    p.poll(0)
    CONTEXT.pop("phase", None)

    done = counts["acked"] + counts["aborted"] + counts["errors"]
    pending = sent - done
    unsent = n - sent
    want_aborted = len([i for i in abort if 0 <= i < n]) if txn is not None else 0
    ok = (counts["errors"] == 0 and pending == 0 and unsent == 0
          and counts["acked"] == n - want_aborted and counts["aborted"] == want_aborted)
    fields = dict(acked=counts["acked"], aborted=counts["aborted"], errors=counts["errors"], pending=pending,
                  unsent=unsent, elapsed_ms=deadline.elapsed_ms())
    if not ok:
        fields["error"] = ("%d error(s), %d without a result within the timeout, %d unsent (%d acked, %d aborted of %d)"
                           % (counts["errors"], pending, unsent, counts["acked"], counts["aborted"], n))
    return summary(ok, **fields)


# ---------------------------------------------------------------- consume


def consume(args, deadline):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

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
    user = key_values(args.config, "--config")

    conf = {
        "bootstrap.servers": args.bootstrap,
        "error_cb": lambda err: log("client error: %s" % err),
        "isolation.level": "read_committed" if args.read_committed else "read_uncommitted",
        "enable.auto.commit": False,
    }
    if args.group is not None:
        conf.update({"group.id": args.group, "auto.offset.reset": "earliest"})
    else:
        conf["group.id"] = "strait-large-unused-" + uuid.uuid4().hex[:12]  # required by confluent-kafka
    conf.update(user)
    CONTEXT.update(expect=args.expect, group=args.group,
                   isolation=conf["isolation.level"], config=user)
    if args.stop_after is not None:
        CONTEXT["stop_after"] = args.stop_after

    count = 0
    nbytes = 0
    CONTEXT["phase"] = "create consumer"
    c = Consumer(conf)
    try:
        if args.group is not None:
            CONTEXT["phase"] = "subscribe"
            c.subscribe([args.topic])
        else:
            CONTEXT["phase"] = "assign"
            if seeks:
                tps = [TopicPartition(args.topic, part, off) for part, off in seeks]
            else:
                md = c.list_topics(args.topic, timeout=max(1.0, deadline.remaining()))
                t = md.topics.get(args.topic)
                if t is None or t.error is not None or not t.partitions:
                    raise RuntimeError("topic %s: no partitions (%s)" % (args.topic, None if t is None else t.error))
                tps = [TopicPartition(args.topic, part, OFFSET_BEGINNING) for part in sorted(t.partitions)]
            c.assign(tps)
            CONTEXT["assigned"] = [tp.partition for tp in tps]
        CONTEXT["phase"] = "consume"
        while count < args.expect and not deadline.expired():
            m = c.poll(min(1.0, max(0.01, deadline.remaining())))
            if m is None:
                continue
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise RuntimeError("fatal consumer error: %s" % err_text(err))
                log("consumer error: %s" % err_text(err))
                continue
            v = m.value()
            headers = []
            index = None
            for k, hv in m.headers() or []:
                text = None if hv is None else hv.decode("utf-8", "replace")
                headers.append([k, text])
                if k == "n" and index is None and text is not None:
                    try:
                        index = int(text)
                    except ValueError:
                        pass
            key = m.key()
            emit({"type": "record", "partition": m.partition(), "offset": m.offset(),
                  "size": None if v is None else len(v),
                  "sha256": None if v is None else hashlib.sha256(v).hexdigest(),
                  "headers": headers, "key": None if key is None else key.decode("utf-8", "replace"),
                  "index": index})
            count += 1
            nbytes += 0 if v is None else len(v)
            if args.group is not None:
                c.commit(message=m, asynchronous=False)
            if args.stop_after is not None and count >= args.stop_after:
                CONTEXT.pop("phase", None)
                summary(True, count=count, bytes=nbytes, halted=True, elapsed_ms=deadline.elapsed_ms())
                exit_with(EXIT_OK)  # os._exit: no close, no LeaveGroup
    finally:
        c.close()
    CONTEXT.pop("phase", None)
    ok = count == args.expect
    fields = dict(count=count, bytes=nbytes, elapsed_ms=deadline.elapsed_ms())
    if not ok:
        fields["error"] = "read %d of %d record(s) within the timeout (%d ms)" % (count, args.expect, deadline.timeout_ms)
    return summary(ok, **fields)


# ---------------------------------------------------------------- main


class Usage(Exception):
    pass


def main(argv):
    ap = Parser(prog="large_records.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", metavar="MODE", parser_class=Parser)

    def common(sp):
        sp.add_argument("--bootstrap", required=True, help="bootstrap.servers")
        sp.add_argument("--topic", required=True)
        sp.add_argument("--config", action="append", metavar="K=V",
                        help="client config (repeatable, applied last)")
        sp.add_argument("--timeout-s", type=float, default=None,
                        help="bound on the whole run in seconds (default 120)")
        sp.add_argument("--timeout-ms", type=int, default=None, help="the same bound in milliseconds")

    pp = sub.add_parser("produce", help="produce N large records", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    common(pp)
    pp.add_argument("--count", type=int, required=True, help="N")
    pp.add_argument("--size", type=int, required=True, help="value size in bytes")
    pp.add_argument("--seed", type=int, default=1, help="content seed (default 1)")
    pp.add_argument("--partition", type=int, default=None, help="send every record to this partition")
    pp.add_argument("--key-prefix", default="", help="key = K + index (default: the index)")
    pp.add_argument("--transactional-id", default=None, help="one transaction per record")
    pp.add_argument("--abort-indices", default=None, metavar="i,j,...",
                    help="indices whose transaction is aborted (needs --transactional-id)")

    cp = sub.add_parser("consume", help="consume and fingerprint records", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    common(cp)
    cp.add_argument("--expect", type=int, required=True, help="N: stop after N records")
    cp.add_argument("--group", default=None, help="subscribe as group G, commit after each record")
    cp.add_argument("--read-committed", action="store_true", help="isolation.level=read_committed")
    cp.add_argument("--seek", action="append", metavar="P:O", help="assign partition P from offset O (repeatable)")
    cp.add_argument("--stop-after", type=int, default=None, metavar="K",
                    help="exit at once (os._exit, no close) after the K-th record")

    args = ap.parse_args(argv)
    if args.mode is None:
        ap.error("missing mode: produce or consume")
    CONTEXT.update(mode=args.mode)
    if args.timeout_ms is not None:
        timeout_ms = args.timeout_ms
    elif args.timeout_s is not None:
        timeout_ms = int(round(args.timeout_s * 1000))
    else:
        timeout_ms = DEFAULT_TIMEOUT_MS
    if timeout_ms <= 0:
        ap.error("the timeout must be > 0")

    deadline = Deadline(timeout_ms)
    start_watchdog(deadline)
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic)
    try:
        self_check()
        import confluent_kafka
        CONTEXT.update(client="confluent-kafka %s" % confluent_kafka.__version__,
                       librdkafka=confluent_kafka.libversion()[0])
        if args.mode == "produce":
            return produce(args, deadline)
        return consume(args, deadline)
    except Usage as e:
        (pp if args.mode == "produce" else cp).error(str(e))
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
