#!/usr/bin/env python3
"""Cluster lifecycle for the real-Kafka test harness (called by integration/kafka).

Python standard library only. Each cluster lives in integration/.run/NAME/:

    cluster.json          name, broker count, cluster id, node ports
    bootstrap             localhost:p1[,localhost:p2,...]
    node-ID/server.properties
    node-ID/data/         log.dirs (also holds the KRaft metadata log)
    node-ID/server.log    broker log4j2 output (INFO)
    node-ID/node.out      JVM stdout/stderr (crashes, ERRORs)
    node-ID/pid

Nodes are combined broker+controller KRaft nodes with ids 1..N and a static N-voter
quorum. Listeners bind 127.0.0.1 and advertise the host name "localhost".

With --sasl, clients get SASL listeners only: SASL_PLAINTEXT (and SASL_SSL with
--tls, a CA and server certificate made with openssl under NAME/tls/), mechanisms
PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, the users in SASL_USERS (PLAIN users in the
listeners' JAAS config, SCRAM users added at format time). The plaintext listener
(node.port) then serves only inter-broker traffic and the harness's health check.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN_ROOT = HERE / ".run"
BROKER_LOG4J = HERE / "log4j2-broker.properties"
TOOLS_LOG4J = HERE / "log4j2-tools.properties"
ADVERTISED_HOST = "localhost"
BIND_HOST = "127.0.0.1"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
POLL = 0.25
MAX_BROKERS = 5
# user -> password, for every mechanism of a --sasl cluster.
SASL_USERS = {"alice": "alice-secret", "strait": "strait-secret"}
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

NODE_JVM_OPTS = [
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


class HarnessError(Exception):
    pass


class Interrupted(Exception):
    pass


def log(msg: str, name: str | None = None) -> None:
    prefix = f"kafka-harness[{name}]" if name else "kafka-harness"
    print(f"{prefix}: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- Kafka wire


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def metadata_brokers(port: int, host: str = BIND_HOST, timeout: float = 2.0) -> list[tuple[int, str, int]]:
    """Send a Metadata v1 request with an empty topic list; return [(node_id, host, port)].

    v1 is non-flexible and still supported by Kafka 4.1 (Metadata 0-13). An empty topic
    array (not null, which would mean "all topics") asks for brokers only.
    Response v1: correlation_id, brokers[node_id, host, port, rack?], controller_id, topics.
    """
    api_key, api_version, correlation_id = 3, 1, 0x5354  # "ST"
    client_id = b"strait-harness"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    body = struct.pack(">i", 0)  # topics: empty array
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        resp = _read_exact(sock, size)
    (got_corr,) = struct.unpack_from(">i", resp, 0)
    if got_corr != correlation_id:
        raise ConnectionError(f"unexpected correlation id {got_corr}")
    off = 4  # after correlation id
    (count,) = struct.unpack_from(">i", resp, off)
    off += 4
    brokers = []
    for _ in range(count):
        node_id, hlen = struct.unpack_from(">ih", resp, off)
        off += 6
        bhost = resp[off : off + hlen].decode()
        off += hlen
        (bport, rlen) = struct.unpack_from(">ih", resp, off)
        off += 6
        if rlen > 0:
            off += rlen
        brokers.append((node_id, bhost, bport))
    return brokers


# --------------------------------------------------------------------------- processes


def proc_state(pid: int) -> str | None:
    """Process state letter from /proc/PID/stat, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces.
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0]


def proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_live(pid: int) -> bool:
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def signal_tree(pid: int, sig: int) -> None:
    """Signal the node's process group (each node is its own session leader)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stray_pids(cluster_dir: Path) -> list[int]:
    """Java processes running kafka.Kafka with a config under cluster_dir (safety net)."""
    needle = str(cluster_dir) + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        args = proc_cmdline(pid)
        if "kafka.Kafka" in args and any(a.startswith(needle) for a in args) and is_live(pid):
            found.append(pid)
    return found


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    remaining = [p for p in pids if is_live(p)]
    while remaining and time.monotonic() < deadline:
        time.sleep(POLL)
        remaining = [p for p in remaining if is_live(p)]
    return remaining


# --------------------------------------------------------------------------- cluster model


class Node:
    def __init__(self, cluster: "Cluster", node_id: int, port: int, controller_port: int,
                 sasl_port: int = 0, sasl_ssl_port: int = 0):
        self.cluster = cluster
        self.id = node_id
        self.port = port
        self.controller_port = controller_port
        self.sasl_port = sasl_port
        self.sasl_ssl_port = sasl_ssl_port

    @property
    def dir(self) -> Path:
        return self.cluster.dir / f"node-{self.id}"

    @property
    def config(self) -> Path:
        return self.dir / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    @property
    def server_log(self) -> Path:
        return self.dir / "server.log"

    @property
    def out_log(self) -> Path:
        return self.dir / "node.out"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def live_pid(self) -> int | None:
        """The node's pid if that process is alive and really is this node."""
        pid = self.pid()
        if pid is None or not is_live(pid):
            return None
        cmdline = proc_cmdline(pid)
        # An empty cmdline is a live process caught mid-exec (the java
        # launcher re-executes itself) or being torn down: only another
        # program's cmdline means the pid was reused.
        if cmdline and str(self.config) not in cmdline:
            return None  # pid reused by something else
        return pid

    def write_config(self) -> None:
        c = self.cluster
        n = c.brokers
        voters = ",".join(f"{x.id}@{BIND_HOST}:{x.controller_port}" for x in c.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": self.id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{BIND_HOST}:{self.port},CONTROLLER://{BIND_HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{ADVERTISED_HOST}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": self.dir / "data",
            "num.partitions": 1,
            "default.replication.factor": n,
            "min.insync.replicas": 1 if n == 1 else 2,
            "offsets.topic.replication.factor": min(3, n),
            "transaction.state.log.replication.factor": min(3, n),
            "transaction.state.log.min.isr": 1 if n == 1 else 2,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "true",
            "message.max.bytes": 10485760,
            # Small-host friendliness; none of these change client-visible semantics.
            "num.network.threads": 2,
            "num.io.threads": 4,
            "num.recovery.threads.per.data.dir": 1,
        }
        if self.sasl_port:
            props.update(self.sasl_props())
        # --broker-config: a broker default a test needs (e.g. compression.type).
        props.update(c.broker_config)
        lines = [f"# generated by integration/kafka for cluster '{c.name}', node {self.id}"]
        lines += [f"{k}={v}" for k, v in props.items()]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text("\n".join(lines) + "\n")

    def sasl_props(self) -> dict:
        """SASL_PLAINTEXT (and SASL_SSL) client listeners next to the plaintext one."""
        c = self.cluster
        listeners = {"SASL_PLAINTEXT": self.sasl_port}
        if self.sasl_ssl_port:
            listeners["SASL_SSL"] = self.sasl_ssl_port
        plain_users = " ".join(f'user_{u}="{p}"' for u, p in SASL_USERS.items())
        props = {
            "listeners": ",".join(
                [f"PLAINTEXT://{BIND_HOST}:{self.port}", f"CONTROLLER://{BIND_HOST}:{self.controller_port}"]
                + [f"{name}://{BIND_HOST}:{port}" for name, port in listeners.items()]
            ),
            "advertised.listeners": ",".join(
                [f"PLAINTEXT://{ADVERTISED_HOST}:{self.port}"]
                + [f"{name}://{ADVERTISED_HOST}:{port}" for name, port in listeners.items()]
            ),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        }
        if c.reauth_ms:
            props["connections.max.reauth.ms"] = c.reauth_ms
        for name in listeners:
            prefix = f"listener.name.{name.lower()}"
            props[f"{prefix}.plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            )
            for mech in SASL_MECHANISMS[1:]:
                props[f"{prefix}.{mech.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
        if self.sasl_ssl_port:
            tls = c.dir / "tls"
            props["listener.name.sasl_ssl.ssl.keystore.type"] = "PEM"
            props["listener.name.sasl_ssl.ssl.keystore.location"] = tls / "server.pem"
        return props

    def format_cmd(self, libs: Path) -> list[str]:
        scram = []
        if self.sasl_port:
            for mech in SASL_MECHANISMS[1:]:
                for user, password in SASL_USERS.items():
                    scram += ["--add-scram", f"{mech}=[name={user},password={password}]"]
        return [
            # A one-off tool: C1 alone and the serial collector cost least.
            "java", "-Xms64m", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={TOOLS_LOG4J}",
            "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
            "--cluster-id", self.cluster.cluster_id, "--config", str(self.config),
            "--ignore-formatted", *scram,
        ]  # fmt: skip

    def start(self, libs: Path) -> int:
        extra = os.environ.get("KAFKA_HARNESS_NODE_OPTS", "").split()
        cmd = [
            "java", *NODE_JVM_OPTS, *extra,
            f"-Dlog4j2.configurationFile={BROKER_LOG4J}",
            f"-Dstrait.kafka.log.file={self.server_log}",
            "-cp", f"{libs}/*", "kafka.Kafka", str(self.config),
        ]  # fmt: skip
        with open(self.out_log, "ab") as out:
            out.write(f"---- starting node {self.id} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                cmd,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session + process group, immune to SIGHUP
                close_fds=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def tail(self, lines: int = 40) -> str:
        parts = []
        for f in (self.out_log, self.server_log):
            if f.exists():
                text = f.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"==> {f} (last {len(text)} lines) <==\n" + "\n".join(text))
        return "\n".join(parts) if parts else f"(no logs for node {self.id})"


class Cluster:
    def __init__(self, name: str):
        if not NAME_RE.match(name):
            raise HarnessError(f"invalid cluster name {name!r} (letters, digits, '.', '_', '-')")
        self.name = name
        self.dir = RUN_ROOT / name
        self.brokers = 0
        self.cluster_id = ""
        self.nodes: list[Node] = []
        self.reauth_ms = 0
        self.broker_config: dict[str, str] = {}

    @property
    def state_file(self) -> Path:
        return self.dir / "cluster.json"

    @property
    def bootstrap_file(self) -> Path:
        return self.dir / "bootstrap"

    def bootstrap(self) -> str:
        """Where clients connect: the SASL_PLAINTEXT listeners of a --sasl cluster."""
        return ",".join(f"{ADVERTISED_HOST}:{n.sasl_port or n.port}" for n in self.nodes)

    def result_lines(self) -> list[str]:
        """What `up` prints; BOOTSTRAP= last."""
        lines = []
        if any(n.sasl_port for n in self.nodes):
            users = ",".join(f"{u}:{p}" for u, p in SASL_USERS.items())
            lines.append(f"SASL_MECHANISMS={','.join(SASL_MECHANISMS)}")
            lines.append(f"SASL_USERS={users}")
            if any(n.sasl_ssl_port for n in self.nodes):
                tls = ",".join(f"{ADVERTISED_HOST}:{n.sasl_ssl_port}" for n in self.nodes)
                lines.append(f"SASL_SSL_BOOTSTRAP={tls}")
                lines.append(f"SASL_CA={self.dir / 'tls' / 'ca.crt'}")
        return lines + [f"BOOTSTRAP={self.bootstrap()}"]

    def exists(self) -> bool:
        return self.state_file.exists()

    def load(self) -> "Cluster":
        try:
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            raise HarnessError(f"no cluster named '{self.name}' (run: integration/kafka up --name {self.name})")
        self.brokers = state["brokers"]
        self.cluster_id = state["cluster_id"]
        self.reauth_ms = state.get("reauth_ms", 0)
        self.broker_config = state.get("broker_config", {})
        self.nodes = [
            Node(self, n["id"], n["port"], n["controller_port"], n.get("sasl_port", 0), n.get("sasl_ssl_port", 0))
            for n in state["nodes"]
        ]
        return self

    def save(self) -> None:
        state = {
            "name": self.name,
            "brokers": self.brokers,
            "cluster_id": self.cluster_id,
            "bootstrap": self.bootstrap(),
            "reauth_ms": self.reauth_ms,
            "broker_config": self.broker_config,
            "nodes": [
                {"id": n.id, "port": n.port, "controller_port": n.controller_port,
                 "sasl_port": n.sasl_port, "sasl_ssl_port": n.sasl_ssl_port}
                for n in self.nodes
            ],  # fmt: skip
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def node(self, node_id: int) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        ids = ", ".join(str(n.id) for n in self.nodes)
        raise HarnessError(f"cluster '{self.name}' has no node {node_id} (nodes: {ids})")

    def log(self, msg: str) -> None:
        log(msg, self.name)


@contextlib.contextmanager
def cluster_lock(name: str):
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    with open(RUN_ROOT / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def new_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def ports_in_use_by_other_clusters(exclude: str) -> set[int]:
    used: set[int] = set()
    if not RUN_ROOT.exists():
        return used
    for state in RUN_ROOT.glob("*/cluster.json"):
        if state.parent.name == exclude:
            continue
        with contextlib.suppress(Exception):
            for n in json.loads(state.read_text())["nodes"]:
                used.update((n["port"], n["controller_port"], n.get("sasl_port", 0), n.get("sasl_ssl_port", 0)))
    return used


def pick_ports(count: int, avoid: set[int]) -> list[int]:
    """Distinct free ports: hold every probe socket open until all are chosen."""
    socks, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((BIND_HOST, 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in avoid:
                ports.append(port)
            if len(socks) > count + 64:
                raise HarnessError("could not find free ports")
    finally:
        for s in socks:
            s.close()
    return ports


# --------------------------------------------------------------------------- waiting


def check_node(node: Node, expect: int | None, require_self: bool) -> str | None:
    """None if the node is healthy, else a short reason."""
    try:
        brokers = metadata_brokers(node.port)
    except (OSError, struct.error, ConnectionError) as e:
        return f"node {node.id}: no Metadata answer on port {node.port} ({e.__class__.__name__})"
    ids = sorted(b[0] for b in brokers)
    bad_hosts = {b[1] for b in brokers if b[1] != ADVERTISED_HOST}
    if bad_hosts:
        raise HarnessError(f"node {node.id} advertises {bad_hosts}, expected {ADVERTISED_HOST!r}")
    if expect is not None and len(brokers) != expect:
        return f"node {node.id}: sees brokers {ids}, want {expect}"
    if require_self and node.id not in ids:
        return f"node {node.id}: not yet registered (sees {ids})"
    return None


def wait_healthy(cluster: Cluster, nodes: list[Node], timeout: float, expect_all: bool) -> None:
    """Poll until every node in `nodes` answers Metadata (and reports all brokers).

    Fails early if a node process dies.
    """
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    last_report = 0.0
    while True:
        reasons = []
        for node in nodes:
            if node.live_pid() is None:
                raise HarnessError(f"node {node.id} exited during startup")
            reason = check_node(node, cluster.brokers if expect_all else None, require_self=True)
            if reason:
                reasons.append(reason)
        if not reasons:
            return
        now = time.monotonic()
        if now >= deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s: " + "; ".join(reasons))
        if now - last_report >= 5:
            cluster.log(f"waiting ({now - started:.0f}s): " + "; ".join(reasons))
            last_report = now
        time.sleep(POLL)


# --------------------------------------------------------------------------- commands


def stop_nodes(cluster: Cluster, grace: float) -> None:
    """SIGTERM every node process, SIGKILL whatever is left after `grace` seconds."""
    pids = [p for p in (n.live_pid() for n in cluster.nodes) if p is not None]
    pids += [p for p in stray_pids(cluster.dir) if p not in pids]
    if not pids:
        return
    cluster.log(f"stopping pids {pids} (SIGTERM, grace {grace:.0f}s)")
    for pid in pids:
        signal_tree(pid, signal.SIGTERM)
    left = wait_gone(pids, grace)
    if left:
        cluster.log(f"SIGKILL {left}")
        for pid in left:
            signal_tree(pid, signal.SIGKILL)
        left = wait_gone(left, 15)
        if left:
            raise HarnessError(f"processes {left} survived SIGKILL")


def fail_with_logs(cluster: Cluster, err: str) -> None:
    for node in cluster.nodes:
        print(node.tail(), file=sys.stderr)
    cluster.log(f"error: {err}")
    cluster.log("stopping all nodes")
    with contextlib.suppress(Exception):
        stop_nodes(cluster, grace=0)


def broker_config(pairs: list[str]) -> dict[str, str]:
    """`--broker-config KEY=VALUE` arguments as a dict; a pair without `=` is refused."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--broker-config takes KEY=VALUE, not {pair!r}")
        out[key.strip()] = value.strip()
    return out


def cmd_up(args) -> int:
    libs = Path(args.libs)
    n = args.brokers
    if not 1 <= n <= MAX_BROKERS:
        raise HarnessError(f"--brokers must be between 1 and {MAX_BROKERS}")
    if args.tls and not args.sasl:
        raise HarnessError("--tls adds a SASL_SSL listener: it needs --sasl")
    if args.reauth_ms and not args.sasl:
        raise HarnessError("--reauth-ms applies to SASL sessions: it needs --sasl")
    with cluster_lock(args.name):
        cluster = Cluster(args.name)
        if cluster.exists():
            cluster.load()
            live = [x for x in cluster.nodes if x.live_pid() is not None]
            if live and cluster.brokers != n:
                raise HarnessError(
                    f"cluster '{args.name}' is running with {cluster.brokers} broker(s), not {n}; "
                    f"run: integration/kafka down --name {args.name}"
                )
            if live:
                dead = [x for x in cluster.nodes if x.live_pid() is None]
                for node in dead:
                    cluster.log(f"restarting node {node.id}")
                    node.start(libs)
                try:
                    wait_healthy(cluster, cluster.nodes, args.timeout, expect_all=True)
                except HarnessError as e:
                    for node in cluster.nodes:
                        print(node.tail(), file=sys.stderr)
                    raise HarnessError(f"existing cluster '{args.name}' is not healthy: {e}")
                cluster.log("already running")
                print("\n".join(cluster.result_lines()), flush=True)
                return 0
            cluster.log("removing stale state of a stopped cluster")
            stop_nodes(cluster, grace=0)
        if cluster.dir.exists():
            shutil.rmtree(cluster.dir)

        started = time.monotonic()
        cluster.dir.mkdir(parents=True)
        cluster.brokers = n
        cluster.cluster_id = new_cluster_id()
        per = 2 + (1 if args.sasl else 0) + (1 if args.tls else 0)
        ports = pick_ports(per * n, ports_in_use_by_other_clusters(args.name))
        cluster.reauth_ms = args.reauth_ms
        cluster.broker_config = broker_config(args.broker_config)
        cluster.nodes = []
        for i in range(n):
            p = ports[per * i : per * (i + 1)]
            sasl = p[2] if args.sasl else 0
            sasl_ssl = p[3] if args.tls else 0
            cluster.nodes.append(Node(cluster, i + 1, p[0], p[1], sasl, sasl_ssl))
        if args.tls:
            make_tls(cluster.dir / "tls")
        for node in cluster.nodes:
            node.write_config()
        cluster.save()
        cluster.log(
            f"cluster id {cluster.cluster_id}, {n} node(s), client ports "
            + ", ".join(str(x.port) for x in cluster.nodes)
        )

        try:
            cluster.log("formatting storage")
            procs = [
                (node, subprocess.Popen(node.format_cmd(libs), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
                for node in cluster.nodes
            ]  # fmt: skip
            for node, proc in procs:
                out, _ = proc.communicate()
                (node.dir / "format.out").write_bytes(out)
                if proc.returncode != 0:
                    raise HarnessError(
                        f"storage format failed for node {node.id}:\n{out.decode(errors='replace')}"
                    )
            for node in cluster.nodes:
                pid = node.start(libs)
                cluster.log(f"started node {node.id} (pid {pid}, port {node.port})")
            wait_healthy(cluster, cluster.nodes, args.timeout, expect_all=True)
        except (HarnessError, Interrupted, OSError) as e:
            fail_with_logs(cluster, str(e))
            return 1

        cluster.bootstrap_file.write_text(cluster.bootstrap() + "\n")
        cluster.log(f"up in {time.monotonic() - started:.1f}s")
        print("\n".join(cluster.result_lines()), flush=True)
        return 0


def make_tls(tls: Path) -> None:
    """A CA and a server certificate for localhost/127.0.0.1 (openssl), as PEM:
    ca.crt for clients, server.pem (PKCS#8 key + chain) for the broker."""
    tls.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        r = subprocess.run(["openssl", *args], cwd=tls, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        if r.returncode != 0:
            raise HarnessError(f"openssl {args[0]} failed:\n{r.stdout.decode(errors='replace')}")

    if shutil.which("openssl") is None:
        raise HarnessError("openssl not found on PATH (needed for --tls)")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=strait-harness-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    (tls / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "30", "-extfile", "server.ext", "-out", "server.crt")  # fmt: skip
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.p8")
    (tls / "server.pem").write_text(
        (tls / "server.p8").read_text() + (tls / "server.crt").read_text() + (tls / "ca.crt").read_text()
    )


def all_cluster_names() -> list[str]:
    if not RUN_ROOT.exists():
        return []
    return sorted(p.name for p in RUN_ROOT.iterdir() if p.is_dir() and NAME_RE.match(p.name))


def cmd_down(args) -> int:
    names = [args.name] if args.name else all_cluster_names()
    if args.name and not (RUN_ROOT / args.name).exists():
        log(f"no cluster named '{args.name}', nothing to do")
        return 0
    for name in names:
        with cluster_lock(name):
            cluster = Cluster(name)
            if cluster.exists():
                cluster.load()
            stop_nodes(cluster, args.grace)
            shutil.rmtree(cluster.dir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (RUN_ROOT / f".{name}.lock").unlink()
            cluster.log("down")
    return 0


def cmd_kill_node(args) -> int:
    with cluster_lock(args.name):
        cluster = Cluster(args.name).load()
        node = cluster.node(args.node)
        pid = node.live_pid()
        if pid is None:
            cluster.log(f"node {node.id} is not running")
            return 0
        signal_tree(pid, signal.SIGKILL)
        if wait_gone([pid], 30):
            raise HarnessError(f"node {node.id} (pid {pid}) still alive 30s after SIGKILL")
        cluster.log(f"killed node {node.id} (pid {pid})")
    return 0


def cmd_start_node(args) -> int:
    libs = Path(args.libs)
    with cluster_lock(args.name):
        cluster = Cluster(args.name).load()
        node = cluster.node(args.node)
        if node.live_pid() is None:
            pid = node.start(libs)
            cluster.log(f"started node {node.id} (pid {pid}, port {node.port})")
        else:
            cluster.log(f"node {node.id} already running")
        started = time.monotonic()
        try:
            wait_healthy(cluster, [node], args.timeout, expect_all=False)
        except (HarnessError, Interrupted) as e:
            print(node.tail(), file=sys.stderr)
            cluster.log(f"error: {e}; stopping node {node.id}")
            p = node.live_pid()
            if p is not None:
                signal_tree(p, signal.SIGKILL)
                wait_gone([p], 15)
            return 1
        cluster.log(f"node {node.id} answers Metadata ({time.monotonic() - started:.1f}s)")
    return 0


def cmd_port(args) -> int:
    cluster = Cluster(args.name).load()
    print(cluster.node(args.node).port)
    return 0


def cmd_bootstrap(args) -> int:
    cluster = Cluster(args.name).load()
    print(cluster.bootstrap())
    return 0


def cmd_status(args) -> int:
    names = [args.name] if args.name else all_cluster_names()
    if not names:
        print("no clusters")
    for name in names:
        cluster = Cluster(name)
        if not cluster.exists():
            print(f"{name}: no state (partial run folder)")
            continue
        cluster.load()
        print(f"{name}: brokers={cluster.brokers} bootstrap={cluster.bootstrap()}")
        for node in cluster.nodes:
            pid = node.live_pid()
            if pid is None:
                health = "stopped"
            else:
                try:
                    health = f"pid {pid}, sees brokers {sorted(b[0] for b in metadata_brokers(node.port))}"
                except (OSError, struct.error, ConnectionError) as e:
                    health = f"pid {pid}, no Metadata answer ({e.__class__.__name__})"
            print(f"  node {node.id}: port {node.port} controller {node.controller_port}: {health}")
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="integration/kafka")
    p.add_argument("--libs", required=True, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True)
    timeout = float(os.environ.get("KAFKA_HARNESS_TIMEOUT", "120"))

    s = sub.add_parser("up")
    s.add_argument("--brokers", type=int, default=1)
    s.add_argument("--name", default="default")
    s.add_argument("--sasl", action="store_true", help="client listeners SASL_PLAINTEXT only (PLAIN, SCRAM)")
    s.add_argument("--tls", action="store_true", help="with --sasl: a SASL_SSL listener too")
    s.add_argument("--reauth-ms", type=int, default=0, help="with --sasl: connections.max.reauth.ms")
    s.add_argument("--broker-config", action="append", default=[], metavar="KEY=VALUE",
                   help="a broker setting for every node (repeatable), e.g. compression.type=gzip")
    s.add_argument("--timeout", type=float, default=timeout)
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("down")
    s.add_argument("--name")
    s.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    s.set_defaults(func=cmd_down)

    for cmd, func in (("kill-node", cmd_kill_node), ("start-node", cmd_start_node), ("port", cmd_port)):
        s = sub.add_parser(cmd)
        s.add_argument("--name", required=True)
        s.add_argument("--node", type=int, required=True)
        if cmd == "start-node":
            s.add_argument("--timeout", type=float, default=timeout)
        s.set_defaults(func=func)

    s = sub.add_parser("bootstrap")
    s.add_argument("--name", default="default")
    s.set_defaults(func=cmd_bootstrap)

    s = sub.add_parser("status")
    s.add_argument("--name")
    s.set_defaults(func=cmd_status)

    args = p.parse_args(argv)

    def on_signal(signum, _frame):
        raise Interrupted(f"interrupted by signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        return args.func(args)
    except HarnessError as e:
        log(f"error: {e}")
        return 1
    except Interrupted as e:
        log(str(e))
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
