#!/usr/bin/env python3
"""kafka-python admin client (KafkaAdminClient) for admin guardrails; the counterpart of the Java
PolicyAdmin driver.

  --action create              create_topics (--partitions P, --replication-factor R, --config k=v
                               as topic configs)
  --action alter               alter_configs(incremental=False): legacy AlterConfigs (API 33),
                               exactly the --topic-config set
  --action incremental-alter   alter_configs(incremental=True): IncrementalAlterConfigs, SET each
  --action delete              delete_topics
one call per --topic (--wait: after a create, until every partition has a leader). What kafka-python surfaces is reported as it comes: an exception (create /
delete raise the first topic error, its message carrying the broker's error_message), or, for
alter_configs, the per-resource result, an error's text in place of the result.

Output: {"type":"result","action","topic","ok","exception","errno","message"} per topic; the summary
has succeeded, failed, first_exception, first_message. ok: every topic succeeded; with
--expect-failure: none succeeded and at least one failed. Exit 0 ok, 1 failed, 2 usage, 3 watchdog.
"""

import argparse
import sys

import common
from common import CONTEXT, Deadline, Parser, crashed, emit, exit_with, start_watchdog, summary

CONTEXT["driver"] = "kafka_python/policy_admin.py"


def run_action(admin, args, topic, configs, deadline):
    """(ok, exception class or None, errno, message) of one topic's action."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

    timeout = common.timeout_ms(deadline)
    try:
        if args.action == "create":
            admin.create_topics([NewTopic(topic, args.partitions, args.replication_factor, topic_configs=configs)],
                                timeout_ms=timeout)
        elif args.action == "delete":
            admin.delete_topics([topic], timeout_ms=timeout)
        else:
            result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)],
                                         raise_on_unknown=False, incremental=args.action == "incremental-alter")
            per_topic = result.get("topic", {}).get(topic)
            text = "" if per_topic is None else str(per_topic)
            if "Error" in text:
                errno = None
                if text.startswith("[Error "):
                    errno = int(text[len("[Error "):].split("]", 1)[0])
                return False, None, errno, text
        return True, None, None, None
    except Exception as e:
        d = common.describe(e)
        return False, d["exception"], d["errno"], d["message"]


def main(argv):
    ap = Parser(prog="policy_admin.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_client_args(ap)
    ap.add_argument("--action", required=True, choices=["create", "alter", "incremental-alter", "delete"])
    ap.add_argument("--topic", action="append", required=True)
    ap.add_argument("--partitions", type=int, default=-1)
    ap.add_argument("--replication-factor", type=int, default=-1)
    ap.add_argument("--topic-config", action="append", metavar="K=V", help="topic config (create, alter)")
    ap.add_argument("--expect-failure", action="store_true")
    ap.add_argument("--wait", action="store_true",
                    help="create: then wait until every partition of every topic has a leader (wait_for_topics)")
    ap.add_argument("--timeout-ms", type=int, default=30000)
    args = ap.parse_args(argv)
    if args.timeout_ms <= 0:
        ap.error("--timeout-ms must be > 0")
    configs = common.key_values(args.topic_config, "--topic-config")
    if args.action in ("alter", "incremental-alter") and not configs:
        ap.error("--action %s needs --topic-config" % args.action)
    deadline = Deadline(args.timeout_ms)
    start_watchdog(deadline)
    CONTEXT.update(bootstrap=args.bootstrap, action=args.action)
    base = common.setup(args)
    try:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(**dict({"client_id": "strait-kp-admin",
                                         "request_timeout_ms": min(30000, common.timeout_ms(deadline))}, **base))
        succeeded, failed, first = 0, 0, None
        try:
            for topic in args.topic:
                ok, exception, errno, message = run_action(admin, args, topic, configs, deadline)
                emit({"type": "result", "action": args.action, "topic": topic, "ok": ok, "exception": exception,
                      "errno": errno, "message": message})
                if ok:
                    succeeded += 1
                else:
                    failed += 1
                    first = first or (exception, message)
            if args.wait and args.action == "create" and failed == 0:
                admin.wait_for_topics(args.topic, timeout_ms=common.timeout_ms(deadline))
        finally:
            admin.close()
        ok = (succeeded == 0 and failed > 0) if args.expect_failure else failed == 0
        fields = dict(succeeded=succeeded, failed=failed, first_exception=first and first[0],
                      first_message=first and first[1], elapsed_ms=deadline.elapsed_ms())
        if not ok:
            fields["error"] = "%d succeeded, %d failed" % (succeeded, failed)
        return summary(ok, **fields)
    except Exception as e:  # report, never hang
        return crashed(e, deadline)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
