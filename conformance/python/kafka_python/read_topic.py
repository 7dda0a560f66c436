#!/usr/bin/env python3
"""kafka-python reader: every record of TOPIC, from the beginning to the end offsets taken at the
start, the counterpart of the Java ReadTopic driver.

Assigns every partition of TOPIC (no group), seeks to the beginning and reads until each position
reaches the end offset taken at the start with end_offsets() under the same isolation level
(read_committed: the last stable offset); records at or past it are not counted. With --follow
(needs --expect N) it reads until N records arrived instead, for a topic still being written.

Output: {"type":"record","partition","offset","key","value","headers":[[k,v],...]} per record
(UTF-8 text, invalid bytes replaced; null for null) unless --quiet; the summary has count,
per_partition, end_offsets and order_violations (an offset not above the previous one of its
partition). ok: the end reached, no order violation and, with --expect N, exactly N records.
Exit 0 ok, 1 failed, 2 usage, 3 watchdog.
"""

import argparse
import sys

import common
from common import CONTEXT, Deadline, Parser, crashed, emit, exit_with, start_watchdog, summary

CONTEXT["driver"] = "kafka_python/read_topic.py"


def text(b):
    return None if b is None else b.decode("utf-8", "replace")


def main(argv):
    ap = Parser(prog="read_topic.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_client_args(ap)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--isolation", default="read_uncommitted", choices=["read_uncommitted", "read_committed"])
    ap.add_argument("--expect", type=int, default=None, help="N: ok only with exactly N records")
    ap.add_argument("--quiet", action="store_true", help="no record lines")
    ap.add_argument("--follow", action="store_true", help="read until --expect N records, not to the end offsets")
    ap.add_argument("--max-partition-fetch-bytes", type=int, default=None,
                    help="the consumer's max_partition_fetch_bytes (default: kafka-python's)")
    ap.add_argument("--timeout-ms", type=int, default=60000)
    args = ap.parse_args(argv)
    if args.timeout_ms <= 0:
        ap.error("--timeout-ms must be > 0")
    if args.follow and args.expect is None:
        ap.error("--follow needs --expect N")
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, isolation=args.isolation)
    base = common.setup(args)
    try:
        from kafka import KafkaConsumer, TopicPartition

        sizes = {}
        if args.max_partition_fetch_bytes is not None:
            sizes["max_partition_fetch_bytes"] = args.max_partition_fetch_bytes
        c = KafkaConsumer(**dict({"isolation_level": args.isolation, "enable_auto_commit": False,
                                  "client_id": "strait-kp-reader"}, **sizes, **base))
        try:
            parts = c.partitions_for_topic(args.topic) or set()
            tps = [TopicPartition(args.topic, p) for p in sorted(parts)]
            c.assign(tps)
            c.seek_to_beginning(*tps)
            ends = c.end_offsets(tps, timeout_ms=common.timeout_ms(deadline)) if tps else {}
            count, per_partition, last, violations = 0, {}, {}, 0

            def behind():
                if args.follow:
                    return count < args.expect
                return [tp for tp in tps if c.position(tp, timeout_ms=common.timeout_ms(deadline)) < ends[tp]]
            while behind() and not deadline.expired():
                for tp, records in c.poll(timeout_ms=min(1000, common.timeout_ms(deadline, 10))).items():
                    for r in records:
                        if not args.follow and r.offset >= ends[tp]:
                            continue
                        if last.get(r.partition, -1) >= r.offset:
                            violations += 1
                        last[r.partition] = r.offset
                        count += 1
                        per_partition[str(r.partition)] = per_partition.get(str(r.partition), 0) + 1
                        if not args.quiet:
                            emit({"type": "record", "partition": r.partition, "offset": r.offset,
                                  "key": text(r.key), "value": text(r.value),
                                  "headers": [[k, text(v)] for k, v in (r.headers or [])]})
            reached = not behind()
        finally:
            c.close(autocommit=False)
        ok = reached and violations == 0 and (args.expect is None or count == args.expect)
        fields = dict(count=count, per_partition=per_partition, topic_exists=bool(tps),
                      end_offsets={str(tp.partition): o for tp, o in ends.items()}, order_violations=violations,
                      elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = ("end not reached within the timeout" if not reached else
                               "%d order violations, %d records (expected %s)" % (violations, count, args.expect))
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
