package strait.conformance;

import static strait.conformance.Common.*;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;

/**
 * Transactional producer: N committed records in transactions of K, optionally with extra
 * aborted transactions in between, e.g. to give consumer-lag tooling a topic whose end
 * offsets include transaction markers and aborted data.
 */
public final class TxnProduce {
    static final String USAGE =
        "usage: TxnProduce --bootstrap HOST:PORT --topic T --records N [--txn-size K] [--abort-every M]\n"
        + "                  [--partitions P] [--header k=v] [options]\n"
        + "  Creates T when it does not exist (P partitions, default 1, rf = min(#nodes, 3); an existing T\n"
        + "  is used as it is), then with a random transactional.id (acks=all) produces N committed records\n"
        + "  (key = index in decimal, value = \"value-<index>\", default partitioner) in transactions of K\n"
        + "  records (default 10; the last one may be smaller).\n"
        + "  --abort-every M            (M >= 2) every M-th transaction (counting all of them: M, 2M, ...)\n"
        + "                             is an extra aborted transaction of K records (key = running aborted\n"
        + "                             index, value \"aborted-<i>\"), not counted in N; the run ends with\n"
        + "                             the last committed transaction\n"
        + "  --header k=v               header on every record (repeatable; \"k\" alone = null value)\n"
        + "  Output: {\"type\":\"produced\",\"committed\":N,\"aborted_transactions\":A,\"end_offsets\":{p:o}} (end offsets\n"
        + "  from Admin listOffsets latest, READ_UNCOMMITTED, i.e. including markers), then the summary\n"
        + "  (transactional_id, transactions, aborted_records, per_partition committed counts).\n"
        + "  ok: every transaction committed/aborted as planned.\n";

    public static void main(String[] argv) {
        Common.main("TxnProduce", USAGE, argv,
            setOf("bootstrap", "topic", "records", "txn-size", "abort-every", "partitions", "header"), setOf(),
            TxnProduce::run);
    }

    static int run(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        int n = args.intOpt("records", -1);
        if (n < 1) throw new UsageException("--records must be >= 1");
        int k = args.intOpt("txn-size", 10);
        if (k < 1) throw new UsageException("--txn-size must be >= 1");
        int abortEvery = args.intOpt("abort-every", 0);
        if (args.str("abort-every", null) != null && abortEvery < 2) throw new UsageException("--abort-every must be >= 2");
        int partitions = args.intOpt("partitions", 1);
        if (partitions < 1) throw new UsageException("--partitions must be >= 1");
        List<Header> headers = PolicyProduce.headers(args);
        String txnId = "strait-conformance-TxnProduce-" + randomSuffix();
        Json summary = CONTEXT.put("driver", "TxnProduce").put("bootstrap", bootstrap).put("topic", topic)
            .put("records", n).put("txn_size", k).put("abort_every", abortEvery == 0 ? null : abortEvery)
            .put("headers", PolicyProduce.headersJson(headers)).put("transactional_id", txnId);

        Admin admin = Admin.create(adminProps(args, bootstrap, d));
        try {
            context("phase", "topic");
            int topicPartitions;
            TopicDescription existing = describe(admin, topic, d);
            if (existing != null) {
                topicPartitions = existing.partitions().size();
                log("topic %s exists (%d partitions); using it", topic, topicPartitions);
            } else {
                topicPartitions = createTopicAndWait(admin, topic, partitions, defaultReplicationFactor(admin, d), null, d)
                    .partitions().size();
            }
            summary.put("partitions", topicPartitions);

            Properties pp = producerProps(args, bootstrap, d);
            pp.setProperty(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
            pp.setProperty(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
            args.applyProps("producer", pp);
            KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
            int committed = 0, aborted = 0, abortedTxns = 0, txns = 0;
            Map<Integer, Long> perPartition = new TreeMap<>();
            try {
                context("phase", "initTransactions");
                producer.initTransactions();
                while (committed < n) {
                    d.check("producing transactions");
                    txns++;
                    boolean abort = abortEvery > 0 && txns % abortEvery == 0;
                    context("phase", (abort ? "aborted" : "committed") + " transaction " + txns);
                    producer.beginTransaction();
                    List<Future<RecordMetadata>> futures = new ArrayList<>();
                    int size = abort ? k : Math.min(k, n - committed);
                    for (int j = 0; j < size; j++) {
                        int i = (abort ? aborted : committed) + j;
                        byte[] value = utf8((abort ? "aborted-" : "value-") + i);
                        futures.add(send(producer,
                            new ProducerRecord<>(topic, null, utf8(Integer.toString(i)), value, headers), d));
                    }
                    if (abort) {
                        // Written to the log first (acknowledged), then aborted: the aborted data
                        // and the abort marker both occupy offsets.
                        boundedFlush(producer, d, "txn-produce-flush");
                        for (Future<RecordMetadata> f : futures) f.get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                        producer.abortTransaction();
                        aborted += size;
                        abortedTxns++;
                    } else {
                        producer.commitTransaction();
                        for (Future<RecordMetadata> f : futures)
                            perPartition.merge(f.get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS).partition(), 1L, Long::sum);
                        committed += size;
                    }
                    context("committed", committed);
                }
            } finally {
                closeQuietly("producer", () -> producer.close(d.capped(10_000)));
            }
            log("%d transaction(s): %d committed record(s), %d aborted transaction(s)", txns, committed, abortedTxns);

            context("phase", "end offsets");
            Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
            for (int p = 0; p < topicPartitions; p++) specs.put(new TopicPartition(topic, p), OffsetSpec.latest());
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends = admin.listOffsets(specs,
                    new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)
                        .timeoutMs((int) Math.min(Integer.MAX_VALUE, d.remainingMsAtLeast1())))
                .all().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            Map<Integer, Long> endOffsets = new TreeMap<>();
            for (Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e : ends.entrySet())
                endOffsets.put(e.getKey().partition(), e.getValue().offset());
            emit(Json.of("produced").put("committed", committed).put("aborted_transactions", abortedTxns)
                .put("end_offsets", endOffsets));

            CONTEXT.remove("phase");
            summary.put("committed", committed).put("aborted_transactions", abortedTxns).put("aborted_records", aborted)
                .put("transactions", txns).put("per_partition", perPartition).put("end_offsets", endOffsets)
                .put("elapsed_ms", d.elapsedMs());
            return summary(summary, committed == n);
        } finally {
            closeQuietly("admin", () -> admin.close(d.capped(5000)));
        }
    }

    /** The topic's description, or null when it does not exist. */
    private static TopicDescription describe(Admin admin, String topic, Deadline d) throws Exception {
        try {
            return admin.describeTopics(Collections.singleton(topic),
                    new DescribeTopicsOptions().timeoutMs((int) Math.min(Integer.MAX_VALUE, d.remainingMsAtLeast1())))
                .topicNameValues().get(topic).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof UnknownTopicOrPartitionException) return null;
            throw e;
        }
    }
}
