package strait.conformance;

import static strait.conformance.Common.*;

import java.util.Collection;
import java.util.Collections;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConsumerGroupsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Prints every broker address a client learns through the Admin API (and the group
 * coordinator lookup), so a test can assert that all of them point at the proxy.
 */
public final class AdminAddresses {
    static final String USAGE =
        "usage: AdminAddresses --bootstrap HOST:PORT [--topic T] [options]\n"
        + "  describeCluster (nodes, controller); with --topic: create T (3 partitions, rf = min(#nodes, 3)),\n"
        + "  describeTopics (leader, replicas, isr), commit one offset on T in group strait-addr-<random>,\n"
        + "  describeConsumerGroups (coordinator). Each node is printed as\n"
        + "  {\"type\":\"node\",\"kind\":K,\"id\":I,\"host\":H,\"port\":P} with K one of cluster, controller,\n"
        + "  leader, replica, isr, coordinator; the summary lists the distinct \"endpoints\" (host:port).\n"
        + "  --partitions N             partitions of T (default 3)\n";

    public static void main(String[] argv) {
        Common.main("AdminAddresses", USAGE, argv, setOf("bootstrap", "topic", "partitions"), setOf(),
            AdminAddresses::run);
    }

    private static final TreeSet<String> ENDPOINTS = new TreeSet<>();
    private static int nodesPrinted = 0;
    private static int badNodes = 0;

    private static void node(Json j, Node n) {
        emit(j);
        nodesPrinted++;
        if (n == null || n.isEmpty() || n.host() == null || n.host().isEmpty() || n.port() <= 0) {
            badNodes++;
        } else {
            ENDPOINTS.add(n.host() + ":" + n.port());
        }
    }

    static int run(Args args, Deadline d) throws Exception {
        String bootstrap = args.required("bootstrap");
        String topic = args.str("topic", null);
        int partitions = args.intOpt("partitions", 3);
        Json summary = CONTEXT.put("driver", "AdminAddresses").put("bootstrap", bootstrap).put("topic", topic);

        Properties ap = adminProps(args, bootstrap, d);
        Admin admin = Admin.create(ap);
        try {
            context("phase", "describe cluster");
            DescribeClusterResult dc = admin.describeCluster(
                new DescribeClusterOptions().timeoutMs((int) Math.min(Integer.MAX_VALUE, d.remainingMsAtLeast1())));
            Collection<Node> nodes = dc.nodes().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            Node controller = dc.controller().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            String clusterId = dc.clusterId().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
            summary.put("cluster_id", clusterId).put("cluster_nodes", nodes.size());
            for (Node n : nodes) node(nodeJson("cluster", n), n);
            node(nodeJson("controller", controller), controller);

            if (topic != null) {
                short rf = (short) Math.max(1, Math.min(3, nodes.size()));
                context("phase", "create topic");
                TopicDescription td = createTopicAndWait(admin, topic, partitions, rf, null, d);
                for (TopicPartitionInfo p : td.partitions()) {
                    node(nodeJson("leader", p.leader()).put("topic", topic).put("partition", p.partition()), p.leader());
                    for (Node r : p.replicas())
                        node(nodeJson("replica", r).put("topic", topic).put("partition", p.partition()), r);
                    for (Node r : p.isr())
                        node(nodeJson("isr", r).put("topic", topic).put("partition", p.partition()), r);
                }

                // Create a group: a consumer (going through FindCoordinator itself) commits one offset.
                String group = "strait-addr-" + randomSuffix();
                TopicPartition tp0 = new TopicPartition(topic, 0);
                Properties cp = new Properties();
                cp.setProperty("bootstrap.servers", bootstrap);
                cp.setProperty("group.id", group);
                cp.setProperty("client.id", "strait-conformance-AdminAddresses-consumer");
                cp.setProperty("enable.auto.commit", "false");
                cp.setProperty("key.deserializer", ByteArrayDeserializer.class.getName());
                cp.setProperty("value.deserializer", ByteArrayDeserializer.class.getName());
                cp.setProperty("default.api.timeout.ms", Long.toString(Math.max(1000, d.remainingMs())));
                args.applyProps("consumer", cp);
                context("phase", "commit offset");
                KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp);
                try {
                    consumer.assign(Collections.singleton(tp0));
                    consumer.commitSync(Collections.singletonMap(tp0, new OffsetAndMetadata(0L, "strait-addr")),
                        d.remaining());
                    log("committed offset 0 on %s for group %s", tp0, group);
                } finally {
                    closeConsumer(consumer, d, 5000);
                }

                context("phase", "describe group");
                ConsumerGroupDescription g = admin.describeConsumerGroups(Collections.singleton(group),
                        new DescribeConsumerGroupsOptions().timeoutMs((int) Math.min(Integer.MAX_VALUE, d.remainingMsAtLeast1())))
                    .describedGroups().get(group).get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                node(nodeJson("coordinator", g.coordinator()).put("group", group)
                    .put("group_state", String.valueOf(g.groupState())), g.coordinator());

                Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group,
                        new ListConsumerGroupOffsetsOptions().timeoutMs((int) Math.min(Integer.MAX_VALUE, d.remainingMsAtLeast1())))
                    .partitionsToOffsetAndMetadata().get(d.remainingMsAtLeast1(), TimeUnit.MILLISECONDS);
                OffsetAndMetadata om = committed.get(tp0);
                boolean commitVisible = om != null && om.offset() == 0L;
                emit(Json.of("group").put("group", group).put("state", String.valueOf(g.groupState()))
                    .put("committed_offset", om == null ? null : om.offset()).put("commit_visible", commitVisible));
                summary.put("group", group).put("commit_visible", commitVisible);
                if (!commitVisible) {
                    summary.put("error", "committed offset not visible through listConsumerGroupOffsets");
                    return finish(summary, false);
                }
            }
        } finally {
            closeQuietly("admin", () -> admin.close(d.capped(5000)));
        }
        boolean ok = badNodes == 0 && nodesPrinted > 0;
        if (badNodes > 0) summary.put("error", badNodes + " node(s) without a usable host:port");
        return finish(summary, ok);
    }

    private static int finish(Json summary, boolean ok) {
        summary.put("nodes_printed", nodesPrinted).put("bad_nodes", badNodes).put("endpoints", ENDPOINTS);
        CONTEXT.remove("phase");
        return summary(summary, ok);
    }
}
