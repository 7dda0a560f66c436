package strait.conformance;

import static strait.conformance.Common.*;
import static strait.conformance.PolicyCommon.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;

/**
 * Produces N records and reports exactly what the Java producer surfaced for each of them
 * (exception class, message, cause chain), for testing produce-side policy rejections
 * (POLICY_VIOLATION / INVALID_RECORD with the Produce v8+ error_message and record_errors).
 */
public final class PolicyProduce {
    static final String USAGE =
        "usage: PolicyProduce --bootstrap HOST:PORT --topic T --records N [--header k=v ...] [--value-bytes S]\n"
        + "                     [--transactional-id ID] [--expect-failure] [options]\n"
        + "  Produces N records to T (which must exist): key = the index in decimal (\"0\", \"1\", ...), value =\n"
        + "  S bytes (default 100) repeating the ASCII text \"value-<index>;\", every record carrying the\n"
        + "  --header k=v headers in the given order (repeatable, duplicates kept; \"--header k\" without\n"
        + "  \"=\" gives a null value). acks=all, linger.ms=5. Waits for every send's result.\n"
        + "  With --transactional-id: initTransactions, beginTransaction, send all, then commitTransaction\n"
        + "  when every record was acknowledged, otherwise (or when the commit fails) abortTransaction.\n"
        + "  Timeouts: delivery.timeout.ms = max.block.ms = the time left minus min(10 s, max(2 s, 1/5 of\n"
        + "  it)) (at most half of it) and request.timeout.ms = min(30 s, half of that), so a retriable\n"
        + "  error ends in the client's own timeout error before --timeout-ms (a result still missing at\n"
        + "  the deadline counts as pending, not failed); --producer-prop overrides them (delivery.timeout.ms\n"
        + "  is raised to linger.ms + request.timeout.ms when only those are overridden).\n"
        + "  Output: per failure {\"type\":\"error\",\"index\":i,\"exception\":class,\"message\":msg,\"cause\":[{\"exception\",\n"
        + "  \"message\"},...]|null,\"count\":k,\"last_index\":j} (k identical consecutive errors share one line);\n"
        + "  summary acked, failed, unsent, pending, first_index, first_exception, first_message (messages\n"
        + "  of the exception and its causes joined by \" | \"), acked_offsets {partition:[min,max]}; with\n"
        + "  --transactional-id also committed, aborted, commit_exception/message, abort_exception/message.\n"
        + "  ok: every record acknowledged (and the transaction committed); with --expect-failure: no record\n"
        + "  acknowledged and at least one failed (and the transaction not committed).\n"
        + "  --partition P              send every record to partition P (default: partitioner, by key)\n"
        + "  --null-key                 records without a key (e.g. INVALID_RECORD on a compacted topic)\n";

    public static void main(String[] argv) {
        Common.main("PolicyProduce", USAGE, argv,
            setOf("bootstrap", "topic", "records", "header", "value-bytes", "transactional-id", "partition"),
            setOf("expect-failure", "null-key"),
            PolicyProduce::run);
    }

    static final int UNSENT = 0, ACKED = 1, FAILED = 2, PENDING = 3;

    /** S bytes repeating "value-<index>;". */
    static byte[] value(int index, int size) {
        byte[] pat = utf8("value-" + index + ";");
        byte[] v = new byte[size];
        for (int j = 0; j < size; j++) v[j] = pat[j % pat.length];
        return v;
    }

    static List<Header> headers(Args args) {
        List<Header> out = new ArrayList<>();
        for (String kv : args.all("header")) {
            int eq = kv.indexOf('=');
            String k = eq < 0 ? kv : kv.substring(0, eq);
            if (k.isEmpty()) throw new UsageException("--header expects k=v (or k for a null value), got " + kv);
            out.add(new RecordHeader(k, eq < 0 ? null : utf8(kv.substring(eq + 1))));
        }
        return out;
    }

    static List<List<String>> headersJson(List<Header> hs) {
        List<List<String>> out = new ArrayList<>();
        for (Header h : hs) {
            List<String> pair = new ArrayList<>();
            pair.add(h.key());
            pair.add(str(h.value()));
            out.add(pair);
        }
        return out;
    }

    /** Producer config with the deadline-derived timeouts, then --producer-prop overrides. */
    static Properties config(Args args, String bootstrap, String txnId, Deadline d) {
        Properties p = producerProps(args, bootstrap, d);
        long delivery = clientBudgetMs(d.remainingMs());
        long linger = 5;
        p.setProperty(ProducerConfig.LINGER_MS_CONFIG, Long.toString(linger));
        p.setProperty(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Long.toString(Math.min(Integer.MAX_VALUE, delivery)));
        p.setProperty(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(Math.max(1, Math.min(30_000, (delivery - linger) / 2))));
        p.setProperty(ProducerConfig.MAX_BLOCK_MS_CONFIG, Long.toString(delivery));
        if (txnId != null) p.setProperty(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        Map<String, String> user = args.keyValues("producer-prop");
        args.applyProps("producer", p);
        if (!user.containsKey(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG)) {
            try {
                long need = Long.parseLong(p.getProperty(ProducerConfig.LINGER_MS_CONFIG).trim())
                    + Long.parseLong(p.getProperty(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG).trim());
                if (Long.parseLong(p.getProperty(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG)) < need)
                    p.setProperty(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, Long.toString(Math.min(Integer.MAX_VALUE, need)));
            } catch (NumberFormatException e) {
                // leave it to the producer's own config validation
            }
        }
        return p;
    }

    /** A config value as a JSON number when it is one, else the text. */
    static Object number(String v) {
        if (v == null) return null;
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            return v;
        }
    }

    static int run(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        int n = args.intOpt("records", -1);
        if (n < 1) throw new UsageException("--records must be >= 1");
        int valueBytes = args.intOpt("value-bytes", 100);
        if (valueBytes < 0) throw new UsageException("--value-bytes must be >= 0");
        String txnId = args.str("transactional-id", null);
        Integer partition = args.str("partition", null) == null ? null : args.intOpt("partition", 0);
        boolean nullKey = args.flag("null-key");
        boolean expectFailure = args.flag("expect-failure");
        List<Header> headers = headers(args);

        Properties pp = config(args, bootstrap, txnId, d);
        Json summary = CONTEXT.put("driver", "PolicyProduce").put("bootstrap", bootstrap).put("topic", topic)
            .put("records", n).put("value_bytes", valueBytes).put("headers", headersJson(headers))
            .put("transactional_id", txnId).put("expect_failure", expectFailure)
            .put("acks", pp.getProperty(ProducerConfig.ACKS_CONFIG))
            .put("delivery_timeout_ms", number(pp.getProperty(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG)))
            .put("request_timeout_ms", number(pp.getProperty(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG)));

        int[] state = new int[n];
        Throwable[] error = new Throwable[n];
        List<Future<RecordMetadata>> futures = new ArrayList<>(java.util.Collections.nCopies(n, null));
        TreeMap<Integer, long[]> ackedOffsets = new TreeMap<>();
        Throwable commitError = null;
        Throwable abortError = null;
        boolean committed = false;
        boolean aborted = false;

        context("phase", "create producer");
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
        try {
            Throwable startError = null;
            if (txnId != null) {
                try {
                    context("phase", "initTransactions");
                    producer.initTransactions();
                    context("phase", "beginTransaction");
                    producer.beginTransaction();
                } catch (Exception e) {
                    startError = e;
                    log("transaction start failed: %s", e);
                }
            }
            if (startError != null) {
                // No record can be sent: each one fails with the error that stopped the transaction.
                for (int i = 0; i < n; i++) {
                    state[i] = FAILED;
                    error[i] = startError;
                }
            } else {
                context("phase", "produce");
                for (int i = 0; i < n; i++) {
                    if (d.expired()) break;
                    ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(topic, partition, null,
                        nullKey ? null : utf8(Integer.toString(i)), value(i, valueBytes), headers);
                    boolean stop = false;
                    try {
                        futures.set(i, producer.send(rec));
                        if (futures.get(i).isDone()) {
                            // Failed before it was queued (record too large, metadata timeout, ...).
                            futures.get(i).get();
                        }
                    } catch (ExecutionException e) {
                        state[i] = FAILED;
                        error[i] = surfaced(e);
                        futures.set(i, null);
                        // A metadata timeout would repeat for every further record: stop sending.
                        stop = error[i] instanceof org.apache.kafka.common.errors.TimeoutException;
                    } catch (org.apache.kafka.common.errors.InterruptException e) {
                        throw e;
                    } catch (RuntimeException e) {
                        // send() threw: e.g. the transaction is already in an error state.
                        state[i] = FAILED;
                        error[i] = e;
                        futures.set(i, null);
                        stop = e instanceof org.apache.kafka.common.errors.TimeoutException;
                    }
                    if (stop) break;
                }
                // flush() has no timeout (and can outlast delivery.timeout.ms, e.g. while a
                // partition has no reachable leader): run it on a daemon thread, wait for it at
                // most until the deadline, then collect the results with bounded future.get.
                context("phase", "flush");
                boundedFlush(producer, d, "strait-policy-flush");
                context("phase", "await results");
                for (int i = 0; i < n; i++) {
                    if (futures.get(i) == null) continue;
                    try {
                        RecordMetadata md = futures.get(i).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                        state[i] = ACKED;
                        long[] r = ackedOffsets.computeIfAbsent(md.partition(), k -> new long[] {Long.MAX_VALUE, Long.MIN_VALUE});
                        r[0] = Math.min(r[0], md.offset());
                        r[1] = Math.max(r[1], md.offset());
                    } catch (ExecutionException e) {
                        state[i] = FAILED;
                        error[i] = surfaced(e);
                    } catch (java.util.concurrent.TimeoutException e) {
                        state[i] = PENDING;
                    } catch (StackOverflowError e) {
                        // kafka-clients chains the futures of split batches; a batch split over and
                        // over (MESSAGE_TOO_LARGE while batch.size exceeds the topic's max.message.bytes)
                        // makes get() recurse through thousands of them. Report it as this record's result.
                        state[i] = FAILED;
                        error[i] = e;
                    }
                }
                if (txnId != null) {
                    boolean allAcked = true;
                    for (int s : state) allAcked &= s == ACKED;
                    if (allAcked) {
                        try {
                            context("phase", "commitTransaction");
                            producer.commitTransaction();
                            committed = true;
                        } catch (Exception e) {
                            commitError = e;
                            log("commitTransaction failed: %s", e);
                        }
                    }
                    if (!committed) {
                        try {
                            context("phase", "abortTransaction");
                            producer.abortTransaction();
                            aborted = true;
                        } catch (Exception e) {
                            abortError = e;
                            log("abortTransaction failed: %s", e);
                        }
                    }
                }
            }
        } finally {
            context("phase", "close");
            java.time.Duration closeTimeout = d.capped(10_000);
            boundedClose("producer", () -> producer.close(closeTimeout), closeTimeout.toMillis() + 2000);
        }
        CONTEXT.remove("phase");

        // Report: error lines in index order (identical consecutive errors collapsed).
        ErrorRuns runs = new ErrorRuns(null);
        int acked = 0, failed = 0, unsent = 0, pending = 0, firstIndex = -1;
        for (int i = 0; i < n; i++) {
            switch (state[i]) {
                case ACKED: acked++; runs.ok(i); break;
                case FAILED:
                    failed++;
                    if (firstIndex < 0) firstIndex = i;
                    runs.error(i, error[i]);
                    break;
                case PENDING: pending++; runs.ok(i); break;
                default: unsent++; runs.ok(i); break;
            }
        }
        runs.flush();
        Throwable first = firstIndex < 0 ? null : error[firstIndex];
        Map<String, List<Long>> offsets = new TreeMap<>();
        for (Map.Entry<Integer, long[]> e : ackedOffsets.entrySet())
            offsets.put(Integer.toString(e.getKey()), List.of(e.getValue()[0], e.getValue()[1]));
        summary.put("acked", acked).put("failed", failed).put("unsent", unsent).put("pending", pending)
            .put("error_lines", runs.lines)
            .put("first_index", firstIndex < 0 ? null : firstIndex)
            .put("first_exception", first == null ? null : first.getClass().getName())
            .put("first_message", first == null ? null : fullMessage(first))
            .put("acked_offsets", offsets);
        if (txnId != null) {
            summary.put("committed", committed).put("aborted", aborted)
                .put("commit_exception", commitError == null ? null : commitError.getClass().getName())
                .put("commit_message", commitError == null ? null : fullMessage(commitError))
                .put("abort_exception", abortError == null ? null : abortError.getClass().getName())
                .put("abort_message", abortError == null ? null : fullMessage(abortError));
        }
        summary.put("elapsed_ms", d.elapsedMs());

        boolean ok;
        String why = null;
        if (expectFailure) {
            ok = acked == 0 && failed > 0 && !committed;
            if (acked > 0) why = acked + " of " + n + " record(s) acknowledged although failure was expected";
            else if (committed) why = "transaction committed although failure was expected";
            else if (failed == 0) why = "no record failed although failure was expected (" + unsent + " unsent, "
                + pending + " without a result within the timeout)";
        } else {
            ok = acked == n && (txnId == null || committed);
            if (acked != n) {
                why = "only " + acked + " of " + n + " record(s) acknowledged (" + failed + " failed, " + unsent
                    + " unsent, " + pending + " without a result within the timeout)"
                    + (first == null ? "" : "; first error: " + first.getClass().getName() + ": " + fullMessage(first));
            } else if (!committed) {
                why = "transaction not committed" + (commitError == null ? "" : ": " + commitError.getClass().getName()
                    + ": " + fullMessage(commitError));
            }
        }
        if (!ok) summary.put("error", why);
        return summary(summary, ok);
    }
}
