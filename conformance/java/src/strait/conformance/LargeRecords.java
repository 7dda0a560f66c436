package strait.conformance;

import static strait.conformance.Common.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Large records with an otherwise unmodified Java client (kafka-clients): produce N values of
 * S bytes, or consume and fingerprint them. The librdkafka twin is
 * conformance/python/large_records.py: same command line, same JSON lines, same values.
 *
 * <p>Value spec (shared with large_records.py): value(seed, i, size) is the first {@code size}
 * bytes of SHA-256(S || I || B0) || SHA-256(S || I || B1) || ..., where S = seed, I = the
 * record index (0-based) and Bk = the block counter k (0, 1, 2, ...), each as 8 bytes,
 * big-endian two's complement. Self-check at start:
 * sha256(value(1, 0, 1000)) = {@value #SELF_CHECK_SHA256}.
 */
public final class LargeRecords {
    static final String SELF_CHECK_SHA256 = "739fcd158512c980256fb6d98a076d27b3f9e9e6115029dddb0c00b6c482815e";

    static final String USAGE =
        "usage: LargeRecords produce --bootstrap B --topic T --count N --size BYTES [--seed S] [--partition P]\n"
        + "                    [--key-prefix K] [--transactional-id ID [--abort-indices i,j,...]] [--config k=v ...]\n"
        + "       LargeRecords consume --bootstrap B --topic T --expect N [--group G] [--read-committed]\n"
        + "                    [--seek P:O ...] [--stop-after K] [--config k=v ...]\n"
        + "  Java kafka-clients with default settings except the size settings. The librdkafka twin is\n"
        + "  conformance/python/large_records.py (same options, same output, same values).\n"
        + "  Value i = the first BYTES bytes of SHA-256(seed||i||0) || SHA-256(seed||i||1) || ... (each of\n"
        + "  seed, i, block counter as 8 bytes big-endian); key = K + i (default K empty); one header\n"
        + "  (\"n\", \"<i>\") per record. Self-check at start: sha256(value(1, 0, 1000)) =\n"
        + "  " + SELF_CHECK_SHA256 + ".\n"
        + "produce: to T (must exist); producer defaults (idempotent, acks=all) except max.request.size =\n"
        + "  max(1048576, BYTES + 1 MiB) and buffer.memory = max(33554432, 2*BYTES + 1 MiB). Records are\n"
        + "  sent one after another without waiting (the client pipelines them). With --transactional-id,\n"
        + "  each record is its own transaction (begin, send, wait for the ack, then abortTransaction when\n"
        + "  its index is in --abort-indices, else commitTransaction).\n"
        + "  Output: {\"type\":\"acked\"|\"aborted\",\"index\",\"partition\",\"offset\",\"size\",\"sha256\"} per record\n"
        + "  as acknowledged (committed / aborted), {\"type\":\"error\",\"index\",\"error\",\"retriable\"} per failed\n"
        + "  record; summary count, acked, aborted, errors, pending, unsent. ok: no error, every record\n"
        + "  acknowledged (and committed or aborted as asked).\n"
        + "  --seed S                   content seed (default 1)\n"
        + "  --partition P              send every record to partition P (default: the client's partitioner)\n"
        + "  --key-prefix K             key = K + index (default: the index in decimal)\n"
        + "  --transactional-id ID      one transaction per record\n"
        + "  --abort-indices i,j,...    indices whose transaction is aborted (needs --transactional-id)\n"
        + "consume: without --group assigns every partition of T from the beginning (or only the --seek\n"
        + "  P:O partitions from offset O, repeatable); with --group G subscribes (auto.offset.reset =\n"
        + "  earliest, enable.auto.commit = false) and commits each record's offset + 1 synchronously after\n"
        + "  printing it. Consumer defaults otherwise (no fetch size is raised); isolation.level =\n"
        + "  read_uncommitted unless --read-committed. Stops after N records or at the timeout.\n"
        + "  Output: {\"type\":\"record\",\"partition\",\"offset\",\"size\",\"sha256\",\"headers\":[[k,v],...],\"key\",\n"
        + "  \"index\"} per record (index = the \"n\" header as a number, else null; size/sha256 null for a\n"
        + "  null value); summary count. ok: N records read.\n"
        + "  --stop-after K             after the K-th record (printed and committed), print the summary\n"
        + "                             (halted=true) and halt the JVM at once (exit 0): no close, no leave\n"
        + "                             group, like a crash\n"
        + "  --timeout-s S              bound on the whole run in seconds (= --timeout-ms S*1000; here the\n"
        + "                             default is 120 s, not 60 s)\n"
        + "  --config k=v               client property (repeatable, applied last)\n";

    static final long MIB = 1024L * 1024L;
    static final long DEFAULT_TIMEOUT_MS = 120_000;

    static final Set<String> PRODUCE_OPTIONS = setOf("count", "size", "seed", "partition", "key-prefix",
        "transactional-id", "abort-indices");
    static final Set<String> CONSUME_OPTIONS = setOf("expect", "group", "seek", "stop-after");

    public static void main(String[] argv) {
        String mode = argv.length > 0 && !argv[0].startsWith("-") ? argv[0] : null;
        List<String> rest = new ArrayList<>();
        // Default bound: 120 s (later --timeout-ms / --timeout-s win: the last value counts).
        rest.add("--timeout-ms");
        rest.add(Long.toString(DEFAULT_TIMEOUT_MS));
        for (int i = mode == null ? 0 : 1; i < argv.length; i++) {
            String a = argv[i];
            if (a.equals("--timeout-s") || a.startsWith("--timeout-s=")) {
                String v = a.equals("--timeout-s") ? (i + 1 < argv.length ? argv[++i] : "") : a.substring("--timeout-s=".length());
                long ms;
                try {
                    ms = Math.round(Double.parseDouble(v) * 1000);
                } catch (NumberFormatException e) {
                    ms = -1;
                }
                rest.add("--timeout-ms");
                rest.add(ms > 0 ? Long.toString(ms) : "invalid-timeout-s:" + v);
            } else {
                rest.add(a);
            }
        }
        Set<String> values = setOf("bootstrap", "topic", "config");
        values.addAll(PRODUCE_OPTIONS);
        values.addAll(CONSUME_OPTIONS);
        Common.main("LargeRecords", USAGE, rest.toArray(new String[0]), values, setOf("read-committed"),
            (args, d) -> run(mode, args, d));
    }

    // ------------------------------------------------------------------ values

    /** value(seed, index, size) as specified in the class comment. */
    static byte[] value(long seed, long index, int size) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        byte[] out = new byte[size];
        ByteBuffer in = ByteBuffer.allocate(24); // big-endian by default
        in.putLong(0, seed).putLong(8, index);
        byte[] inb = in.array();
        byte[] last = new byte[32];
        long block = 0;
        for (int off = 0; off < size; off += 32, block++) {
            in.putLong(16, block);
            md.update(inb, 0, 24);
            if (size - off >= 32) {
                md.digest(out, off, 32);
            } else {
                md.digest(last, 0, 32);
                System.arraycopy(last, 0, out, off, size - off);
            }
        }
        return out;
    }

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    static void selfCheck() throws Exception {
        String got = sha256(value(1, 0, 1000));
        if (!got.equals(SELF_CHECK_SHA256))
            throw new IllegalStateException("value generator self-check failed: sha256(value(1, 0, 1000)) = " + got
                + ", expected " + SELF_CHECK_SHA256);
    }

    // ------------------------------------------------------------------ driver

    static int run(String mode, Args args, Deadline d) throws Exception {
        if (mode == null) throw new UsageException("missing mode: produce or consume");
        String timeoutOpt = args.str("timeout-ms", "");
        if (timeoutOpt.startsWith("invalid-timeout-s:"))
            throw new UsageException("--timeout-s must be a positive number, got " + timeoutOpt.substring(18));
        selfCheck();
        context("driver", "LargeRecords");
        context("mode", mode);
        switch (mode) {
            case "produce":
                rejectOptions(args, CONSUME_OPTIONS, "produce");
                if (args.flag("read-committed")) throw new UsageException("--read-committed is a consume option");
                return produce(args, d);
            case "consume":
                rejectOptions(args, PRODUCE_OPTIONS, "consume");
                return consume(args, d);
            default:
                throw new UsageException("unknown mode " + mode + " (produce or consume)");
        }
    }

    static void rejectOptions(Args args, Set<String> names, String mode) {
        for (String n : new TreeSet<>(names))
            if (!args.all(n).isEmpty()) throw new UsageException("--" + n + " is not a " + mode + " option");
    }

    static Json errorLine(int index, Throwable t) {
        Throwable root = unwrap(t);
        return Json.of("error").put("index", index)
            .put("error", root.getClass().getName() + ": " + root.getMessage())
            .put("retriable", root instanceof RetriableException);
    }

    static Json recordLine(String type, int index, RecordMetadata md, int size, String sha) {
        return Json.of(type).put("index", index).put("partition", md.partition()).put("offset", md.offset())
            .put("size", size).put("sha256", sha);
    }

    static int produce(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        int count = args.intOpt("count", -1);
        if (count < 0) throw new UsageException("--count N (>= 0) is required");
        long sizeL = args.longOpt("size", -1);
        if (sizeL < 0 || sizeL > Integer.MAX_VALUE - 64 * MIB) throw new UsageException("--size must be in [0, 2 GiB - 64 MiB)");
        int size = (int) sizeL;
        long seed = args.longOpt("seed", 1);
        Integer partition = args.str("partition", null) == null ? null : args.intOpt("partition", 0);
        String keyPrefix = args.str("key-prefix", "");
        String txnId = args.str("transactional-id", null);
        Set<Integer> abort = new TreeSet<>();
        String abortOpt = args.str("abort-indices", null);
        if (abortOpt != null) {
            if (txnId == null) throw new UsageException("--abort-indices needs --transactional-id");
            for (String s : abortOpt.split(",")) {
                if (s.isBlank()) continue;
                try {
                    abort.add(Integer.parseInt(s.trim()));
                } catch (NumberFormatException e) {
                    throw new UsageException("--abort-indices expects i,j,..., got " + abortOpt);
                }
            }
        }

        Properties p = new Properties();
        p.setProperty("bootstrap.servers", bootstrap);
        p.setProperty("key.serializer", ByteArraySerializer.class.getName());
        p.setProperty("value.serializer", ByteArraySerializer.class.getName());
        // The size settings (everything else stays at the client's defaults). max.request.size
        // holds one record; not 2x, which would let two 50 MiB batches share one request past the
        // broker's socket.request.max.bytes (100 MiB).
        long maxRequest = Math.max(1_048_576L, size + MIB);
        long bufferMemory = Math.max(33_554_432L, 2L * size + MIB);
        p.setProperty("max.request.size", Long.toString(maxRequest));
        p.setProperty("buffer.memory", Long.toString(bufferMemory));
        if (txnId != null) p.setProperty("transactional.id", txnId);
        Map<String, String> user = args.keyValues("config");
        for (Map.Entry<String, String> e : user.entrySet()) p.setProperty(e.getKey(), e.getValue());
        args.applyProps("producer", p);

        Map<String, Object> sizeSettings = new LinkedHashMap<>();
        for (String k : List.of("max.request.size", "buffer.memory")) {
            String v = p.getProperty(k);
            try {
                sizeSettings.put(k, Long.parseLong(v.trim()));
            } catch (NumberFormatException e) {
                sizeSettings.put(k, v);
            }
        }
        Json summary = CONTEXT.put("bootstrap", bootstrap).put("topic", topic).put("count", count).put("size", size)
            .put("seed", seed).put("transactional_id", txnId).put("abort_indices", new ArrayList<>(abort))
            .put("client", "kafka-clients " + org.apache.kafka.common.utils.AppInfoParser.getVersion())
            .put("size_settings", sizeSettings).put("config", user);

        AtomicLong acked = new AtomicLong(), aborted = new AtomicLong(), errors = new AtomicLong();
        CountDownLatch done = new CountDownLatch(count);
        int sent = 0;
        context("phase", "create producer");
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p);
        try {
            if (txnId != null) {
                context("phase", "initTransactions");
                producer.initTransactions();
            }
            context("phase", "produce");
            for (int i = 0; i < count; i++) {
                if (d.expired()) break;
                byte[] v = value(seed, i, size);
                String sha = sha256(v);
                List<Header> headers = List.of(new RecordHeader("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8)));
                ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(topic, partition, null,
                    (keyPrefix + i).getBytes(StandardCharsets.UTF_8), v, headers);
                final int index = i;
                if (txnId == null) {
                    sent++;
                    try {
                        producer.send(rec, (md, e) -> {
                            if (e == null) {
                                acked.incrementAndGet();
                                emit(recordLine("acked", index, md, size, sha));
                            } else {
                                errors.incrementAndGet();
                                emit(errorLine(index, e));
                            }
                            done.countDown();
                        });
                    } catch (RuntimeException e) {
                        // send() threw (the callback is not called then)
                        errors.incrementAndGet();
                        emit(errorLine(index, e));
                        done.countDown();
                    }
                    continue;
                }
                // one transaction per record
                sent++;
                boolean abortIt = abort.contains(i);
                try {
                    producer.beginTransaction();
                    RecordMetadata md = producer.send(rec).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                    if (abortIt) {
                        producer.abortTransaction();
                        aborted.incrementAndGet();
                        emit(recordLine("aborted", index, md, size, sha));
                    } else {
                        producer.commitTransaction();
                        acked.incrementAndGet();
                        emit(recordLine("acked", index, md, size, sha));
                    }
                    done.countDown();
                } catch (java.util.concurrent.TimeoutException e) {
                    // no result by the deadline: pending, the loop ends on d.expired()
                    log("record %d: no result within the timeout", index);
                } catch (Exception e) {
                    errors.incrementAndGet();
                    emit(errorLine(index, e));
                    done.countDown();
                    try {
                        producer.abortTransaction();
                    } catch (Exception ae) {
                        log("abortTransaction after the error of record %d failed: %s; stopping", index, ae);
                        break;
                    }
                }
            }
            // flush() has no timeout: run it on a daemon thread and wait at most until the deadline.
            context("phase", "flush");
            boundedFlush(producer, d, "strait-large-flush");
            for (int i = sent; i < count; i++) done.countDown();
            done.await(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
        } finally {
            context("phase", "close");
            closeQuietly("producer", () -> producer.close(d.capped(10_000)));
        }
        CONTEXT.remove("phase");
        long pending = sent - acked.get() - aborted.get() - errors.get();
        long unsent = count - sent;
        long wantAborted = txnId == null ? 0 : abort.stream().filter(i -> i >= 0 && i < count).count();
        summary.put("acked", acked.get()).put("aborted", aborted.get()).put("errors", errors.get())
            .put("pending", pending).put("unsent", unsent).put("elapsed_ms", d.elapsedMs());
        boolean ok = errors.get() == 0 && pending == 0 && unsent == 0
            && acked.get() == count - wantAborted && aborted.get() == wantAborted;
        if (!ok) summary.put("error", errors.get() + " error(s), " + pending + " without a result within the timeout, "
            + unsent + " unsent (" + acked.get() + " acked, " + aborted.get() + " aborted of " + count + ")");
        return summary(summary, ok);
    }

    static int consume(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        long expect = args.longOpt("expect", -1);
        if (expect < 0) throw new UsageException("--expect N (>= 0) is required");
        String group = args.str("group", null);
        boolean readCommitted = args.flag("read-committed");
        long stopAfter = args.longOpt("stop-after", -1);
        if (args.str("stop-after", null) != null && stopAfter < 1) throw new UsageException("--stop-after must be >= 1");
        Map<Integer, Long> seeks = new LinkedHashMap<>();
        for (String s : args.all("seek")) {
            String[] po = s.split(":");
            try {
                if (po.length != 2) throw new NumberFormatException();
                seeks.put(Integer.parseInt(po[0]), Long.parseLong(po[1]));
            } catch (NumberFormatException e) {
                throw new UsageException("--seek expects PARTITION:OFFSET, got " + s);
            }
        }
        if (group != null && !seeks.isEmpty()) throw new UsageException("--seek is for the no-group mode (without --group)");

        Properties p = new Properties();
        p.setProperty("bootstrap.servers", bootstrap);
        p.setProperty("key.deserializer", ByteArrayDeserializer.class.getName());
        p.setProperty("value.deserializer", ByteArrayDeserializer.class.getName());
        if (readCommitted) p.setProperty("isolation.level", "read_committed");
        if (group != null) {
            p.setProperty("group.id", group);
            p.setProperty("enable.auto.commit", "false");
            p.setProperty("auto.offset.reset", "earliest");
        }
        Map<String, String> user = args.keyValues("config");
        for (Map.Entry<String, String> e : user.entrySet()) p.setProperty(e.getKey(), e.getValue());
        args.applyProps("consumer", p);

        Json summary = CONTEXT.put("bootstrap", bootstrap).put("topic", topic).put("expect", expect).put("group", group)
            .put("isolation", readCommitted ? "read_committed" : "read_uncommitted")
            .put("client", "kafka-clients " + org.apache.kafka.common.utils.AppInfoParser.getVersion())
            .put("config", user);
        if (stopAfter > 0) summary.put("stop_after", stopAfter);

        long count = 0;
        long bytes = 0;
        context("phase", "create consumer");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p);
        try {
            if (group != null) {
                context("phase", "subscribe");
                consumer.subscribe(Collections.singleton(topic));
            } else {
                context("phase", "assign");
                List<TopicPartition> tps = new ArrayList<>();
                if (seeks.isEmpty()) {
                    List<PartitionInfo> infos = consumer.partitionsFor(topic, d.remaining());
                    if (infos != null) for (PartitionInfo pi : infos) tps.add(new TopicPartition(topic, pi.partition()));
                    if (tps.isEmpty()) throw new IllegalStateException("topic " + topic + " has no partitions");
                    tps.sort((a, b) -> Integer.compare(a.partition(), b.partition()));
                    consumer.assign(tps);
                    consumer.seekToBeginning(tps);
                } else {
                    for (int part : seeks.keySet()) tps.add(new TopicPartition(topic, part));
                    consumer.assign(tps);
                    for (Map.Entry<Integer, Long> e : seeks.entrySet())
                        consumer.seek(new TopicPartition(topic, e.getKey()), e.getValue());
                }
                summary.put("assigned", tps.stream().map(TopicPartition::partition).toList());
            }
            context("phase", "consume");
            outer:
            while (count < expect && !d.expired()) {
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(Math.min(1000, d.remainingMsAtLeast1())));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    byte[] v = r.value();
                    List<List<String>> hs = new ArrayList<>();
                    Integer index = null;
                    for (Header h : r.headers()) {
                        hs.add(Arrays.asList(h.key(), str(h.value())));
                        if (h.key().equals("n") && index == null && h.value() != null) {
                            try {
                                index = Integer.parseInt(str(h.value()));
                            } catch (NumberFormatException e) {
                                // not ours: index stays null
                            }
                        }
                    }
                    emit(Json.of("record").put("partition", r.partition()).put("offset", r.offset())
                        .put("size", v == null ? null : v.length).put("sha256", v == null ? null : sha256(v))
                        .put("headers", hs).put("key", str(r.key())).put("index", index));
                    count++;
                    bytes += v == null ? 0 : v.length;
                    if (group != null) {
                        consumer.commitSync(Map.of(new TopicPartition(r.topic(), r.partition()),
                            new OffsetAndMetadata(r.offset() + 1)), d.remaining());
                    }
                    if (stopAfter > 0 && count >= stopAfter) {
                        CONTEXT.remove("phase");
                        summary(summary.put("count", count).put("bytes", bytes).put("halted", true)
                            .put("elapsed_ms", d.elapsedMs()), true);
                        System.out.flush();
                        Runtime.getRuntime().halt(EXIT_OK);
                    }
                    if (count >= expect) break outer;
                }
            }
        } finally {
            closeConsumer(consumer, d, 5000);
        }
        CONTEXT.remove("phase");
        summary.put("count", count).put("bytes", bytes).put("elapsed_ms", d.elapsedMs());
        boolean ok = count == expect;
        if (!ok) summary.put("error", "read " + count + " of " + expect + " record(s) within --timeout-ms " + d.timeoutMs);
        return summary(summary, ok);
    }
}
