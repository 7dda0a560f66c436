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
# ... and that say its SASL authentication was refused.
AUTH_LOG = re.compile(r"SaslAuthenticationFailedError[^\n]*")


def add_client_args(ap):
    """--bootstrap, the TLS and SASL options and --config, for every driver."""
    ap.add_argument("--bootstrap", required=True, help="bootstrap_servers (host:port[,host:port...])")
    ap.add_argument("--security-protocol", default="PLAINTEXT",
                    choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
    ap.add_argument("--sasl-mechanism", default=None, choices=["PLAIN", "SCRAM-SHA-512"],
                    help="kafka-python's own SASL (needs a SASL_* --security-protocol)")
    ap.add_argument("--sasl-username", default=None)
    ap.add_argument("--sasl-password", default=None)
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
    CERTIFICATE_VERIFY_FAILED] certificate verify failed: ..."), and of its refused SASL
    authentications (the client logs them and retries; the application sees a timeout), once each."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.tls = []
        self.auth = []

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:
            return
        auth = AUTH_LOG.search(text)
        if auth and auth.group(0) not in self.auth and len(self.auth) < 10:
            self.auth.append(auth.group(0))
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
    tls = args.security_protocol in ("SSL", "SASL_SSL")
    sasl = args.security_protocol.startswith("SASL_")
    if not tls and (args.ssl_cafile or args.ssl_certfile or args.ssl_keyfile):
        Parser(prog=CONTEXT.get("driver")).error("--ssl-* options need --security-protocol SSL or SASL_SSL")
    if sasl != bool(args.sasl_mechanism) or (not sasl and (args.sasl_username or args.sasl_password)):
        Parser(prog=CONTEXT.get("driver")).error(
            "--sasl-mechanism goes with --security-protocol SASL_PLAINTEXT or SASL_SSL (and they need it)")
    if sasl and not args.sasl_username:
        Parser(prog=CONTEXT.get("driver")).error("--sasl-mechanism needs --sasl-username")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        Parser(prog=CONTEXT.get("driver")).error("--ssl-certfile and --ssl-keyfile go together")
    import kafka

    CONTEXT["client"] = "kafka-python %s" % kafka.__version__
    conf = {"bootstrap_servers": args.bootstrap.split(","), "security_protocol": args.security_protocol}
    if sasl:
        conf.update(sasl_mechanism=args.sasl_mechanism, sasl_plain_username=args.sasl_username,
                    sasl_plain_password=args.sasl_password or "")
    if tls:
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
