package strait.conformance;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Shared plumbing for the conformance drivers.
 *
 * <p>Contract of every driver: all parameters on the command line; one JSON object per line
 * on stdout; the last line is {"type":"summary","ok":...}; logs on stderr; exit 0 only on
 * success; every wait bounded by --timeout-ms (default 60000). A watchdog thread enforces
 * the bound even if a client call blocks: at timeout + grace it prints a failing summary
 * and halts the JVM with exit code 3.
 *
 * <p>Exit codes: 0 ok, 1 check failed / error, 2 usage error, 3 watchdog fired.
 */
final class Common {
    private Common() {}

    static final int EXIT_OK = 0;
    static final int EXIT_FAIL = 1;
    static final int EXIT_USAGE = 2;
    static final int EXIT_WATCHDOG = 3;

    /** Extra time after the deadline for orderly shutdown (closing clients) before the watchdog halts. */
    static final long WATCHDOG_GRACE_MS = 15_000;

    // ------------------------------------------------------------------ output

    private static final PrintStream OUT = System.out;

    /**
     * Fields every summary line carries (driver parameters, ids, progress). Drivers fill it as
     * they go, so a summary printed from the error path or by the watchdog still has them.
     */
    static final Json CONTEXT = Json.obj();

    static void context(String key, Object value) {
        synchronized (CONTEXT) {
            CONTEXT.put(key, value);
        }
    }
    private static final AtomicBoolean SUMMARY_PRINTED = new AtomicBoolean(false);

    /** Print one JSON object as one line on stdout (thread-safe; nothing after the summary). */
    static void emit(Json obj) {
        synchronized (OUT) {
            if (SUMMARY_PRINTED.get()) return;
            OUT.println(obj.toString());
            OUT.flush();
        }
    }

    /** Print the summary line (at most once per process) and return the exit code for it. */
    static int summary(Json obj, boolean ok) {
        Json line = Json.of("summary").put("ok", ok);
        synchronized (CONTEXT) {
            line.fields.putAll(CONTEXT.fields);
        }
        line.fields.putAll(obj.fields);
        line.fields.put("type", "summary");
        line.fields.put("ok", ok);
        synchronized (OUT) {
            if (SUMMARY_PRINTED.getAndSet(true)) return ok ? EXIT_OK : EXIT_FAIL;
            OUT.println(line.toString());
            OUT.flush();
        }
        return ok ? EXIT_OK : EXIT_FAIL;
    }

    static void log(String fmt, Object... args) {
        System.err.println("[" + java.time.LocalTime.now() + "] " + String.format(fmt, args));
        System.err.flush();
    }

    // ------------------------------------------------------------------ JSON

    /** Minimal ordered JSON object writer (no dependency beyond the JDK). */
    static final class Json {
        private final LinkedHashMap<String, Object> fields = new LinkedHashMap<>();

        static Json obj() { return new Json(); }

        static Json of(String type) { return new Json().put("type", type); }

        synchronized Json put(String key, Object value) {
            fields.put(key, value);
            return this;
        }

        synchronized Json remove(String key) {
            fields.remove(key);
            return this;
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder();
            write(sb, this);
            return sb.toString();
        }

        private static void write(StringBuilder sb, Object v) {
            if (v == null) {
                sb.append("null");
            } else if (v instanceof Json) {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<String, Object> e : ((Json) v).fields.entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    string(sb, e.getKey());
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            } else if (v instanceof Map) {
                sb.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    string(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            } else if (v instanceof Collection) {
                sb.append('[');
                boolean first = true;
                for (Object o : (Collection<?>) v) {
                    if (!first) sb.append(',');
                    first = false;
                    write(sb, o);
                }
                sb.append(']');
            } else if (v instanceof int[]) {
                sb.append('[');
                int[] a = (int[]) v;
                for (int i = 0; i < a.length; i++) {
                    if (i > 0) sb.append(',');
                    sb.append(a[i]);
                }
                sb.append(']');
            } else if (v instanceof Boolean) {
                sb.append(v.toString());
            } else if (v instanceof Double || v instanceof Float) {
                double d = ((Number) v).doubleValue();
                if (Double.isFinite(d)) sb.append(v.toString()); else sb.append("null");
            } else if (v instanceof Number) {
                sb.append(v.toString());
            } else {
                string(sb, v.toString());
            }
        }

        private static void string(StringBuilder sb, String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"': sb.append("\\\""); break;
                    case '\\': sb.append("\\\\"); break;
                    case '\n': sb.append("\\n"); break;
                    case '\r': sb.append("\\r"); break;
                    case '\t': sb.append("\\t"); break;
                    default:
                        if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                        else sb.append(c);
                }
            }
            sb.append('"');
        }
    }

    // ------------------------------------------------------------------ arguments

    static final class UsageException extends RuntimeException {
        UsageException(String msg) { super(msg); }
    }

    /**
     * "--name value" options, "--flag" switches, and repeatable "--producer-prop k=v",
     * "--consumer-prop k=v", "--admin-prop k=v" (applied last, so they override defaults).
     */
    static final class Args {
        final String driver;
        final String usage;
        private final Map<String, List<String>> values = new HashMap<>();
        private final Set<String> flags = new HashSet<>();

        Args(String driver, String usage, String[] argv, Set<String> valueOptions, Set<String> flagOptions) {
            this.driver = driver;
            this.usage = usage;
            Set<String> vo = new HashSet<>(valueOptions);
            vo.add("timeout-ms");
            vo.add("producer-prop");
            vo.add("consumer-prop");
            vo.add("admin-prop");
            for (int i = 0; i < argv.length; i++) {
                String a = argv[i];
                if (a.equals("--help") || a.equals("-h")) {
                    flags.add("help");
                    continue;
                }
                if (!a.startsWith("--")) throw new UsageException("unexpected argument: " + a);
                String name = a.substring(2);
                String inline = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    inline = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (flagOptions.contains(name)) {
                    if (inline != null) throw new UsageException("--" + name + " takes no value");
                    flags.add(name);
                } else if (vo.contains(name)) {
                    String v = inline;
                    if (v == null) {
                        if (i + 1 >= argv.length) throw new UsageException("--" + name + " needs a value");
                        v = argv[++i];
                    }
                    values.computeIfAbsent(name, k -> new ArrayList<>()).add(v);
                } else {
                    throw new UsageException("unknown option: --" + name);
                }
            }
        }

        boolean help() { return flags.contains("help"); }

        /** All values of a repeatable option, in order (empty when absent). */
        List<String> all(String name) {
            List<String> l = values.get(name);
            return l == null ? Collections.emptyList() : Collections.unmodifiableList(l);
        }

        /** Repeatable "k=v" option as an ordered map. */
        Map<String, String> keyValues(String name) {
            Map<String, String> m = new LinkedHashMap<>();
            for (String kv : all(name)) {
                int eq = kv.indexOf('=');
                if (eq <= 0) throw new UsageException("--" + name + " expects key=value, got " + kv);
                m.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
            return m;
        }

        boolean flag(String name) { return flags.contains(name); }

        String str(String name, String def) {
            List<String> l = values.get(name);
            return l == null ? def : l.get(l.size() - 1);
        }

        String required(String name) {
            String v = str(name, null);
            if (v == null || v.isEmpty()) throw new UsageException("missing required option --" + name);
            return v;
        }

        long longOpt(String name, long def) {
            String v = str(name, null);
            if (v == null) return def;
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new UsageException("--" + name + " must be an integer, got " + v);
            }
        }

        int intOpt(String name, int def) {
            long v = longOpt(name, def);
            if (v > Integer.MAX_VALUE || v < Integer.MIN_VALUE) throw new UsageException("--" + name + " out of range");
            return (int) v;
        }

        long timeoutMs() {
            long t = longOpt("timeout-ms", 60_000);
            if (t <= 0) throw new UsageException("--timeout-ms must be > 0");
            return t;
        }

        /** Apply repeatable "--KIND-prop k=v" overrides. */
        void applyProps(String kind, Properties p) {
            for (Map.Entry<String, String> e : keyValues(kind + "-prop").entrySet()) p.setProperty(e.getKey(), e.getValue());
        }
    }

    static final String COMMON_USAGE =
        "  --timeout-ms MS            bound on every wait (default 60000); a watchdog halts the JVM\n"
        + "                             with exit 3 at MS + " + WATCHDOG_GRACE_MS + " ms\n"
        + "  --producer-prop k=v        extra producer property (repeatable, overrides defaults)\n"
        + "  --consumer-prop k=v        extra consumer property (repeatable)\n"
        + "  --admin-prop k=v           extra admin property (repeatable)\n"
        + "Output: one JSON object per line on stdout, the last is {\"type\":\"summary\",\"ok\":...};\n"
        + "logs on stderr. Exit 0 ok, 1 failed, 2 usage, 3 watchdog.\n";

    /** Body of a driver: returns the process exit code (after printing the summary). */
    interface Body {
        int run(Args args, Deadline deadline) throws Exception;
    }

    /** Parse arguments, start the watchdog, run the body, map failures to a summary line, exit. */
    static void main(String driver, String usage, String[] argv, Set<String> valueOptions,
                     Set<String> flagOptions, Body body) {
        Args args;
        try {
            args = new Args(driver, usage, argv, valueOptions, flagOptions);
            if (args.help()) {
                OUT.print(usage + COMMON_USAGE);
                OUT.flush();
                System.exit(EXIT_OK);
            }
            args.timeoutMs();
        } catch (UsageException e) {
            System.err.println(driver + ": " + e.getMessage());
            System.err.print(usage + COMMON_USAGE);
            summary(Json.obj().put("driver", driver).put("error", "usage: " + e.getMessage()), false);
            System.exit(EXIT_USAGE);
            return;
        }
        Deadline deadline = new Deadline(args.timeoutMs());
        startWatchdog(driver, deadline);
        int code;
        try {
            code = body.run(args, deadline);
        } catch (UsageException e) {
            System.err.println(driver + ": " + e.getMessage());
            summary(Json.obj().put("driver", driver).put("error", "usage: " + e.getMessage()), false);
            code = EXIT_USAGE;
        } catch (Throwable t) {
            Throwable root = unwrap(t);
            log("%s failed: %s", driver, stackTrace(t));
            String msg = root.getMessage();
            if (root instanceof java.util.concurrent.TimeoutException && msg == null)
                msg = "no result within the remaining time (--timeout-ms " + deadline.timeoutMs + ")";
            summary(Json.obj().put("driver", driver)
                .put("error", root.getClass().getName() + ": " + msg)
                .put("elapsed_ms", deadline.elapsedMs()), false);
            code = EXIT_FAIL;
        }
        // Client threads are daemon or closed by now; exit explicitly anyway so a stray
        // non-daemon thread can never keep the process alive.
        System.exit(code);
    }

    private static void startWatchdog(String driver, Deadline deadline) {
        Thread t = new Thread(() -> {
            long hardStop = deadline.deadlineNanos + TimeUnit.MILLISECONDS.toNanos(WATCHDOG_GRACE_MS);
            while (true) {
                long left = hardStop - System.nanoTime();
                if (left <= 0) break;
                try {
                    TimeUnit.NANOSECONDS.sleep(Math.min(left, TimeUnit.MILLISECONDS.toNanos(500)));
                } catch (InterruptedException e) {
                    return;
                }
            }
            try {
                log("%s: watchdog fired (timeout %d ms + grace %d ms); halting", driver, deadline.timeoutMs, WATCHDOG_GRACE_MS);
                summary(Json.obj().put("driver", driver)
                    .put("error", "watchdog: driver did not finish within timeout-ms + grace")
                    .put("timeout_ms", deadline.timeoutMs), false);
            } catch (Throwable ignored) {
                // halt regardless
            } finally {
                Runtime.getRuntime().halt(EXIT_WATCHDOG);
            }
        }, "strait-watchdog");
        t.setDaemon(true);
        t.start();
    }

    // ------------------------------------------------------------------ time

    static final class Deadline {
        final long timeoutMs;
        final long startNanos;
        final long deadlineNanos;

        Deadline(long timeoutMs) {
            this.timeoutMs = timeoutMs;
            this.startNanos = System.nanoTime();
            this.deadlineNanos = startNanos + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        }

        long remainingMs() {
            return Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadlineNanos - System.nanoTime()));
        }

        /** Remaining time, at least 1 ms (for APIs that reject 0). */
        long remainingMsAtLeast1() { return Math.max(1, remainingMs()); }

        Duration remaining() { return Duration.ofMillis(remainingMsAtLeast1()); }

        boolean expired() { return System.nanoTime() - deadlineNanos >= 0; }

        long elapsedMs() { return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos); }

        /** Remaining time capped at capMs; for close() calls etc. */
        Duration capped(long capMs) { return Duration.ofMillis(Math.max(1, Math.min(capMs, remainingMs()))); }

        void check(String what) throws TimeoutExceeded {
            if (expired()) throw new TimeoutExceeded("timed out after " + timeoutMs + " ms while " + what);
        }
    }

    static final class TimeoutExceeded extends Exception {
        TimeoutExceeded(String msg) { super(msg); }
    }

    /**
     * Bounded polling loop: evaluate cond every intervalMs until it is true or the deadline
     * passes. Throws TimeoutExceeded on expiry.
     */
    static void waitUntil(Deadline d, String what, long intervalMs, BooleanSupplier cond)
            throws TimeoutExceeded, InterruptedException {
        while (true) {
            if (cond.getAsBoolean()) return;
            d.check(what);
            Thread.sleep(Math.max(1, Math.min(intervalMs, d.remainingMs())));
        }
    }

    // ------------------------------------------------------------------ kafka helpers

    /**
     * producer.flush() has no timeout (and can outlast delivery.timeout.ms, e.g. while a
     * partition has no reachable leader): run it on a daemon thread and wait for it at most
     * until the deadline.
     */
    static void boundedFlush(org.apache.kafka.clients.producer.Producer<?, ?> producer, Deadline d, String thread)
            throws InterruptedException {
        Thread flusher = new Thread(() -> {
            try {
                producer.flush();
            } catch (Exception e) {
                log("flush: %s", e);
            }
        }, thread);
        flusher.setDaemon(true);
        flusher.start();
        flusher.join(d.remainingMsAtLeast1());
    }

    static String randomSuffix() {
        return UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    }

    static Properties adminProps(Args args, String bootstrap, Deadline d) {
        Properties p = new Properties();
        p.setProperty("bootstrap.servers", bootstrap);
        p.setProperty("client.id", "strait-conformance-" + args.driver + "-admin");
        int t = (int) Math.min(Integer.MAX_VALUE, Math.max(1000, d.remainingMs()));
        p.setProperty("default.api.timeout.ms", Integer.toString(t));
        p.setProperty("request.timeout.ms", Integer.toString(Math.min(t, 30_000)));
        args.applyProps("admin", p);
        return p;
    }

    /**
     * Producer defaults bounded by the deadline: max.block.ms and delivery.timeout.ms never
     * exceed the remaining time (delivery.timeout.ms must be >= linger.ms + request.timeout.ms).
     */
    static Properties producerProps(Args args, String bootstrap, Deadline d) {
        Properties p = new Properties();
        long rem = Math.max(2000, d.remainingMs());
        p.setProperty("bootstrap.servers", bootstrap);
        p.setProperty("client.id", "strait-conformance-" + args.driver + "-producer");
        p.setProperty("acks", "all");
        p.setProperty("linger.ms", "5");
        p.setProperty("request.timeout.ms", Long.toString(Math.min(30_000, rem / 2)));
        p.setProperty("delivery.timeout.ms", Long.toString(Math.min(Integer.MAX_VALUE, rem)));
        p.setProperty("max.block.ms", Long.toString(rem));
        p.setProperty("key.serializer", org.apache.kafka.common.serialization.ByteArraySerializer.class.getName());
        p.setProperty("value.serializer", org.apache.kafka.common.serialization.ByteArraySerializer.class.getName());
        return p;
    }

    static Properties consumerProps(Args args, String bootstrap, Deadline d) {
        Properties p = new Properties();
        p.setProperty("bootstrap.servers", bootstrap);
        p.setProperty("client.id", "strait-conformance-" + args.driver + "-consumer");
        p.setProperty("enable.auto.commit", "false");
        p.setProperty("auto.offset.reset", "earliest");
        p.setProperty("default.api.timeout.ms", Long.toString(Math.min(Integer.MAX_VALUE, Math.max(1000, d.remainingMs()))));
        p.setProperty("key.deserializer", ByteArrayDeserializer.class.getName());
        p.setProperty("value.deserializer", ByteArrayDeserializer.class.getName());
        return p;
    }

    /**
     * producer.send bounded by the deadline. A send that fails before it is queued (metadata
     * not available within max.block.ms, record too large, authentication failure) comes back
     * as an already-completed future; surface it at once as an ExecutionException so a loop of
     * N sends cannot block N times max.block.ms.
     */
    static <K, V> java.util.concurrent.Future<org.apache.kafka.clients.producer.RecordMetadata> send(
            org.apache.kafka.clients.producer.Producer<K, V> producer,
            org.apache.kafka.clients.producer.ProducerRecord<K, V> record, Deadline d)
            throws TimeoutExceeded, ExecutionException, InterruptedException {
        d.check("producing");
        java.util.concurrent.Future<org.apache.kafka.clients.producer.RecordMetadata> f = producer.send(record);
        if (f.isDone()) f.get();
        return f;
    }

    static Json nodeJson(String kind, Node n) {
        Json j = Json.of("node").put("kind", kind);
        if (n == null || n.isEmpty()) {
            return j.put("id", n == null ? null : n.id()).put("host", null).put("port", null);
        }
        return j.put("id", n.id()).put("host", n.host()).put("port", n.port());
    }

    static List<Integer> nodeIds(Collection<Node> nodes) {
        List<Integer> ids = new ArrayList<>();
        for (Node n : nodes) ids.add(n.id());
        return ids;
    }

    /** Replication factor used by the drivers: number of brokers, capped at 3. */
    static short defaultReplicationFactor(Admin admin, Deadline d) throws Exception {
        int nodes = admin.describeCluster().nodes().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS).size();
        return (short) Math.max(1, Math.min(3, nodes));
    }

    /**
     * Create a topic (tolerating "already exists" when the existing topic has the same partition
     * count) and wait, in a bounded polling loop, until every partition has a leader and
     * a non-empty ISR as seen through this admin client.
     */
    static TopicDescription createTopicAndWait(Admin admin, String topic, int partitions, short rf,
                                               Map<String, String> configs, Deadline d) throws Exception {
        NewTopic nt = new NewTopic(topic, partitions, rf);
        if (configs != null && !configs.isEmpty()) nt.configs(configs);
        try {
            admin.createTopics(Collections.singleton(nt),
                    new CreateTopicsOptions().timeoutMs((int) Math.min(Integer.MAX_VALUE, d.remainingMsAtLeast1())))
                .all().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            log("created topic %s (partitions=%d, rf=%d)", topic, partitions, rf);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TopicExistsException) {
                log("topic %s already exists; reusing it", topic);
            } else {
                throw e;
            }
        }
        TopicDescription[] last = new TopicDescription[1];
        waitUntil(d, "waiting for topic " + topic + " to have leaders", 100, () -> {
            try {
                TopicDescription td = admin.describeTopics(Collections.singleton(topic),
                        new DescribeTopicsOptions().timeoutMs((int) Math.min(5000, d.remainingMsAtLeast1())))
                    .topicNameValues().get(topic).get(Math.min(5000, d.remainingMsAtLeast1()), TimeUnit.MILLISECONDS);
                if (td.partitions().size() < partitions) return false;
                for (TopicPartitionInfo p : td.partitions()) {
                    if (p.leader() == null || p.leader().isEmpty() || p.isr().isEmpty()) return false;
                }
                last[0] = td;
                return true;
            } catch (ExecutionException e) {
                if (e.getCause() instanceof UnknownTopicOrPartitionException) return false;
                log("describeTopics(%s) failed, retrying: %s", topic, e.getCause());
                return false;
            } catch (java.util.concurrent.TimeoutException e) {
                return false;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return true;
            }
        });
        if (last[0] == null) throw new InterruptedException("interrupted while waiting for topic " + topic);
        if (last[0].partitions().size() != partitions) {
            throw new IllegalStateException("topic " + topic + " has " + last[0].partitions().size()
                + " partitions, expected " + partitions);
        }
        return last[0];
    }

    static Throwable unwrap(Throwable t) {
        Throwable cur = t;
        while ((cur instanceof ExecutionException || cur instanceof java.util.concurrent.CompletionException
                || (cur instanceof org.apache.kafka.common.KafkaException && cur.getClass() == org.apache.kafka.common.KafkaException.class))
               && cur.getCause() != null && cur.getCause() != cur) {
            cur = cur.getCause();
        }
        return cur;
    }

    static String stackTrace(Throwable t) {
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }

    static byte[] utf8(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static String str(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }

    interface Action {
        void run() throws Exception;
    }

    /** Run a close action (callers pass close(Duration) so it is bounded), logging failures. */
    static void closeQuietly(String what, Action close) {
        try {
            close.run();
        } catch (Exception e) {
            log("closing %s failed: %s", what, e);
        }
    }

    /** Close a consumer with a bounded timeout (CloseOptions: KafkaConsumer.close(Duration) is deprecated in 4.1). */
    static void closeConsumer(org.apache.kafka.clients.consumer.Consumer<?, ?> c, Deadline d, long capMs) {
        if (c == null) return;
        closeQuietly("consumer", () -> c.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(d.capped(capMs))));
    }

    static Set<String> setOf(String... s) {
        return new HashSet<>(java.util.Arrays.asList(s));
    }
}
