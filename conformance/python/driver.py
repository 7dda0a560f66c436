"""Shared plumbing of the Python conformance drivers: one JSON object per line
on stdout, a summary line printed exactly once, exit codes, a deadline and a
watchdog that bounds every run, and argument parsing that reports usage
errors as a summary line too."""

import argparse
import json
import os
import sys
import threading
import time

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_WATCHDOG = 0, 1, 2, 3
WATCHDOG_GRACE_S = 15.0

_out_lock = threading.Lock()
_summary_printed = False
# Fields repeated in the summary line; each driver sets "driver" and adds its own.
CONTEXT = {}


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def emit(obj):
    with _out_lock:
        if _summary_printed:
            return
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def summary(ok, **fields):
    """Print the summary line (once) and return the exit code."""
    global _summary_printed
    line = {"type": "summary", "ok": ok}
    line.update(CONTEXT)
    line.update(fields)
    line["type"], line["ok"] = "summary", ok
    with _out_lock:
        if not _summary_printed:
            _summary_printed = True
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
    return EXIT_OK if ok else EXIT_FAIL


class Deadline:
    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.start = time.monotonic()
        self.end = self.start + timeout_ms / 1000.0

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end

    def elapsed_ms(self):
        return int((time.monotonic() - self.start) * 1000)


def start_watchdog(deadline):
    def fire():
        try:
            log("watchdog fired (timeout %d ms + grace %d s); exiting" % (deadline.timeout_ms, WATCHDOG_GRACE_S))
            summary(False, error="watchdog: driver did not finish within timeout-ms + grace",
                    timeout_ms=deadline.timeout_ms)
        finally:
            os._exit(EXIT_WATCHDOG)

    t = threading.Timer(deadline.timeout_ms / 1000.0 + WATCHDOG_GRACE_S, fire)
    t.daemon = True
    t.start()


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        summary(False, error="usage: " + message)
        sys.exit(EXIT_USAGE)


def key_values(items, option):
    out = {}
    for kv in items or []:
        if "=" not in kv or kv.startswith("="):
            Parser(prog=CONTEXT.get("driver")).error("%s expects key=value, got %r" % (option, kv))
        k, v = kv.split("=", 1)
        out[k] = v
    return out


# ---------------------------------------------------------------- record content


def crashed(e, deadline):
    """The summary for an unexpected exception: traceback to stderr, the error in the summary."""
    import traceback
    traceback.print_exc(file=sys.stderr)
    return summary(False, error="%s: %s" % (type(e).__name__, e), elapsed_ms=deadline.elapsed_ms())


def exit_with(code):
    """Flushes and exits without waiting for librdkafka's background threads at shutdown."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
