"""Shared plumbing of the kafka-python drivers: the common command-line options (bootstrap,
TLS, client config), the client's log on stderr, and how a client exception is reported.

The drivers run as `conformance/.venv/bin/python conformance/python/kafka_python/NAME.py`;
importing this module first puts `conformance/python` on the path, for `driver.py` (the JSON
lines, summary, exit codes, deadline and watchdog shared with the confluent-kafka drivers).
"""

import logging
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
if PYTHON_DIR not in sys.path:
    sys.path.insert(1, PYTHON_DIR)

from driver import (  # noqa: E402,F401  (re-exported for the drivers)
    CONTEXT, EXIT_OK, Deadline, Parser, crashed, emit, exit_with, key_values, log, start_watchdog, summary,
)

# Log lines of the client that say why a TLS connection failed (collected for the summary).
TLS_LOG = re.compile(r"\[SSL[:\]]|Handshake failed|certificate verify", re.IGNORECASE)
TLS_REASON = re.compile(r"\[SSL[^\]]*\][^(]*")


def add_client_args(ap):
    """--bootstrap, the TLS options and --config, for every driver."""
    ap.add_argument("--bootstrap", required=True, help="bootstrap_servers (host:port[,host:port...])")
    ap.add_argument("--security-protocol", default="PLAINTEXT", choices=["PLAINTEXT", "SSL"])
    ap.add_argument("--ssl-cafile", default=None, help="CA certificates (PEM) that verify the server")
    ap.add_argument("--ssl-certfile", default=None, help="client certificate (PEM), for mTLS")
    ap.add_argument("--ssl-keyfile", default=None, help="the client certificate's private key (PEM)")
    ap.add_argument("--no-hostname-check", action="store_true", help="ssl_check_hostname=False")
    ap.add_argument("--config", action="append", metavar="K=V",
                    help="kafka-python config for every client of the run (repeatable, applied last; "
                         "integers, floats, true/false and none are converted)")
    ap.add_argument("--log-level", default="WARNING", help="level of the client's log on stderr")


def config_value(v):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


class ClientLog(logging.Handler):
    """Keeps the reasons of the client's TLS failures, as OpenSSL gives them (e.g. "[SSL:
    CERTIFICATE_VERIFY_FAILED] certificate verify failed: ..."), once each."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.tls = []

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:
            return
        if not TLS_LOG.search(text):
            return
        reason = TLS_REASON.search(text)
        reason = reason.group(0).strip() if reason else text
        if reason not in self.tls and len(self.tls) < 10:
            self.tls.append(reason)


CLIENT_LOG = ClientLog()


def setup(args):
    """The client's log on stderr, the client's version in the summary; returns the config shared by
    every client of the run (bootstrap, TLS, --config)."""
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        Parser(prog=CONTEXT.get("driver")).error("--log-level: unknown level %r" % args.log_level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("kafka")
    root.setLevel(min(level, logging.INFO))
    handler.setLevel(level)
    root.addHandler(handler)
    root.addHandler(CLIENT_LOG)
    if args.security_protocol == "PLAINTEXT" and (args.ssl_cafile or args.ssl_certfile or args.ssl_keyfile):
        Parser(prog=CONTEXT.get("driver")).error("--ssl-* options need --security-protocol SSL")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        Parser(prog=CONTEXT.get("driver")).error("--ssl-certfile and --ssl-keyfile go together")
    import kafka

    CONTEXT["client"] = "kafka-python %s" % kafka.__version__
    conf = {"bootstrap_servers": args.bootstrap.split(","), "security_protocol": args.security_protocol}
    if args.security_protocol == "SSL":
        conf.update(ssl_cafile=args.ssl_cafile, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
                    ssl_check_hostname=not args.no_hostname_check)
    conf.update({k: config_value(v) for k, v in key_values(args.config, "--config").items()})
    return conf


def describe(e):
    """What the client surfaced: {exception, errno, message, retriable, cause}."""
    cause = e.__cause__ or e.__context__
    return {
        "exception": type(e).__name__,
        "errno": getattr(e, "errno", None),
        "message": str(e),
        "retriable": bool(getattr(e, "retriable", False)),
        "cause": None if cause is None else "%s: %s" % (type(cause).__name__, cause),
    }


def timeout_ms(deadline, floor=1000):
    """Milliseconds left, at least `floor`."""
    return max(floor, int(deadline.remaining() * 1000))
