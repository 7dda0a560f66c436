package strait.conformance;

import static strait.conformance.Common.*;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/**
 * Reads a whole topic from the beginning up to its end offsets (no consumer group), e.g. to
 * check directly on the broker that nothing of a rejected batch arrived.
 */
public final class ReadTopic {
    static final String USAGE =
        "usage: ReadTopic --bootstrap HOST:PORT --topic T [--isolation read_committed|read_uncommitted]\n"
        + "                 [--expect N] [--quiet] [--values] [options]\n"
        + "  Assigns every partition of T (no group, allow.auto.create.topics=false), seeks to the\n"
        + "  beginning and reads until each partition's position reaches the end offset taken at the\n"
        + "  start with consumer.endOffsets under the same isolation level (read_committed: the last\n"
        + "  stable offset; default read_uncommitted). Records at or after that end offset are not counted.\n"
        + "  A topic that does not exist reads as 0 partitions, 0 records (summary topic_exists=false).\n"
        + "  Output per record (unless --quiet): {\"type\":\"record\",\"partition\",\"offset\",\"timestamp\",\"key\",\n"
        + "  \"headers\":[[k,v],...],\"value_len\"} (key and header values as UTF-8 text, null when null;\n"
        + "  value_len null for a null value; with --values also \"value\" as UTF-8 text); summary count,\n"
        + "  per_partition, begin_offsets, end_offsets.\n"
        + "  ok: all end offsets reached within --timeout-ms and, with --expect N, exactly N records read.\n";

    public static void main(String[] argv) {
        Common.main("ReadTopic", USAGE, argv, setOf("bootstrap", "topic", "isolation", "expect"), setOf("quiet", "values"),
            ReadTopic::run);
    }

    static int run(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        String isolation = args.str("isolation", "read_uncommitted");
        if (!isolation.equals("read_committed") && !isolation.equals("read_uncommitted"))
            throw new UsageException("--isolation must be read_committed or read_uncommitted, got " + isolation);
        Long expect = args.str("expect", null) == null ? null : args.longOpt("expect", 0);
        if (expect != null && expect < 0) throw new UsageException("--expect must be >= 0");
        boolean quiet = args.flag("quiet");
        boolean values = args.flag("values");
        Json summary = CONTEXT.put("driver", "ReadTopic").put("bootstrap", bootstrap).put("topic", topic)
            .put("isolation", isolation).put("expect", expect);

        Properties cp = consumerProps(args, bootstrap, d);
        cp.setProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        cp.setProperty(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        args.applyProps("consumer", cp);

        long count = 0;
        long beyondEnd = 0;
        Map<String, Long> perPartition = new TreeMap<>();
        Map<String, Long> beginJson = new TreeMap<>();
        Map<String, Long> endJson = new TreeMap<>();
        boolean reachedEnd;
        context("phase", "metadata");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        try {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, d.remaining());
            List<TopicPartition> tps = new ArrayList<>();
            if (infos != null) for (PartitionInfo pi : infos) tps.add(new TopicPartition(topic, pi.partition()));
            tps.sort((a, b) -> Integer.compare(a.partition(), b.partition()));
            summary.put("topic_exists", !tps.isEmpty()).put("partitions", tps.size());

            context("phase", "offsets");
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            Map<TopicPartition, Long> begin = tps.isEmpty() ? new HashMap<>() : consumer.beginningOffsets(tps, d.remaining());
            Map<TopicPartition, Long> end = tps.isEmpty() ? new HashMap<>() : consumer.endOffsets(tps, d.remaining());
            for (TopicPartition tp : tps) {
                beginJson.put(Integer.toString(tp.partition()), begin.get(tp));
                endJson.put(Integer.toString(tp.partition()), end.get(tp));
                perPartition.put(Integer.toString(tp.partition()), 0L);
            }
            summary.put("begin_offsets", beginJson).put("end_offsets", endJson);

            context("phase", "read");
            List<TopicPartition> open = new ArrayList<>();
            for (TopicPartition tp : tps) if (begin.get(tp) < end.get(tp)) open.add(tp);
            while (!open.isEmpty() && !d.expired()) {
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(Math.min(1000, d.remainingMsAtLeast1())));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    if (r.offset() >= end.get(tp)) {
                        beyondEnd++;
                        continue;
                    }
                    count++;
                    perPartition.merge(Integer.toString(r.partition()), 1L, Long::sum);
                    if (!quiet) {
                        List<List<String>> hs = new ArrayList<>();
                        for (Header h : r.headers()) {
                            List<String> pair = new ArrayList<>();
                            pair.add(h.key());
                            pair.add(str(h.value()));
                            hs.add(pair);
                        }
                        Json rec = Json.of("record").put("partition", r.partition()).put("offset", r.offset())
                            .put("timestamp", r.timestamp()).put("key", str(r.key())).put("headers", hs)
                            .put("value_len", r.value() == null ? null : r.value().length);
                        if (values) rec.put("value", str(r.value()));
                        emit(rec);
                    }
                }
                List<TopicPartition> still = new ArrayList<>();
                for (TopicPartition tp : open) {
                    if (d.expired()) {
                        still.add(tp);
                        continue;
                    }
                    if (consumer.position(tp, d.remaining()) < end.get(tp)) still.add(tp);
                }
                open = still;
            }
            reachedEnd = open.isEmpty();
            if (!reachedEnd) {
                List<Integer> unfinished = new ArrayList<>();
                for (TopicPartition tp : open) unfinished.add(tp.partition());
                summary.put("unfinished_partitions", unfinished);
            }
        } finally {
            closeConsumer(consumer, d, 5000);
        }
        CONTEXT.remove("phase");
        summary.put("count", count).put("per_partition", perPartition).put("beyond_end", beyondEnd)
            .put("elapsed_ms", d.elapsedMs());
        boolean ok = reachedEnd && (expect == null || count == expect);
        if (!reachedEnd) summary.put("error", "end offsets not reached within --timeout-ms " + d.timeoutMs + " (" + count + " record(s) read)");
        else if (!ok) summary.put("error", "read " + count + " record(s), expected " + expect);
        return summary(summary, ok);
    }
}
