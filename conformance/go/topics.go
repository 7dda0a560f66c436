package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// create-topic: CreateTopics for T (P partitions, replication factor R,
// --config k=v topic configs), then waits until every broker's metadata
// lists T with a leader for each partition (clients and proxies may ask
// any broker). Summary: leaders {partition: node id}.
func createTopicCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic to create")
	partitions := fs.Int("partitions", 1, "P")
	rf := fs.Int("replication-factor", 1, "R")
	var configs kvList
	fs.Var(&configs, "config", "topic config k=v (repeatable)")
	return 60000, func(d *deadline) (int, error) {
		if *topic == "" || *partitions < 1 || *rf < 1 {
			return 0, usageErr("--topic is required; --partitions, --replication-factor >= 1")
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		setContext("topic", *topic)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		ctx, cancel := d.ctx()
		defer cancel()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = *topic, int32(*partitions), int16(*rf)
		for _, kv := range configs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return 0, usageErr("--config expects k=v, got %q", kv)
			}
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
			t.Configs = append(t.Configs, cfg)
		}
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return 0, fmt.Errorf("create topic %s: %w", *topic, err)
		}
		if len(resp.Topics) != 1 {
			return 0, fmt.Errorf("create topic %s: %d topics in the response", *topic, len(resp.Topics))
		}
		if e := kerr.ErrorForCode(resp.Topics[0].ErrorCode); e != nil {
			msg := ""
			if m := resp.Topics[0].ErrorMessage; m != nil {
				msg = ": " + *m
			}
			return 0, fmt.Errorf("create topic %s: %v%s", *topic, e, msg)
		}
		leaders, err := waitForLeaders(ctx, cl, *topic, *partitions)
		if err != nil {
			return 0, err
		}
		return summary(true, obj{"leaders": leaders, "elapsed_ms": d.elapsedMs()}), nil
	}
}

// waitForLeaders polls every broker's metadata until each lists topic with
// a leader for all its partitions; returns the leaders.
func waitForLeaders(ctx context.Context, cl *kgo.Client, topic string, partitions int) (map[int32]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ready := func(m *kmsg.MetadataResponse) map[int32]int32 {
		if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 || len(m.Topics[0].Partitions) != partitions {
			return nil
		}
		out := map[int32]int32{}
		for _, p := range m.Topics[0].Partitions {
			if p.ErrorCode != 0 || p.Leader < 0 {
				return nil
			}
			out[p.Partition] = p.Leader
		}
		return out
	}
	for pause := 20 * time.Millisecond; ; {
		all, err := req.RequestWith(ctx, cl)
		var leaders map[int32]int32
		if err == nil {
			leaders = ready(all)
			for _, b := range all.Brokers {
				if leaders == nil {
					break
				}
				resp, err := cl.Broker(int(b.NodeID)).Request(ctx, req)
				if err != nil || ready(resp.(*kmsg.MetadataResponse)) == nil {
					leaders = nil
				}
			}
		}
		if leaders != nil {
			return leaders, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("topic %s: not every broker lists a leader for its %d partition(s) before the deadline (last error: %v)", topic, partitions, err)
		}
		time.Sleep(pause) // bounded polling: the controller's metadata reaches every broker shortly
		if pause < 200*time.Millisecond {
			pause *= 2
		}
	}
}

// batches: the record batches of one partition as the broker stores them,
// fetched raw from its leader (franz-go's kmsg Fetch, not its consumer,
// so nothing is decompressed or re-batched): one {"type":"batch",
// "base_offset","codec","count","size","control"} line per batch from the
// log start to the high watermark; size is the batch's bytes in the log.
func batchesCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic")
	partition := fs.Int("partition", 0, "partition")
	return 60000, func(d *deadline) (int, error) {
		if *topic == "" || *partition < 0 {
			return 0, usageErr("--topic is required; --partition >= 0")
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		setContext("topic", *topic)
		setContext("partition", *partition)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		ctx, cancel := d.ctx()
		defer cancel()
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(*topic)
		mreq.Topics = append(mreq.Topics, mt)
		m, err := mreq.RequestWith(ctx, cl)
		if err != nil {
			return 0, err
		}
		if len(m.Topics) != 1 || m.Topics[0].ErrorCode != 0 {
			return 0, fmt.Errorf("metadata %s: %v", *topic, m.Topics)
		}
		leader := int32(-1)
		for _, p := range m.Topics[0].Partitions {
			if p.Partition == int32(*partition) {
				leader = p.Leader
			}
		}
		if leader < 0 {
			return 0, fmt.Errorf("%s-%d: no leader", *topic, *partition)
		}
		starts, err := listOffsets(d, cl, *topic, -2, false)
		if err != nil {
			return 0, err
		}
		offset, hwm := starts[int32(*partition)], int64(-1)
		codecs := []string{"none", "gzip", "snappy", "lz4", "zstd"}
		count := 0
		for hwm < 0 || offset < hwm {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 0, 64<<20
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = *topic, m.Topics[0].TopicID
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = int32(*partition), offset, 64<<20
			fp.CurrentLeaderEpoch, fp.LogStartOffset = -1, -1
			ft.Partitions = append(ft.Partitions, fp)
			req.Topics = append(req.Topics, ft)
			raw, err := cl.Broker(int(leader)).Request(ctx, req)
			if err != nil {
				return 0, fmt.Errorf("fetch %s-%d@%d: %w", *topic, *partition, offset, err)
			}
			resp := raw.(*kmsg.FetchResponse)
			if e := kerr.ErrorForCode(resp.ErrorCode); e != nil {
				return 0, fmt.Errorf("fetch: %w", e)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				return 0, fmt.Errorf("fetch %s-%d: unexpected response shape", *topic, *partition)
			}
			p := resp.Topics[0].Partitions[0]
			if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
				return 0, fmt.Errorf("fetch %s-%d@%d: %w", *topic, *partition, offset, e)
			}
			hwm = p.HighWatermark
			b := p.RecordBatches
			progressed := false
			for len(b) >= 12 {
				length := int(binary.BigEndian.Uint32(b[8:12]))
				if len(b) < 12+length {
					break // a partial batch at the end of the response: fetched again next round
				}
				var rb kmsg.RecordBatch
				if err := rb.ReadFrom(b[:12+length]); err != nil {
					return 0, fmt.Errorf("%s-%d@%d: batch: %w", *topic, *partition, offset, err)
				}
				emit(obj{"type": "batch", "base_offset": rb.FirstOffset, "codec": codecs[rb.Attributes&7],
					"count": rb.NumRecords, "size": 12 + length, "control": rb.Attributes&0x20 != 0})
				count++
				offset = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
				progressed = true
				b = b[12+length:]
			}
			if !progressed && offset < hwm {
				return 0, fmt.Errorf("fetch %s-%d@%d: no complete batch below the high watermark %d", *topic, *partition, offset, hwm)
			}
		}
		return summary(true, obj{"batches": count, "high_watermark": hwm, "elapsed_ms": d.elapsedMs()}), nil
	}
}
