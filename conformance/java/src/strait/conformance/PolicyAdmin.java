package strait.conformance;

import static strait.conformance.Common.*;
import static strait.conformance.PolicyCommon.*;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Set;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.ApiVersions;
import org.apache.kafka.clients.ClientRequest;
import org.apache.kafka.clients.ClientResponse;
import org.apache.kafka.clients.ClientUtils;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.DefaultHostResolver;
import org.apache.kafka.clients.ManualMetadataUpdater;
import org.apache.kafka.clients.NetworkClient;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.AlterConfigsOptions;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DeleteTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.metrics.Metrics;
import org.apache.kafka.common.requests.AlterConfigsRequest;
import org.apache.kafka.common.requests.AlterConfigsResponse;
import org.apache.kafka.common.requests.ApiError;
import org.apache.kafka.common.utils.LogContext;
import org.apache.kafka.common.utils.Time;

/**
 * One topic admin operation (createTopics, legacy alterConfigs, incrementalAlterConfigs,
 * deleteTopics) and exactly what the client surfaced per topic, for testing admin-side
 * policy rejections (POLICY_VIOLATION with an error message).
 */
public final class PolicyAdmin {
    static final String USAGE =
        "usage: PolicyAdmin --bootstrap HOST:PORT --action create|alter|incremental-alter|delete --topic T [--topic T2 ...]\n"
        + "                   [--partitions P] [--replication-factor R] [--config k=v ...] [--delete-config k ...]\n"
        + "                   [--validate-only] [--expect-failure] [options]\n"
        + "  create             Admin.createTopics (P / R default to the broker defaults, sent as -1),\n"
        + "                     --config k=v as topic configs\n"
        + "  alter              legacy AlterConfigs (API key 33) for the TOPIC resource with exactly the\n"
        + "                     --config entries (legacy semantics: the set replaces the topic's dynamic\n"
        + "                     configs). kafka-clients 4.x dropped Admin.alterConfigs, so the driver sends\n"
        + "                     it with the client's own NetworkClient (security settings from --admin-prop,\n"
        + "                     ApiVersions negotiated) to the first reachable bootstrap address\n"
        + "  incremental-alter  Admin.incrementalAlterConfigs: SET per --config k=v, DELETE per --delete-config k\n"
        + "  delete             Admin.deleteTopics\n"
        + "  Output per topic: {\"type\":\"result\",\"action\",\"topic\",\"ok\":true|false,\"exception\",\"message\",\"cause\"}\n"
        + "  (create adds partitions / replication_factor as the broker reported them; \"pending\":true when\n"
        + "  there was no result by the deadline); summary succeeded, failed, pending, first_exception,\n"
        + "  first_message (messages of the exception and its causes joined by \" | \").\n"
        + "  Timeouts: default.api.timeout.ms (and each call's timeoutMs) = the time left minus\n"
        + "  min(10 s, max(2 s, 1/5 of it)) (at most half of it), request.timeout.ms = min(30 s, that),\n"
        + "  unless --admin-prop sets them, so the client's own timeout error is what gets reported.\n"
        + "  ok: every topic succeeded; with --expect-failure: none succeeded and at least one failed.\n"
        + "  --validate-only            validateOnly flag (create, alter, incremental-alter)\n";

    public static void main(String[] argv) {
        Common.main("PolicyAdmin", USAGE, argv,
            setOf("bootstrap", "action", "topic", "partitions", "replication-factor", "config", "delete-config"),
            setOf("expect-failure", "validate-only"),
            PolicyAdmin::run);
    }

    static int run(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String action = args.required("action");
        List<String> topics = args.all("topic");
        if (topics.isEmpty()) throw new UsageException("missing required option --topic");
        Optional<Integer> partitions = args.str("partitions", null) == null ? Optional.empty()
            : Optional.of(args.intOpt("partitions", 1));
        Optional<Short> rf = Optional.empty();
        if (args.str("replication-factor", null) != null) {
            int r = args.intOpt("replication-factor", 1);
            if (r < -1 || r > Short.MAX_VALUE) throw new UsageException("--replication-factor out of range");
            rf = Optional.of((short) r);
        }
        Map<String, String> configs = args.keyValues("config");
        List<String> deleteConfigs = args.all("delete-config");
        boolean validateOnly = args.flag("validate-only");
        boolean expectFailure = args.flag("expect-failure");
        switch (action) {
            case "create": case "alter": case "incremental-alter": case "delete": break;
            default: throw new UsageException("--action must be create, alter, incremental-alter or delete, got " + action);
        }
        if (!deleteConfigs.isEmpty() && !action.equals("incremental-alter"))
            throw new UsageException("--delete-config only applies to --action incremental-alter");
        if ((action.equals("incremental-alter")) && configs.isEmpty() && deleteConfigs.isEmpty())
            throw new UsageException("--action incremental-alter needs --config k=v or --delete-config k");

        Json summary = CONTEXT.put("driver", "PolicyAdmin").put("bootstrap", bootstrap).put("action", action)
            .put("topics", topics).put("configs", configs).put("validate_only", validateOnly)
            .put("expect_failure", expectFailure);
        if (action.equals("create")) {
            summary.put("partitions", partitions.orElse(null)).put("replication_factor", rf.map(Short::intValue).orElse(null));
        }
        if (!deleteConfigs.isEmpty()) summary.put("delete_configs", deleteConfigs);

        // topic -> null on success, else the exception the client surfaced
        Map<String, Throwable> outcome = new LinkedHashMap<>();
        Map<String, Integer[]> createdInfo = new LinkedHashMap<>(); // topic -> {partitions, replication factor}
        // The client's own timeouts end before --timeout-ms so that what it surfaces (its
        // TimeoutException, a connection error) is reported; results still missing at the
        // deadline count as pending, not as failures.
        long budget = clientBudgetMs(d.remainingMs());
        Properties ap = adminProps(args, bootstrap, d);
        Map<String, String> user = args.keyValues("admin-prop");
        if (!user.containsKey(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG))
            ap.setProperty(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(budget));
        if (!user.containsKey(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG))
            ap.setProperty(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, Long.toString(Math.min(30_000, budget)));
        int apiTimeout = (int) Math.min(Integer.MAX_VALUE,
            Long.parseLong(ap.getProperty(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG).trim()));
        Set<String> pending = new HashSet<>();
        context("phase", action);
        if (action.equals("alter")) {
            legacyAlterConfigs(ap, topics, configs, validateOnly, d, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(budget),
                outcome, pending, summary);
        } else {
            Admin admin = Admin.create(ap);
            try {
                Map<String, KafkaFuture<Void>> futures = new LinkedHashMap<>();
                CreateTopicsResult created = null;
                if (action.equals("create")) {
                    List<NewTopic> nts = new ArrayList<>();
                    for (String t : topics) {
                        NewTopic nt = new NewTopic(t, partitions, rf);
                        if (!configs.isEmpty()) nt.configs(configs);
                        nts.add(nt);
                    }
                    created = admin.createTopics(nts, new CreateTopicsOptions().timeoutMs(apiTimeout).validateOnly(validateOnly));
                    futures.putAll(created.values());
                } else if (action.equals("incremental-alter")) {
                    Map<ConfigResource, Collection<AlterConfigOp>> ops = new LinkedHashMap<>();
                    Map<ConfigResource, String> byResource = new LinkedHashMap<>();
                    for (String t : topics) {
                        List<AlterConfigOp> l = new ArrayList<>();
                        for (Map.Entry<String, String> e : configs.entrySet())
                            l.add(new AlterConfigOp(new ConfigEntry(e.getKey(), e.getValue()), AlterConfigOp.OpType.SET));
                        for (String k : deleteConfigs)
                            l.add(new AlterConfigOp(new ConfigEntry(k, null), AlterConfigOp.OpType.DELETE));
                        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
                        ops.put(r, l);
                        byResource.put(r, t);
                    }
                    Map<ConfigResource, KafkaFuture<Void>> vs = admin.incrementalAlterConfigs(ops,
                        new AlterConfigsOptions().timeoutMs(apiTimeout).validateOnly(validateOnly)).values();
                    for (Map.Entry<ConfigResource, KafkaFuture<Void>> e : vs.entrySet()) futures.put(byResource.get(e.getKey()), e.getValue());
                } else {
                    futures.putAll(admin.deleteTopics(topics, new DeleteTopicsOptions().timeoutMs(apiTimeout)).topicNameValues());
                }
                for (String t : topics) {
                    KafkaFuture<Void> f = futures.get(t);
                    if (f == null) {
                        outcome.put(t, new IllegalStateException("the client returned no result for topic " + t));
                        continue;
                    }
                    try {
                        f.get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                        outcome.put(t, null);
                        if (created != null) {
                            Integer[] info = new Integer[2];
                            try {
                                info[0] = created.numPartitions(t).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                                info[1] = created.replicationFactor(t).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                            } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                                log("no partition count / replication factor for %s: %s", t, e);
                            }
                            createdInfo.put(t, info);
                        }
                    } catch (ExecutionException e) {
                        outcome.put(t, surfaced(e));
                    } catch (java.util.concurrent.TimeoutException e) {
                        outcome.put(t, null);
                        pending.add(t);
                    }
                }
            } finally {
                closeQuietly("admin", () -> admin.close(d.capped(5000)));
            }
        }
        CONTEXT.remove("phase");

        int succeeded = 0, failed = 0;
        Throwable first = null;
        for (Map.Entry<String, Throwable> e : outcome.entrySet()) {
            Throwable t = e.getValue();
            boolean isPending = pending.contains(e.getKey());
            Json line = Json.of("result").put("action", action).put("topic", e.getKey()).put("ok", t == null && !isPending);
            if (isPending) {
                line.put("pending", true).put("message", "no result within --timeout-ms " + d.timeoutMs);
            } else if (t == null) {
                succeeded++;
                Integer[] info = createdInfo.get(e.getKey());
                if (info != null) line.put("partitions", info[0]).put("replication_factor", info[1]);
            } else {
                failed++;
                if (first == null) first = t;
                line.put("exception", t.getClass().getName()).put("message", t.getMessage()).put("cause", causes(t));
            }
            emit(line);
        }
        summary.put("succeeded", succeeded).put("failed", failed).put("pending", pending.size())
            .put("first_exception", first == null ? null : first.getClass().getName())
            .put("first_message", first == null ? null : fullMessage(first))
            .put("elapsed_ms", d.elapsedMs());
        boolean ok;
        if (expectFailure) {
            ok = succeeded == 0 && failed > 0;
            if (!ok) summary.put("error", succeeded > 0 ? succeeded + " of " + topics.size() + " topic(s) succeeded although failure was expected"
                : "no topic failed although failure was expected (" + pending.size() + " without a result within --timeout-ms)");
        } else {
            ok = failed == 0 && succeeded == topics.size();
            if (!ok) summary.put("error", failed + " of " + topics.size() + " topic(s) failed, " + pending.size() + " without a result"
                + (first == null ? "" : "; first error: " + first.getClass().getName() + ": " + fullMessage(first)));
        }
        return summary(summary, ok);
    }

    /**
     * Legacy AlterConfigs through kafka-clients' NetworkClient (Admin.alterConfigs is gone in 4.x).
     * The request goes to the first bootstrap address that becomes ready; the broker forwards it
     * to the controller.
     */
    static void legacyAlterConfigs(Properties ap, List<String> topics, Map<String, String> configs, boolean validateOnly,
                                   Deadline d, long budgetEndNanos, Map<String, Throwable> outcome, Set<String> pending,
                                   Json summary) throws Exception {
        AdminClientConfig cfg = new AdminClientConfig(ap);
        LogContext logContext = new LogContext("[PolicyAdmin legacy AlterConfigs] ");
        Time time = Time.SYSTEM;
        Metrics metrics = new Metrics(time);
        java.util.function.LongSupplier budgetLeft = () -> Math.max(0, TimeUnit.NANOSECONDS.toMillis(budgetEndNanos - System.nanoTime()));
        int requestTimeout = (int) Math.max(1, Math.min(cfg.getInt(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG), budgetLeft.getAsLong()));
        NetworkClient client = ClientUtils.createNetworkClient(cfg, "strait-policy-admin", metrics,
            ap.getProperty(CommonClientConfigs.CLIENT_ID_CONFIG, "strait-conformance-PolicyAdmin-admin"), logContext,
            new ApiVersions(), time, 1, requestTimeout, new ManualMetadataUpdater(), new DefaultHostResolver());
        try {
            List<InetSocketAddress> addrs = ClientUtils.parseAndValidateAddresses(cfg);
            Node node = null;
            Exception lastConnectError = null;
            // Try the bootstrap addresses in order until one is ready (connected, ApiVersions
            // done), within the client budget; a short pause between rounds.
            while (node == null && budgetLeft.getAsLong() > 0) {
                for (int i = 0; i < addrs.size() && node == null && budgetLeft.getAsLong() > 0; i++) {
                    InetSocketAddress a = addrs.get(i);
                    Node candidate = new Node(-1 - i, a.getHostString(), a.getPort());
                    long slice = Math.max(1, Math.min(budgetLeft.getAsLong(), Math.max(1000, budgetLeft.getAsLong() / addrs.size())));
                    try {
                        if (org.apache.kafka.clients.NetworkClientUtils.awaitReady(client, candidate, time, slice)) node = candidate;
                    } catch (Exception e) {
                        lastConnectError = e;
                        log("legacy AlterConfigs: %s not ready: %s", candidate, e);
                    }
                }
                if (node == null) Thread.sleep(Math.max(1, Math.min(200, budgetLeft.getAsLong())));
            }
            if (node == null) {
                for (String topic : topics) {
                    outcome.put(topic, lastConnectError);
                    if (lastConnectError == null) pending.add(topic);
                }
                return;
            }
            summary.put("alter_node", node.host() + ":" + node.port());

            Map<ConfigResource, AlterConfigsRequest.Config> req = new LinkedHashMap<>();
            List<AlterConfigsRequest.ConfigEntry> entries = new ArrayList<>();
            for (Map.Entry<String, String> e : configs.entrySet()) entries.add(new AlterConfigsRequest.ConfigEntry(e.getKey(), e.getValue()));
            for (String t : topics) req.put(new ConfigResource(ConfigResource.Type.TOPIC, t), new AlterConfigsRequest.Config(entries));
            ClientRequest request = client.newClientRequest(node.idString(), new AlterConfigsRequest.Builder(req, validateOnly),
                time.milliseconds(), true, requestTimeout, null);
            client.send(request, time.milliseconds());
            ClientResponse response = null;
            while (response == null) {
                if (d.expired()) {
                    for (String topic : topics) {
                        outcome.put(topic, null);
                        pending.add(topic);
                    }
                    return;
                }
                for (ClientResponse r : client.poll(Math.min(500, d.remainingMsAtLeast1()), time.milliseconds())) {
                    if (r.requestHeader().correlationId() == request.correlationId()) response = r;
                }
            }
            summary.put("alter_api_version", (int) response.requestHeader().apiVersion());
            Throwable transport = null;
            if (response.versionMismatch() != null) transport = response.versionMismatch();
            else if (response.authenticationException() != null) transport = response.authenticationException();
            else if (response.wasTimedOut()) transport = new org.apache.kafka.common.errors.TimeoutException(
                "AlterConfigs request timed out after " + requestTimeout + " ms");
            else if (response.wasDisconnected()) transport = new org.apache.kafka.common.errors.DisconnectException(
                "connection to " + response.destination() + " closed before the AlterConfigs response was read");
            if (transport != null) {
                for (String topic : topics) outcome.put(topic, transport);
                return;
            }
            Map<ConfigResource, ApiError> errors = ((AlterConfigsResponse) response.responseBody()).errors();
            for (String t : topics) {
                ApiError err = errors.get(new ConfigResource(ConfigResource.Type.TOPIC, t));
                if (err == null) outcome.put(t, new IllegalStateException("AlterConfigs response has no entry for topic " + t));
                else outcome.put(t, err.isSuccess() ? null : err.exception());
            }
        } finally {
            closeQuietly("network client", client::close);
            closeQuietly("metrics", metrics::close);
        }
    }
}
