package strait.conformance;

import static strait.conformance.Common.*;

import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Large records: produce N records of S bytes (deterministic pseudo-random content derived
 * from the index) through one bootstrap, consume them through another with 50 MB fetch
 * settings, and verify every byte.
 */
public final class LargeFetch {
    static final String USAGE =
        "usage: LargeFetch --bootstrap-produce B1 --bootstrap-consume B2 --topic T --records N --record-bytes S [options]\n"
        + "  Creates T (1 partition, rf = min(#nodes, 3)) through B1, produces N records of S bytes\n"
        + "  (key = index; value = SplittableRandom(seed, index) bytes) with acks=all and\n"
        + "  max.request.size = S + 1 MiB, then consumes from the beginning through B2 (no group) with\n"
        + "  max.partition.fetch.bytes = fetch.max.bytes = fetch.min.bytes = 52428800, fetch.max.wait.ms = 2000,\n"
        + "  and compares every record's bytes with the regenerated content.\n"
        + "  --seed X                   content seed (default 20240917)\n"
        + "  --topic-config k=v         topic config at creation (repeatable), e.g. max.message.bytes=...\n"
        + "  --no-create-topic          do not create T (it must exist)\n"
        + "  --quiet-records            no per-record lines (only polls and the summary)\n";

    public static void main(String[] argv) {
        Common.main("LargeFetch", USAGE, argv,
            setOf("bootstrap-produce", "bootstrap-consume", "topic", "records", "record-bytes", "seed", "topic-config"),
            setOf("no-create-topic", "quiet-records"),
            LargeFetch::run);
    }

    static final long MIB = 1024L * 1024L;
    static final int FETCH_BYTES = 52_428_800;

    /** Deterministic content of record {@code index}: SplittableRandom seeded from (seed, index). */
    static void fill(byte[] buf, long seed, long index) {
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + index);
        int i = 0;
        int n = buf.length;
        while (i + 8 <= n) {
            long v = r.nextLong();
            buf[i] = (byte) v;
            buf[i + 1] = (byte) (v >>> 8);
            buf[i + 2] = (byte) (v >>> 16);
            buf[i + 3] = (byte) (v >>> 24);
            buf[i + 4] = (byte) (v >>> 32);
            buf[i + 5] = (byte) (v >>> 40);
            buf[i + 6] = (byte) (v >>> 48);
            buf[i + 7] = (byte) (v >>> 56);
            i += 8;
        }
        if (i < n) {
            long v = r.nextLong();
            for (; i < n; i++) {
                buf[i] = (byte) v;
                v >>>= 8;
            }
        }
    }

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    static int run(Args args, Deadline d) throws Exception {
        String b1 = args.required("bootstrap-produce");
        String b2 = args.required("bootstrap-consume");
        String topic = args.required("topic");
        int records = args.intOpt("records", -1);
        if (records < 1) throw new UsageException("--records must be >= 1");
        long sizeL = args.longOpt("record-bytes", -1);
        if (sizeL < 0 || sizeL > Integer.MAX_VALUE - 16 * MIB) throw new UsageException("--record-bytes must be in [0, 2 GiB - 16 MiB)");
        int size = (int) sizeL;
        long seed = args.longOpt("seed", 20240917L);
        boolean perRecord = !args.flag("quiet-records");
        Json summary = CONTEXT.put("driver", "LargeFetch").put("topic", topic).put("records", records)
            .put("record_bytes", size).put("bootstrap_produce", b1).put("bootstrap_consume", b2);

        if (!args.flag("no-create-topic")) {
            Admin admin = Admin.create(adminProps(args, b1, d));
            try {
                context("phase", "create topic");
                createTopicAndWait(admin, topic, 1, defaultReplicationFactor(admin, d), args.keyValues("topic-config"), d);
            } finally {
                closeQuietly("admin", () -> admin.close(d.capped(5000)));
            }
        }

        // ---- produce through B1
        long maxRequest = Math.max(1 * MIB, size + 1 * MIB);
        Properties pp = producerProps(args, b1, d);
        pp.setProperty("max.request.size", Long.toString(maxRequest));
        pp.setProperty("buffer.memory", Long.toString(Math.max(64 * MIB, 2 * maxRequest)));
        pp.setProperty("compression.type", "none");
        args.applyProps("producer", pp);
        context("phase", "produce");
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
        long producedBytes = 0;
        try {
            List<Future<RecordMetadata>> futures = new ArrayList<>(records);
            for (int i = 0; i < records; i++) {
                byte[] value = new byte[size];
                fill(value, seed, i);
                futures.add(send(producer, new ProducerRecord<>(topic, 0, utf8(Integer.toString(i)), value), d));
                producedBytes += size;
            }
            producer.flush();
            for (int i = 0; i < records; i++) {
                RecordMetadata md = futures.get(i).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                if (perRecord)
                    emit(Json.of("produced").put("index", i).put("partition", md.partition()).put("offset", md.offset())
                        .put("bytes", size));
            }
        } finally {
            closeQuietly("producer", () -> producer.close(d.capped(10_000)));
        }
        log("produced %d records of %d bytes (%d bytes) through %s", records, size, producedBytes, b1);

        // ---- consume through B2
        Properties cp = consumerProps(args, b2, d);
        cp.setProperty("max.partition.fetch.bytes", Integer.toString(FETCH_BYTES));
        cp.setProperty("fetch.max.bytes", Integer.toString(FETCH_BYTES));
        cp.setProperty("fetch.min.bytes", Integer.toString(FETCH_BYTES));
        cp.setProperty("fetch.max.wait.ms", "2000");
        args.applyProps("consumer", cp);
        context("phase", "consume");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        TopicPartition tp = new TopicPartition(topic, 0);
        BitSet seen = new BitSet(records);
        long consumed = 0, verified = 0, mismatches = 0, duplicates = 0, consumedBytes = 0, polls = 0, maxPollBytes = 0;
        long endOffset;
        byte[] expected = new byte[size];
        try {
            consumer.assign(Collections.singleton(tp));
            consumer.seekToBeginning(Collections.singleton(tp));
            Map<TopicPartition, Long> ends = consumer.endOffsets(Collections.singleton(tp), d.remaining());
            endOffset = ends.get(tp);
            emit(Json.of("end_offset").put("partition", 0).put("offset", endOffset));
            while (consumer.position(tp, d.remaining()) < endOffset) {
                d.check("consuming (position " + consumer.position(tp, d.remaining()) + " of " + endOffset + ")");
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(Math.min(5000, d.remainingMsAtLeast1())));
                if (recs.isEmpty()) continue;
                polls++;
                long pollBytes = 0;
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    consumed++;
                    byte[] v = r.value();
                    int vlen = v == null ? -1 : v.length;
                    pollBytes += Math.max(0, vlen);
                    String key = str(r.key());
                    int idx = -1;
                    try {
                        idx = Integer.parseInt(key);
                    } catch (NumberFormatException | NullPointerException e) {
                        // reported below as a mismatch
                    }
                    boolean ok = false;
                    if (idx >= 0 && idx < records && vlen == size) {
                        fill(expected, seed, idx);
                        ok = Arrays.equals(expected, v);
                    }
                    if (ok) {
                        if (seen.get(idx)) duplicates++;
                        seen.set(idx);
                        verified++;
                    } else {
                        mismatches++;
                        log("record at offset %d (key %s, %d bytes) does not match the expected content", r.offset(), key, vlen);
                    }
                    if (perRecord || !ok)
                        emit(Json.of("record").put("index", idx).put("offset", r.offset()).put("bytes", vlen)
                            .put("sha256", v == null ? null : sha256(v)).put("ok", ok));
                }
                consumedBytes += pollBytes;
                maxPollBytes = Math.max(maxPollBytes, pollBytes);
                emit(Json.of("poll").put("records", recs.count()).put("bytes", pollBytes));
            }
        } finally {
            closeConsumer(consumer, d, 5000);
        }

        int distinct = seen.cardinality();
        boolean ok = distinct == records && mismatches == 0;
        summary.put("produced", records).put("produced_bytes", producedBytes).put("consumed", consumed)
            .put("verified", verified).put("distinct", distinct).put("missing", records - distinct)
            .put("duplicates", duplicates).put("mismatches", mismatches).put("total_bytes", consumedBytes)
            .put("polls", polls).put("max_poll_bytes", maxPollBytes).put("end_offset", endOffset)
            .put("elapsed_ms", d.elapsedMs());
        if (!ok) summary.put("error", (records - distinct) + " record(s) missing, " + mismatches + " mismatching");
        CONTEXT.remove("phase");
        return summary(summary, ok);
    }
}
