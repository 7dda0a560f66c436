package strait.conformance;

import static strait.conformance.Common.*;

import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Consumer-group scenario: two members join, both get partitions, each consumes and commits
 * part of the data, member 2 leaves, member 1 is rebalanced onto all partitions, resumes
 * from the committed offsets, consumes to the end; committed offsets must equal the end
 * offsets and every record must have been seen.
 */
public final class GroupRebalance {
    static final String USAGE =
        "usage: GroupRebalance --bootstrap HOST:PORT --topic T --records N [options]\n"
        + "  Creates T (4 partitions, rf = min(#nodes, 3)), produces N records (key = index, acks=all),\n"
        + "  runs two consumers in one group: both assigned -> each consumes/commits part -> member 2\n"
        + "  closes -> member 1 owns all 4 partitions -> consumes to the end and commits. Checks committed\n"
        + "  offsets == end offsets (listConsumerGroupOffsets), every index seen, member 1 resumed\n"
        + "  exactly at the committed offsets.\n"
        + "  --group-protocol P         classic (default) or consumer (KIP-848)\n"
        + "  --group G                  group id (default strait-rebalance-<random>)\n"
        + "  --part-records K           records each member consumes before member 2 leaves\n"
        + "                             (default max(1, N/10); less if its partitions hold fewer)\n"
        + "  --partitions P             partitions of T (default 4)\n";

    public static void main(String[] argv) {
        Common.main("GroupRebalance", USAGE, argv,
            setOf("bootstrap", "topic", "records", "group-protocol", "group", "part-records", "partitions"), setOf(),
            GroupRebalance::run);
    }

    /** Stages driven by the main thread; members only read it. */
    enum Stage { JOIN, PART, CLOSE_MEMBER2, FINISH, STOP }

    private static volatile Stage stage = Stage.JOIN;

    private static String topic;
    private static int records;
    private static int partitions;
    private static long partQuota;
    private static Deadline deadline;
    /** End offsets after production (fixed: nothing else writes to T). */
    private static final Map<TopicPartition, Long> END = new HashMap<>();
    /** Last offset committed per partition, by either member. */
    private static final Map<TopicPartition, Long> LAST_COMMITTED = new ConcurrentHashMap<>();
    private static final BitSet SEEN = new BitSet();
    private static final AtomicLong CONSUMED = new AtomicLong();
    private static final AtomicLong BAD_VALUES = new AtomicLong();

    static final class Member implements Runnable {
        final int id;
        final Properties props;
        final Thread thread;
        volatile Set<Integer> assignment = Collections.emptySet();
        volatile boolean partDone = false;
        volatile boolean finished = false;
        volatile boolean closeRequested = false;
        volatile boolean closed = false;
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final AtomicLong consumedPart = new AtomicLong();
        final AtomicLong consumed = new AtomicLong();
        final AtomicLong rebalances = new AtomicLong();
        /** First offset this member consumed per partition during FINISH. */
        final Map<TopicPartition, Long> firstInFinish = new ConcurrentHashMap<>();
        KafkaConsumer<byte[], byte[]> consumer;

        Member(int id, Properties props) {
            this.id = id;
            this.props = props;
            this.thread = new Thread(this, "member-" + id);
            this.thread.setDaemon(true);
        }

        private boolean consuming() {
            Stage s = stage;
            if (s == Stage.PART) return !partDone;
            return s == Stage.FINISH && !finished;
        }

        @Override
        public void run() {
            try {
                consumer = new KafkaConsumer<>(props);
                consumer.subscribe(Collections.singleton(topic), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                        log("member %d: revoked %s", id, parts);
                    }

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        rebalances.incrementAndGet();
                        log("member %d: assigned %s (now %s)", id, parts, consumer.assignment());
                        // Nothing may be fetched while this member is not meant to consume.
                        if (!consuming()) consumer.pause(parts);
                        assignment = partitionsOf(consumer.assignment());
                    }
                });
                while (!deadline.expired()) {
                    if (closeRequested) {
                        consumer.commitSync(deadline.capped(30_000));
                        closeConsumer(consumer, deadline, 30_000);
                        consumer = null;
                        closed = true;
                        log("member %d: closed", id);
                        return;
                    }
                    if (stage == Stage.STOP) return;
                    boolean wasConsuming = consuming();
                    if (wasConsuming) consumer.resume(consumer.paused());
                    ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(100));
                    assignment = partitionsOf(consumer.assignment());
                    if (!recs.isEmpty()) {
                        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                        for (ConsumerRecord<byte[], byte[]> r : recs) {
                            TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                            if (stage == Stage.FINISH) firstInFinish.putIfAbsent(tp, r.offset());
                            record(r);
                            offsets.put(tp, new OffsetAndMetadata(r.offset() + 1));
                        }
                        consumed.addAndGet(recs.count());
                        if (stage == Stage.PART) consumedPart.addAndGet(recs.count());
                        consumer.commitSync(offsets, deadline.capped(30_000));
                        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet())
                            LAST_COMMITTED.put(e.getKey(), e.getValue().offset());
                    }
                    Stage s = stage;
                    if (s == Stage.PART && !partDone && !assignment.isEmpty()
                            && (consumedPart.get() >= partQuota || caughtUp())) {
                        partDone = true;
                        log("member %d: consumed its part (%d records)", id, consumedPart.get());
                    } else if (s == Stage.FINISH && !finished && caughtUp()) {
                        finished = true;
                        log("member %d: caught up with the end offsets", id);
                    }
                    if (!consuming()) consumer.pause(consumer.assignment());
                }
                throw new TimeoutExceeded("member " + id + " still running at the deadline (stage " + stage + ")");
            } catch (Throwable t) {
                error.compareAndSet(null, t);
                log("member %d failed: %s", id, stackTrace(t));
            } finally {
                if (consumer != null) closeConsumer(consumer, deadline, 5000);
            }
        }

        /** Every assigned partition's position is at (or past) its end offset. */
        private boolean caughtUp() {
            Set<TopicPartition> a = consumer.assignment();
            if (a.isEmpty()) return false;
            for (TopicPartition tp : a) {
                long end = END.getOrDefault(tp, 0L);
                if (consumer.position(tp, deadline.capped(30_000)) < end) return false;
            }
            return true;
        }
    }

    private static void record(ConsumerRecord<byte[], byte[]> r) {
        CONSUMED.incrementAndGet();
        String key = str(r.key());
        int idx;
        try {
            idx = Integer.parseInt(key);
        } catch (NumberFormatException | NullPointerException e) {
            BAD_VALUES.incrementAndGet();
            log("unexpected key %s at %s-%d@%d", key, r.topic(), r.partition(), r.offset());
            return;
        }
        if (idx < 0 || idx >= records || !("value-" + idx).equals(str(r.value()))) {
            BAD_VALUES.incrementAndGet();
            log("unexpected record key=%s value=%s at %s-%d@%d", key, str(r.value()), r.topic(), r.partition(), r.offset());
            return;
        }
        synchronized (SEEN) {
            SEEN.set(idx);
        }
    }

    private static Set<Integer> partitionsOf(Set<TopicPartition> tps) {
        Set<Integer> s = new TreeSet<>();
        for (TopicPartition tp : tps) s.add(tp.partition());
        return Collections.unmodifiableSet(s);
    }

    static int run(Args args, Deadline d) throws Exception {
        deadline = d;
        String bootstrap = args.required("bootstrap");
        topic = args.required("topic");
        records = args.intOpt("records", -1);
        if (records < 1) throw new UsageException("--records must be >= 1");
        partitions = args.intOpt("partitions", 4);
        if (partitions < 2) throw new UsageException("--partitions must be >= 2");
        String protocol = args.str("group-protocol", "classic");
        if (!protocol.equals("classic") && !protocol.equals("consumer"))
            throw new UsageException("--group-protocol must be classic or consumer");
        String group = args.str("group", "strait-rebalance-" + randomSuffix());
        partQuota = args.longOpt("part-records", Math.max(1, records / 10));
        Json summary = CONTEXT.put("driver", "GroupRebalance").put("topic", topic).put("group", group)
            .put("group_protocol", protocol).put("records", records);

        Admin admin = Admin.create(adminProps(args, bootstrap, d));
        Member m1 = null, m2 = null;
        try {
            context("phase", "create topic");
            createTopicAndWait(admin, topic, partitions, defaultReplicationFactor(admin, d), null, d);

            // Produce N records, key = index, acks=all.
            Properties pp = producerProps(args, bootstrap, d);
            args.applyProps("producer", pp);
            context("phase", "produce");
            KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
            int[] perPartition = new int[partitions];
            try {
                List<Future<RecordMetadata>> futures = new ArrayList<>(records);
                for (int i = 0; i < records; i++)
                    futures.add(send(producer, new ProducerRecord<>(topic, utf8(Integer.toString(i)), utf8("value-" + i)), d));
                producer.flush();
                for (Future<RecordMetadata> f : futures) {
                    RecordMetadata md = f.get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                    perPartition[md.partition()]++;
                }
            } finally {
                closeQuietly("producer", () -> producer.close(d.capped(10_000)));
            }
            emit(Json.of("produced").put("records", records).put("per_partition", perPartition));

            context("phase", "end offsets");
            Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
            for (int p = 0; p < partitions; p++) specs.put(new TopicPartition(topic, p), OffsetSpec.latest());
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends =
                admin.listOffsets(specs).all().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            for (Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e : ends.entrySet())
                END.put(e.getKey(), e.getValue().offset());
            emit(Json.of("end_offsets").put("offsets", byPartition(END)));

            // Two members in one group.
            context("phase", "join");
            m1 = new Member(1, memberProps(args, bootstrap, group, protocol, 1, d));
            m2 = new Member(2, memberProps(args, bootstrap, group, protocol, 2, d));
            m1.thread.start();
            m2.thread.start();
            final Member a = m1, b = m2;
            await(d, "both members to have a non-empty assignment", a, b,
                () -> !a.assignment.isEmpty() && !b.assignment.isEmpty()
                    && a.assignment.size() + b.assignment.size() == partitions
                    && Collections.disjoint(a.assignment, b.assignment));
            emit(Json.of("assignment").put("when", "before").put("member", 1).put("partitions", a.assignment));
            emit(Json.of("assignment").put("when", "before").put("member", 2).put("partitions", b.assignment));

            context("phase", "consume part");
            stage = Stage.PART;
            await(d, "both members to consume their part", a, b, () -> a.partDone && b.partDone);
            emit(Json.of("part").put("member", 1).put("consumed", a.consumedPart.get()));
            emit(Json.of("part").put("member", 2).put("consumed", b.consumedPart.get()));

            context("phase", "member 2 leaves");
            stage = Stage.CLOSE_MEMBER2;
            b.closeRequested = true;
            await(d, "member 2 to close", a, null, () -> b.closed || b.error.get() != null);
            if (b.error.get() != null) throw new IllegalStateException("member 2 failed", b.error.get());
            Set<Integer> all = new TreeSet<>();
            for (int p = 0; p < partitions; p++) all.add(p);
            await(d, "member 1 to be rebalanced onto all partitions", a, null, () -> a.assignment.equals(all));
            emit(Json.of("assignment").put("when", "after").put("member", 1).put("partitions", a.assignment));

            Map<TopicPartition, Long> resumeExpected = new TreeMap<>(
                (x, y) -> Integer.compare(x.partition(), y.partition()));
            for (TopicPartition tp : END.keySet()) resumeExpected.put(tp, LAST_COMMITTED.getOrDefault(tp, 0L));
            context("phase", "member 1 consumes to the end");
            stage = Stage.FINISH;
            await(d, "member 1 to consume to the end", a, null, () -> a.finished);
            stage = Stage.STOP;
            a.thread.join(d.remainingMsAtLeast1());
            if (a.thread.isAlive()) throw new TimeoutExceeded("member 1 did not stop");
            if (a.error.get() != null) throw new IllegalStateException("member 1 failed", a.error.get());

            // Resume check: where member 1 started on each partition that still had data.
            int resumeMismatches = 0;
            for (Map.Entry<TopicPartition, Long> e : resumeExpected.entrySet()) {
                Long first = a.firstInFinish.get(e.getKey());
                boolean hadData = e.getValue() < END.get(e.getKey());
                boolean ok = !hadData || (first != null && first.longValue() == e.getValue().longValue());
                if (!ok) resumeMismatches++;
                emit(Json.of("resume").put("partition", e.getKey().partition()).put("committed", e.getValue())
                    .put("first_consumed", first).put("end", END.get(e.getKey())).put("ok", ok));
            }

            // Committed offsets (Admin) must equal the end offsets.
            context("phase", "verify");
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group,
                    new ListConsumerGroupOffsetsOptions().timeoutMs((int) Math.min(Integer.MAX_VALUE, d.remainingMsAtLeast1())))
                .partitionsToOffsetAndMetadata().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            int offsetMismatches = 0;
            Map<Integer, Object> committedOut = new TreeMap<>();
            for (Map.Entry<TopicPartition, Long> e : END.entrySet()) {
                OffsetAndMetadata om = committed.get(e.getKey());
                Long c = om == null ? null : om.offset();
                committedOut.put(e.getKey().partition(), c);
                // A partition that never had data has nothing to commit.
                boolean ok = (c == null && e.getValue() == 0L) || (c != null && c.longValue() == e.getValue().longValue());
                if (!ok) offsetMismatches++;
            }
            emit(Json.of("committed_offsets").put("offsets", committedOut).put("end_offsets", byPartition(END))
                .put("mismatches", offsetMismatches));

            ConsumerGroupDescription g = admin.describeConsumerGroups(Collections.singleton(group))
                .describedGroups().get(group).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            emit(Json.of("group").put("group", group).put("state", String.valueOf(g.groupState()))
                .put("type_reported", String.valueOf(g.type())).put("members", g.members().size()));

            int distinct;
            synchronized (SEEN) {
                distinct = SEEN.cardinality();
            }
            long consumed = CONSUMED.get();
            int missing = records - distinct;
            boolean ok = missing == 0 && offsetMismatches == 0 && resumeMismatches == 0 && BAD_VALUES.get() == 0;
            summary.put("produced", records).put("consumed", consumed).put("distinct", distinct)
                .put("missing", missing).put("duplicates", consumed - distinct).put("bad_records", BAD_VALUES.get())
                .put("member1_consumed", a.consumed.get()).put("member2_consumed", b.consumed.get())
                .put("member1_part", a.consumedPart.get()).put("member2_part", b.consumedPart.get())
                .put("offset_mismatches", offsetMismatches).put("resume_mismatches", resumeMismatches)
                .put("elapsed_ms", d.elapsedMs());
            if (!ok) {
                List<String> why = new ArrayList<>();
                if (missing != 0) why.add(missing + " record index(es) never consumed");
                if (offsetMismatches != 0) why.add("committed offsets differ from end offsets");
                if (resumeMismatches != 0) why.add("member 1 did not resume at the committed offsets");
                if (BAD_VALUES.get() != 0) why.add("unexpected keys/values");
                summary.put("error", String.join("; ", why));
            }
            CONTEXT.remove("phase");
        return summary(summary, ok);
        } finally {
            stage = Stage.STOP;
            for (Member m : new Member[] {m1, m2}) {
                if (m != null && m.thread.isAlive()) m.thread.join(Math.min(10_000, Math.max(1, d.remainingMs() + 5_000)));
            }
            closeQuietly("admin", () -> admin.close(d.capped(5000)));
        }
    }

    private static Properties memberProps(Args args, String bootstrap, String group, String protocol, int id, Deadline d) {
        Properties p = consumerProps(args, bootstrap, d);
        p.setProperty("group.id", group);
        p.setProperty("client.id", "strait-conformance-GroupRebalance-member-" + id);
        p.setProperty("group.protocol", protocol);
        // Small batches so "part of the data" really is a part.
        p.setProperty("max.poll.records", Long.toString(Math.max(1, Math.min(50, partQuota))));
        args.applyProps("consumer", p);
        return p;
    }

    /** Bounded wait that fails fast when a member thread died. */
    private static void await(Deadline d, String what, Member a, Member b, BooleanSupplier cond) throws Exception {
        waitUntil(d, "waiting for " + what, 20, () -> {
            for (Member m : new Member[] {a, b}) {
                if (m != null && m.error.get() != null)
                    throw new IllegalStateException("member " + m.id + " failed while waiting for " + what, m.error.get());
            }
            return cond.getAsBoolean();
        });
        log("done waiting for %s (%d ms elapsed)", what, d.elapsedMs());
    }

    private static Map<Integer, Long> byPartition(Map<TopicPartition, Long> m) {
        Map<Integer, Long> out = new TreeMap<>();
        for (Map.Entry<TopicPartition, Long> e : m.entrySet()) out.put(e.getKey().partition(), e.getValue());
        return out;
    }
}
