#!/usr/bin/env python3
"""librdkafka (confluent-kafka) producer that reports exactly what the client surfaced per record.

The librdkafka counterpart of the Java PolicyProduce driver, for testing produce-side policy
rejections (POLICY_VIOLATION 44 / INVALID_RECORD 87). Produces N records to T (which must exist):
key = the index in decimal ("0", "1", ...; none with --null-key), value = S bytes (default 100)
repeating the ASCII text "value-<index>;", every record carrying the --header k=v headers in the
given order (duplicates kept; "--header k" without "=" gives a null value). acks=all, linger.ms=5,
message.timeout.ms = the time left minus min(10 s, max(2 s, 1/5 of it)) (at most half of it) unless
--prop sets it, so a retriable error ends in librdkafka's own _MSG_TIMED_OUT before --timeout-ms.
Waits for every delivery report (bounded by --timeout-ms).

Output, one JSON object per line on stdout:
  {"type":"error","index":i,"code":err.code(),"name":err.name(),"str":err.str(),
   "retriable":err.retriable(),"fatal":err.fatal(),"count":k,"last_index":j}
      one line per run of k identical consecutive failures (first index i, last index j)
  {"type":"summary","ok":...,"acked","failed","unsent","pending","first_index","first_error_code",
   "first_error_name","first_error_str","broker_messages":[...],"client_errors":[{code,name,str,
   retriable,fatal,count},...] (error_cb; consecutive identical ones merged),...}
ok: every record acknowledged; with --expect-failure: none acknowledged and at least one failed.
Exit 0 ok, 1 failed, 2 usage, 3 watchdog (timeout-ms + grace exceeded). Logs go to stderr.

The broker's error text (Produce v8+ error_message / record_errors, KIP-467) does NOT reach a
confluent-kafka application: librdkafka parses it and keeps it on the message (C API
rd_kafka_message_produce_errstr(), librdkafka >= 2.4.0), but confluent-kafka 2.16.1 builds the
delivery report's KafkaError without it, so err.str() is librdkafka's generic text for the code
("Broker: Policy violation", "Broker: Broker failed to validate record"), and librdkafka does not
log it either (its MSGSET debug line prints only the code's generic text). Only the code reaches
the application. All librdkafka log lines are still captured (logger -> Python logging, echoed
to stderr; --debug sets librdkafka's debug contexts) and the ones matching --log-match (default:
produce error lines and "Broker: " error texts) are listed in "broker_messages", so a test can
check for a rule name should a later client version start logging it.
Note: when a response carries record_errors for more than one record, librdkafka reports the
listed records as INVALID_RECORD and the others of the batch as _INVALID_DIFFERENT_RECORD (-138);
with exactly one listed record, that record gets the partition error code and the others -138.
"""

import argparse
import logging
import re
import sys
import threading

from driver import (  # noqa: E402  (shared driver plumbing next to this script)
    CONTEXT, Deadline, Parser, emit, crashed, exit_with, key_values, log, start_watchdog, summary,
)

CONTEXT["driver"] = "policy_produce.py"

MAX_CLIENT_ERRORS = 20
MAX_BROKER_MESSAGES = 50
DEFAULT_LOG_MATCH = r"encountered error|Broker: |error_message|POLICY_VIOLATION|INVALID_RECORD"


def parse_headers(items):
    out = []
    for kv in items or []:
        k, sep, v = kv.partition("=")
        if not k:
            Parser(prog="policy_produce.py").error("--header expects k=v (or k for a null value), got %r" % (kv,))
        out.append((k, v.encode() if sep else None))
    return out


def value_of(i, size):
    pat = ("value-%d;" % i).encode()
    reps = size // len(pat) + 1
    return (pat * reps)[:size]


def err_fields(err):
    return {"code": err.code(), "name": err.name(), "str": err.str(),
            "retriable": err.retriable(), "fatal": err.fatal()}


def err_identity(err):
    return (err.code(), err.name(), err.str(), err.retriable(), err.fatal())


class LogCapture(logging.Handler):
    """librdkafka log lines (via the 'logger' config): kept, echoed to stderr."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []
        self.lines_lock = threading.Lock()

    def emit(self, record):
        try:
            msg = record.getMessage()
        except Exception:  # never let logging break the driver
            return
        with self.lines_lock:
            self.lines.append(msg)
        sys.stderr.write("[librdkafka %s] %s\n" % (record.levelname, msg))


def main(argv):
    ap = Parser(prog="policy_produce.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True, help="bootstrap.servers")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--timeout-ms", type=int, default=60000)
    ap.add_argument("--value-bytes", type=int, default=100, help="value size in bytes (default 100)")
    ap.add_argument("--header", action="append", metavar="K=V", help="record header (repeatable, order kept)")
    ap.add_argument("--prop", action="append", metavar="K=V", help="extra producer config (repeatable, overrides defaults)")
    ap.add_argument("--expect-failure", action="store_true",
                    help="ok iff no record is acknowledged and at least one fails")
    ap.add_argument("--partition", type=int, default=None, help="send every record to this partition")
    ap.add_argument("--null-key", action="store_true", help="records without a key")
    ap.add_argument("--debug", default=None, metavar="CONTEXTS",
                    help="librdkafka debug contexts, e.g. msg,protocol (default: none)")
    ap.add_argument("--log-match", action="append", metavar="REGEX",
                    help="log lines matching this regex go to broker_messages (repeatable; default %r)"
                         % DEFAULT_LOG_MATCH)
    args = ap.parse_args(argv)
    if args.records < 1:
        ap.error("--records must be >= 1")
    if args.timeout_ms <= 0:
        ap.error("--timeout-ms must be > 0")
    if args.value_bytes < 0:
        ap.error("--value-bytes must be >= 0")
    headers = parse_headers(args.header)
    props = key_values(args.prop, "--prop")
    try:
        patterns = [re.compile(p) for p in (args.log_match or [DEFAULT_LOG_MATCH])]
    except re.error as e:
        ap.error("--log-match: %s" % e)

    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    n = args.records
    CONTEXT.update(bootstrap=args.bootstrap, topic=args.topic, records=n, value_bytes=args.value_bytes,
                   headers=[[k, None if v is None else v.decode()] for k, v in headers],
                   expect_failure=args.expect_failure)

    capture = LogCapture()
    client_errors = []
    try:
        import confluent_kafka
        from confluent_kafka import KafkaException, Producer
        CONTEXT.update(client="confluent-kafka %s" % confluent_kafka.__version__,
                       librdkafka=confluent_kafka.libversion()[0])

        logger = logging.getLogger("strait.policy_produce.librdkafka")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(capture)

        def error_cb(err):
            # Client-level errors (connection failures, all brokers down, ...): consecutive
            # identical ones are merged with a count.
            log("client error: %s" % err)
            f = err_fields(err)
            if client_errors and all(client_errors[-1][k] == f[k] for k in f):
                client_errors[-1]["count"] += 1
            elif len(client_errors) < MAX_CLIENT_ERRORS:
                f["count"] = 1
                client_errors.append(f)

        rem_ms = max(2000, int(deadline.remaining() * 1000))
        headroom_ms = min(rem_ms // 2, min(10000, max(2000, rem_ms // 5)))
        budget_ms = max(1000, rem_ms - headroom_ms)
        conf = {
            "bootstrap.servers": args.bootstrap,
            "client.id": "strait-conformance-python-policy-producer",
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": budget_ms,
            "error_cb": error_cb,
            "logger": logger,
        }
        if args.debug:
            conf["debug"] = args.debug
        conf.update(props)
        CONTEXT.update(acks=str(conf.get("acks")), message_timeout_ms=int(conf["message.timeout.ms"]))

        # index -> None (acked) or KafkaError; absent = no delivery report yet
        results = {}
        unsent_from = n

        def on_delivery(i):
            def cb(err, msg):
                results[i] = err
            return cb

        CONTEXT["phase"] = "produce"
        p = Producer(conf)
        for i in range(n):
            if deadline.expired():
                unsent_from = i
                break
            kwargs = dict(key=None if args.null_key else str(i).encode(), value=value_of(i, args.value_bytes),
                          headers=list(headers), on_delivery=on_delivery(i))
            if args.partition is not None:
                kwargs["partition"] = args.partition
            queued = False
            while True:
                try:
                    p.produce(args.topic, **kwargs)
                    queued = True
                    break
                except BufferError:
                    if deadline.expired():
                        break
                    p.poll(min(0.1, deadline.remaining()))
                except KafkaException as e:
                    # Refused before queueing (e.g. MSG_SIZE_TOO_LARGE, UNKNOWN_PARTITION).
                    results[i] = e.args[0]
                    break
            if not queued and i not in results:
                # the local queue stayed full until the deadline
                unsent_from = i
                break
            p.poll(0)

        CONTEXT["phase"] = "await delivery reports"
        while len(p) > 0 and not deadline.expired():
            p.flush(min(1.0, max(0.01, deadline.remaining())))
        p.poll(0)
        CONTEXT.pop("phase", None)

        # Report in index order; identical consecutive errors share one line.
        acked = failed = pending = 0
        unsent = n - unsent_from
        first_index = None
        lines = 0
        run = None  # [first, last, err]

        def flush_run():
            nonlocal run, lines
            if run is not None:
                line = {"type": "error", "index": run[0]}
                line.update(err_fields(run[2]))
                line.update(count=run[1] - run[0] + 1, last_index=run[1])
                emit(line)
                lines += 1
                run = None

        for i in range(unsent_from):
            if i not in results:
                pending += 1
                flush_run()
                continue
            err = results[i]
            if err is None:
                acked += 1
                flush_run()
                continue
            failed += 1
            if first_index is None:
                first_index = i
            if run is not None and run[1] == i - 1 and err_identity(run[2]) == err_identity(err):
                run[1] = i
            else:
                flush_run()
                run = [i, i, err]
        flush_run()

        with capture.lines_lock:
            all_lines = list(capture.lines)
        broker_messages = [l for l in all_lines if any(pt.search(l) for pt in patterns)][:MAX_BROKER_MESSAGES]
        first = results[first_index] if first_index is not None else None
        fields = dict(acked=acked, failed=failed, unsent=unsent, pending=pending, error_lines=lines,
                      first_index=first_index,
                      first_error_code=None if first is None else first.code(),
                      first_error_name=None if first is None else first.name(),
                      first_error_str=None if first is None else first.str(),
                      broker_messages=broker_messages, log_lines=len(all_lines),
                      client_errors=client_errors, elapsed_ms=deadline.elapsed_ms())
        if args.expect_failure:
            ok = acked == 0 and failed > 0
            if acked:
                fields["error"] = "%d of %d record(s) acknowledged although failure was expected" % (acked, n)
            elif not failed:
                fields["error"] = ("no record failed although failure was expected (%d unsent, %d without a "
                                   "delivery report within the timeout)" % (unsent, pending))
        else:
            ok = acked == n
            if not ok:
                fields["error"] = ("only %d of %d record(s) acknowledged (%d failed, %d unsent, %d without a delivery "
                                   "report within the timeout)%s"
                                   % (acked, n, failed, unsent, pending,
                                      "" if first is None else "; first error: %s" % first.str()))
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
