package strait.conformance;

import static strait.conformance.Common.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import javax.net.ssl.SSLException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthenticationException;

/**
 * Java client over TLS with PEM material (kafka-clients' built-in PEM support, KIP-651):
 * truststore = CA PEM file (ssl.truststore.type=PEM + ssl.truststore.location); optional client
 * certificate for mTLS via ssl.keystore.type=PEM with the inline ssl.keystore.certificate.chain
 * and ssl.keystore.key (the PEM text of --cert-pem and --key-pem; the key must be PKCS#8,
 * "BEGIN PRIVATE KEY", or "BEGIN ENCRYPTED PRIVATE KEY" together with --key-password).
 */
public final class TlsClient {
    static final String USAGE =
        "usage: TlsClient --bootstrap HOST:PORT --topic T --records N --ca-pem FILE\n"
        + "                 [--cert-pem FILE --key-pem FILE [--key-password P]] [--expect-failure] [options]\n"
        + "  Connects with security.protocol=SSL, hostname verification on (the server certificate must\n"
        + "  carry the bootstrap host in its SAN). Creates T (1 partition) through the admin API, produces N\n"
        + "  records (acks=all) and consumes them back (no group), checking every value in order.\n"
        + "  --expect-failure: success means an SSL/authentication error within the timeout and no record\n"
        + "  acknowledged (the topic is not created; the producer is the first client to connect).\n"
        + "  --no-hostname-verification   ssl.endpoint.identification.algorithm= (empty)\n"
        + "  --no-create-topic            T must already exist\n"
        + "  --tls-protocol P             ssl.protocol / ssl.enabled.protocols (e.g. TLSv1.2; default: client default)\n";

    public static void main(String[] argv) {
        Common.main("TlsClient", USAGE, argv,
            setOf("bootstrap", "topic", "records", "ca-pem", "cert-pem", "key-pem", "key-password", "tls-protocol"),
            setOf("expect-failure", "no-hostname-verification", "no-create-topic"),
            TlsClient::run);
    }

    static String readPem(String path, String what) throws Exception {
        Path p = Path.of(path);
        if (!Files.isReadable(p)) throw new UsageException(what + " " + path + " is not a readable file");
        return Files.readString(p, StandardCharsets.US_ASCII);
    }

    static Properties sslProps(Args args) throws Exception {
        Properties p = new Properties();
        p.setProperty("security.protocol", "SSL");
        String ca = args.required("ca-pem");
        readPem(ca, "--ca-pem");
        p.setProperty("ssl.truststore.type", "PEM");
        p.setProperty("ssl.truststore.location", ca);
        String cert = args.str("cert-pem", null);
        String key = args.str("key-pem", null);
        if ((cert == null) != (key == null)) throw new UsageException("--cert-pem and --key-pem go together");
        if (cert != null) {
            p.setProperty("ssl.keystore.type", "PEM");
            p.setProperty("ssl.keystore.certificate.chain", readPem(cert, "--cert-pem"));
            p.setProperty("ssl.keystore.key", readPem(key, "--key-pem"));
            String kp = args.str("key-password", null);
            if (kp != null) p.setProperty("ssl.key.password", kp);
        }
        p.setProperty("ssl.endpoint.identification.algorithm", args.flag("no-hostname-verification") ? "" : "https");
        String proto = args.str("tls-protocol", null);
        if (proto != null) {
            p.setProperty("ssl.protocol", proto);
            p.setProperty("ssl.enabled.protocols", proto);
        }
        return p;
    }

    /** The first SSL/authentication-related throwable in the cause chain, or null. */
    static Throwable sslCause(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c instanceof AuthenticationException || c instanceof SSLException
                    || c instanceof java.security.cert.CertificateException
                    || c instanceof java.security.GeneralSecurityException) {
                return c;
            }
        }
        return null;
    }

    static String chain(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (sb.length() > 0) sb.append(" <- ");
            sb.append(c.getClass().getName()).append(": ").append(c.getMessage());
        }
        return sb.toString();
    }

    static int run(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.required("topic");
        int records = args.intOpt("records", -1);
        if (records < 1) throw new UsageException("--records must be >= 1");
        boolean expectFailure = args.flag("expect-failure");
        Properties ssl = sslProps(args);
        String runId = randomSuffix();
        Json summary = CONTEXT.put("driver", "TlsClient").put("bootstrap", bootstrap).put("topic", topic)
            .put("records", records).put("expect_failure", expectFailure)
            .put("client_cert", args.str("cert-pem", null) != null)
            .put("hostname_verification", !args.flag("no-hostname-verification"));

        if (expectFailure) return runExpectFailure(args, d, bootstrap, topic, records, ssl, summary);

        if (!args.flag("no-create-topic")) {
            Properties ap = adminProps(args, bootstrap, d);
            ap.putAll(ssl);
            args.applyProps("admin", ap);
            Admin admin = Admin.create(ap);
            try {
                context("phase", "create topic");
                createTopicAndWait(admin, topic, 1, defaultReplicationFactor(admin, d), null, d);
            } finally {
                closeQuietly("admin", () -> admin.close(d.capped(5000)));
            }
        }

        Properties pp = producerProps(args, bootstrap, d);
        pp.putAll(ssl);
        args.applyProps("producer", pp);
        context("phase", "produce");
        KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp);
        long firstOffset = -1;
        try {
            List<Future<RecordMetadata>> futures = new ArrayList<>(records);
            for (int i = 0; i < records; i++)
                futures.add(send(producer, new ProducerRecord<>(topic, 0, utf8(Integer.toString(i)), utf8(value(runId, i))), d));
            producer.flush();
            for (int i = 0; i < records; i++) {
                RecordMetadata md = futures.get(i).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                if (i == 0) firstOffset = md.offset();
            }
        } finally {
            closeQuietly("producer", () -> producer.close(d.capped(10_000)));
        }
        emit(Json.of("produced").put("records", records).put("first_offset", firstOffset));

        Properties cp = consumerProps(args, bootstrap, d);
        cp.putAll(ssl);
        args.applyProps("consumer", cp);
        context("phase", "consume");
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
        TopicPartition tp = new TopicPartition(topic, 0);
        int next = 0;
        int mismatches = 0;
        try {
            consumer.assign(Collections.singleton(tp));
            consumer.seek(tp, firstOffset);
            while (next < records) {
                d.check("consuming (" + next + " of " + records + " records)");
                ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(Math.min(1000, d.remainingMsAtLeast1())));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    if (next >= records) break;
                    String want = value(runId, next);
                    String got = str(r.value());
                    if (!want.equals(got) || !Integer.toString(next).equals(str(r.key()))) {
                        mismatches++;
                        emit(Json.of("mismatch").put("index", next).put("offset", r.offset())
                            .put("expected", want).put("got", got).put("key", str(r.key())));
                    }
                    next++;
                }
            }
        } finally {
            closeConsumer(consumer, d, 5000);
        }
        emit(Json.of("consumed").put("records", next).put("mismatches", mismatches));
        boolean ok = next == records && mismatches == 0;
        summary.put("produced", records).put("consumed", next).put("mismatches", mismatches).put("elapsed_ms", d.elapsedMs());
        if (!ok) summary.put("error", mismatches + " record(s) differ");
        CONTEXT.remove("phase");
        return summary(summary, ok);
    }

    private static String value(String runId, int i) {
        return "tls-" + runId + "-" + i;
    }

    private static int runExpectFailure(Args args, Deadline d, String bootstrap, String topic, int records,
                                        Properties ssl, Json summary) throws Exception {
        Properties pp = producerProps(args, bootstrap, d);
        pp.putAll(ssl);
        // Fail fast on a refused handshake instead of retrying for the whole timeout.
        pp.setProperty("reconnect.backoff.ms", "100");
        pp.setProperty("reconnect.backoff.max.ms", "1000");
        args.applyProps("producer", pp);
        KafkaProducer<byte[], byte[]> producer = null;
        Throwable failure = null;
        int acked = 0;
        int failed = 0;
        try {
            producer = new KafkaProducer<>(pp);
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < records && failure == null; i++) {
                try {
                    futures.add(send(producer, new ProducerRecord<>(topic, utf8(Integer.toString(i)), utf8("tls-expect-failure-" + i)), d));
                } catch (ExecutionException e) {
                    failed++;
                    failure = e.getCause();
                } catch (Exception e) {
                    failure = e;
                }
            }
            for (Future<RecordMetadata> f : futures) {
                try {
                    RecordMetadata md = f.get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                    acked++;
                    emit(Json.of("acknowledged").put("partition", md.partition()).put("offset", md.offset()));
                } catch (ExecutionException e) {
                    failed++;
                    if (failure == null || (sslCause(failure) == null && sslCause(e) != null)) failure = e.getCause();
                } catch (java.util.concurrent.TimeoutException e) {
                    failed++;
                    if (failure == null) failure = e;
                }
            }
        } catch (Exception e) {
            // e.g. the client refused the configuration or the key material
            failure = e;
        } finally {
            if (producer != null) {
                final KafkaProducer<byte[], byte[]> p = producer;
                closeQuietly("producer", () -> p.close(d.capped(5000)));
            }
        }
        Throwable ssl0 = failure == null ? null : sslCause(failure);
        Json err = Json.of("error");
        if (failure != null) {
            err.put("class", failure.getClass().getName()).put("message", failure.getMessage())
                .put("ssl_class", ssl0 == null ? null : ssl0.getClass().getName())
                .put("ssl_message", ssl0 == null ? null : ssl0.getMessage())
                .put("chain", chain(failure));
            emit(err);
        }
        boolean ok = ssl0 != null && acked == 0;
        summary.put("acknowledged", acked).put("failed", failed)
            .put("error_class", failure == null ? null : failure.getClass().getName())
            .put("error_message", failure == null ? null : failure.getMessage())
            .put("ssl_error_class", ssl0 == null ? null : ssl0.getClass().getName())
            .put("ssl_error_message", ssl0 == null ? null : ssl0.getMessage())
            .put("elapsed_ms", d.elapsedMs());
        if (!ok) {
            summary.put("error", acked > 0 ? acked + " record(s) acknowledged although failure was expected"
                : failure == null ? "no error at all although failure was expected"
                : "expected an SSL/authentication error, got " + failure.getClass().getName() + ": " + failure.getMessage());
        }
        CONTEXT.remove("phase");
        return summary(summary, ok);
    }
}
