package strait.conformance;

import static strait.conformance.Common.*;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.WakeupException;

/**
 * A consumer-group member that consumes and commits after every poll, for tests of
 * consumer-lag tooling: optionally stops after N records, optionally "stalls" on one record
 * (keeps committing its offset and re-reading it while staying in the group), optionally
 * forwards every record to a second topic.
 */
public final class GroupConsume {
    static final String USAGE =
        "usage: GroupConsume --bootstrap HOST:PORT --topic T --group G [--group-protocol classic|consumer]\n"
        + "                    [--isolation read_committed|read_uncommitted] [--records N]\n"
        + "                    [--stall-at OFFSET [--stall-partition P]] [--client-id ID] [--forward-to T2] [options]\n"
        + "  Subscribes to T in group G (enable.auto.commit=false, auto.offset.reset=earliest, the given\n"
        + "  isolation level, default read_uncommitted; group.protocol classic (default) or consumer =\n"
        + "  KIP-848). Emits {\"type\":\"ready\",\"partitions\":[...]} after the first poll that leaves a non-empty\n"
        + "  assignment (before handling that poll's records), {\"type\":\"assigned\"|\"revoked\",\"partitions\"}\n"
        + "  on every rebalance callback, and after every poll that returned records commitSync(last offset\n"
        + "  + 1 per partition) followed by one {\"type\":\"committed\",\"partition\":p,\"offset\":o} per partition.\n"
        + "  A failed commit (rebalance) emits {\"type\":\"commit_failed\",\"error\"}, seeks the still-owned\n"
        + "  partitions back and does not count those records.\n"
        + "  --records N                once N records were consumed and committed (exactly: the rest of\n"
        + "                             the last poll is not processed), emit {\"type\":\"done\",\"consumed\":N,\n"
        + "                             \"committed\":{p:o}}, close the consumer (leaves the group), exit 0\n"
        + "  --stall-at OFFSET          the first record of partition P at or after OFFSET fails processing\n"
        + "                             every time: commitSync(P -> OFFSET), seek P to OFFSET, pause P for\n"
        + "                             ~500 ms, re-read it, fail again, ... (one commit of OFFSET every\n"
        + "                             0.5-1 s (+ fetch.max.wait.ms), the member stays in the group); the\n"
        + "                             first time it emits\n"
        + "                             {\"type\":\"stalled\",\"partition\":P,\"offset\":OFFSET} (after the commit).\n"
        + "                             Other partitions are consumed and committed normally.\n"
        + "  --stall-partition P        partition of --stall-at (default 0)\n"
        + "  --forward-to T2            every processed record (not the failing one) is also produced to T2\n"
        + "                             (which must exist or be auto-created) with the same key, value and\n"
        + "                             all headers (acks=all, default partitioner), flushed and acknowledged\n"
        + "                             before that poll's commit\n"
        + "  --client-id ID             client.id of the consumer (default group-consume; the forwarding\n"
        + "                             producer gets ID-forwarder)\n"
        + "  Without --records it consumes until SIGTERM/SIGINT or --timeout-ms, whose default here is\n"
        + "  300000 when --records is absent (60000 with --records). At the timeout (without --records)\n"
        + "  or on SIGTERM it closes the consumer (leaving the group; up to 5 s) and prints the summary;\n"
        + "  exit 0 at the timeout, the signal's exit status (143) on SIGTERM.\n"
        + "  Summary: consumed, forwarded, commits, stall_commits, stalled, committed {p:o}, ended\n"
        + "  (records|timeout|signal). ok: false only when --records N was not reached within --timeout-ms.\n";

    static final Set<String> VALUE_OPTIONS = setOf("bootstrap", "topic", "group", "group-protocol", "isolation",
        "records", "stall-at", "stall-partition", "client-id", "forward-to");

    /** Default --timeout-ms when --records is absent (the driver then runs until killed or this). */
    static final long RUN_FOREVER_TIMEOUT_MS = 300_000;
    /** Interval between re-reads (and re-commits) of the failing record. */
    static final long STALL_RETRY_MS = 500;
    /** Budget for closing the clients after the deadline or on SIGTERM (within the watchdog grace). */
    static final long CLOSE_MS = 5_000;

    public static void main(String[] argv) {
        Common.main("GroupConsume", USAGE, withDefaultTimeout(argv), VALUE_OPTIONS, setOf(), GroupConsume::run);
    }

    /** Add "--timeout-ms 300000" when neither --timeout-ms nor --records is given. */
    private static String[] withDefaultTimeout(String[] argv) {
        for (String a : argv) {
            if (a.equals("--timeout-ms") || a.startsWith("--timeout-ms=")
                    || a.equals("--records") || a.startsWith("--records=")) return argv;
        }
        String[] out = Arrays.copyOf(argv, argv.length + 2);
        out[argv.length] = "--timeout-ms";
        out[argv.length + 1] = Long.toString(RUN_FOREVER_TIMEOUT_MS);
        return out;
    }

    /** Set by the shutdown hook (SIGTERM/SIGINT). */
    private static volatile boolean stopRequested = false;
    private static volatile KafkaConsumer<byte[], byte[]> liveConsumer;
    /** Counted down when run() has printed its summary, so the shutdown hook can return. */
    private static final CountDownLatch FINISHED = new CountDownLatch(1);

    static int run(Args args, Deadline d) throws Exception {
        try {
            return consume(args, d);
        } finally {
            FINISHED.countDown();
        }
    }

    private static int consume(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        String group = args.required("group");
        String protocol = args.str("group-protocol", "classic");
        if (!protocol.equals("classic") && !protocol.equals("consumer"))
            throw new UsageException("--group-protocol must be classic or consumer, got " + protocol);
        String isolation = args.str("isolation", "read_uncommitted");
        if (!isolation.equals("read_committed") && !isolation.equals("read_uncommitted"))
            throw new UsageException("--isolation must be read_committed or read_uncommitted, got " + isolation);
        long records = args.longOpt("records", -1);
        if (args.str("records", null) != null && records < 1) throw new UsageException("--records must be >= 1");
        long stallAt = args.longOpt("stall-at", -1);
        if (args.str("stall-at", null) != null && stallAt < 0) throw new UsageException("--stall-at must be >= 0");
        if (args.str("stall-partition", null) != null && stallAt < 0)
            throw new UsageException("--stall-partition needs --stall-at");
        int stallPartition = args.intOpt("stall-partition", 0);
        if (stallPartition < 0) throw new UsageException("--stall-partition must be >= 0");
        String clientId = args.str("client-id", "group-consume");
        String forwardTo = args.str("forward-to", null);
        TopicPartition stallTp = stallAt >= 0 ? new TopicPartition(topic, stallPartition) : null;

        Json summary = CONTEXT.put("driver", "GroupConsume").put("bootstrap", bootstrap).put("topic", topic)
            .put("group", group).put("group_protocol", protocol).put("isolation", isolation)
            .put("client_id", clientId).put("records", records < 0 ? null : records)
            .put("stall_at", stallAt < 0 ? null : stallAt).put("stall_partition", stallAt < 0 ? null : stallPartition)
            .put("forward_to", forwardTo);

        Properties cp = consumerProps(args, bootstrap, d);
        cp.setProperty(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.setProperty(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        cp.setProperty(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        cp.setProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        args.applyProps("consumer", cp);

        KafkaProducer<byte[], byte[]> producer = null;
        if (forwardTo != null) {
            Properties pp = producerProps(args, bootstrap, d);
            pp.setProperty("client.id", clientId + "-forwarder");
            args.applyProps("producer", pp);
            producer = new KafkaProducer<>(pp);
        }

        Thread hook = new Thread(() -> {
            stopRequested = true;
            log("GroupConsume: termination signal; closing the consumer");
            KafkaConsumer<byte[], byte[]> c = liveConsumer;
            if (c != null) {
                try {
                    c.wakeup();
                } catch (Exception ignored) {
                    // closed meanwhile
                }
            }
            try {
                FINISHED.await(CLOSE_MS + 5_000, TimeUnit.MILLISECONDS);
            } catch (InterruptedException ignored) {
                // exit anyway
            }
        }, "group-consume-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);

        long consumed = 0, forwarded = 0, commits = 0, stallCommits = 0, commitFailures = 0;
        boolean ready = false, stalled = false;
        long stallResumeAt = 0;
        String ended;
        Map<Integer, Long> committedOut = new TreeMap<>();
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        liveConsumer = consumer;
        boolean consumerClosed = false;
        try {
            context("phase", "subscribe");
            consumer.subscribe(Collections.singleton(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    log("revoked %s", parts);
                    emit(Json.of("revoked").put("partitions", partitionsOf(parts)));
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    log("assigned %s (now %s)", parts, consumer.assignment());
                    emit(Json.of("assigned").put("partitions", partitionsOf(parts)));
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> parts) {
                    log("lost %s", parts);
                    emit(Json.of("revoked").put("partitions", partitionsOf(parts)).put("lost", true));
                }
            });

            context("phase", "consume");
            while (true) {
                if (stopRequested) {
                    ended = "signal";
                    break;
                }
                if (d.expired()) {
                    ended = "timeout";
                    break;
                }
                ConsumerRecords<byte[], byte[]> recs;
                try {
                    if (stallTp != null && stallResumeAt != 0 && System.nanoTime() - stallResumeAt >= 0) {
                        stallResumeAt = 0;
                        if (consumer.assignment().contains(stallTp)) consumer.resume(Collections.singleton(stallTp));
                    }
                    recs = consumer.poll(Duration.ofMillis(Math.min(100, d.remainingMsAtLeast1())));
                } catch (WakeupException e) {
                    continue;
                }
                if (!ready && !consumer.assignment().isEmpty()) {
                    ready = true;
                    emit(Json.of("ready").put("partitions", partitionsOf(consumer.assignment())));
                }
                if (recs.isEmpty()) continue;

                // Process in order; stop at the failing record of the stall partition and, with
                // --records, after the N-th record.
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                Map<TopicPartition, Long> firstInBatch = new HashMap<>();
                List<ProducerRecord<byte[], byte[]>> toForward = new ArrayList<>();
                boolean failedNow = false;
                long processed = 0;
                boolean quota = false;
                for (TopicPartition tp : recs.partitions()) {
                    for (ConsumerRecord<byte[], byte[]> r : recs.records(tp)) {
                        if (records >= 0 && consumed + processed >= records) {
                            quota = true;
                            break;
                        }
                        if (tp.equals(stallTp) && r.offset() >= stallAt) {
                            failedNow = true;
                            offsets.put(tp, new OffsetAndMetadata(stallAt));
                            break;
                        }
                        firstInBatch.putIfAbsent(tp, r.offset());
                        offsets.put(tp, new OffsetAndMetadata(r.offset() + 1));
                        processed++;
                        if (forwardTo != null)
                            toForward.add(new ProducerRecord<>(forwardTo, null, r.key(), r.value(), r.headers()));
                    }
                    if (quota) break;
                }
                if (offsets.isEmpty()) continue;

                if (!toForward.isEmpty()) {
                    List<Future<RecordMetadata>> futures = new ArrayList<>(toForward.size());
                    for (ProducerRecord<byte[], byte[]> pr : toForward) futures.add(send(producer, pr, d));
                    boundedFlush(producer, d, "group-consume-flush");
                    for (Future<RecordMetadata> f : futures) f.get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                }

                try {
                    consumer.commitSync(offsets, d.capped(30_000));
                } catch (CommitFailedException | RebalanceInProgressException | RetriableException e) {
                    // Not committed: read those records again (if still ours), do not count them.
                    commitFailures++;
                    log("commitSync failed: %s", e);
                    emit(Json.of("commit_failed").put("error", e.getClass().getName() + ": " + e.getMessage()));
                    Set<TopicPartition> owned = consumer.assignment();
                    for (Map.Entry<TopicPartition, Long> e2 : firstInBatch.entrySet())
                        if (owned.contains(e2.getKey())) consumer.seek(e2.getKey(), e2.getValue());
                    if (failedNow && owned.contains(stallTp)) consumer.seek(stallTp, stallAt);
                    continue;
                } catch (WakeupException e) {
                    ended = "signal";
                    break;
                }
                commits++;
                consumed += processed;
                forwarded += toForward.size();
                List<TopicPartition> sorted = new ArrayList<>(offsets.keySet());
                sorted.sort((a, b) -> Integer.compare(a.partition(), b.partition()));
                for (TopicPartition tp : sorted) {
                    long o = offsets.get(tp).offset();
                    committedOut.put(tp.partition(), o);
                    emit(Json.of("committed").put("partition", tp.partition()).put("offset", o));
                }
                context("consumed", consumed);
                if (failedNow) {
                    stallCommits++;
                    consumer.seek(stallTp, stallAt);
                    consumer.pause(Collections.singleton(stallTp));
                    stallResumeAt = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STALL_RETRY_MS);
                    if (!stalled) {
                        stalled = true;
                        log("stalled at %s@%d", stallTp, stallAt);
                        emit(Json.of("stalled").put("partition", stallPartition).put("offset", stallAt));
                    }
                }
                if (records >= 0 && consumed >= records) {
                    ended = "records";
                    emit(Json.of("done").put("consumed", consumed).put("committed", committedOut));
                    break;
                }
            }

            context("phase", "close");
            // Fixed budget: at the deadline the remaining time is 0, the watchdog grace covers this.
            closeQuietly("consumer", () -> consumer.close(CloseOptions.timeout(Duration.ofMillis(CLOSE_MS))));
            consumerClosed = true;
            log("consumer closed (%s)", ended);
        } finally {
            liveConsumer = null;
            if (!consumerClosed) closeQuietly("consumer", () -> consumer.close(CloseOptions.timeout(Duration.ofMillis(CLOSE_MS))));
            KafkaProducer<byte[], byte[]> p = producer;
            if (p != null) closeQuietly("producer", () -> p.close(Duration.ofMillis(CLOSE_MS)));
            if (!stopRequested) {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException ignored) {
                    // shutdown already in progress
                }
            }
        }

        CONTEXT.remove("phase");
        boolean ok = !(records >= 0 && consumed < records);
        summary.put("consumed", consumed).put("forwarded", forwarded).put("commits", commits)
            .put("stall_commits", stallCommits).put("commit_failures", commitFailures).put("stalled", stalled)
            .put("committed", committedOut).put("ended", ended).put("elapsed_ms", d.elapsedMs());
        if (!ok) summary.put("error", "consumed " + consumed + " of " + records + " record(s) before " + ended);
        return summary(summary, ok);
    }

    private static Set<Integer> partitionsOf(Collection<TopicPartition> tps) {
        Set<Integer> s = new TreeSet<>();
        for (TopicPartition tp : tps) s.add(tp.partition());
        return s;
    }
}
