package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// verifiable-produce: Kafka's VerifiableProducer's JSON lines from franz-go:
// values "0".."N-1" (no key) to T, paced at --throughput records/s,
// franz-go's defaults otherwise (idempotent, acks=all, retries until the
// delivery timeout). One {"name":"producer_send_success","value","partition",
// "offset"} or {"name":"producer_send_error","value","exception","message"}
// line per record as its result arrives.
func verifiableProduceCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic (must exist)")
	max := fs.Int("max-messages", 10000, "N")
	throughput := fs.Int("throughput", 5000, "records per second (pacing, not synchronisation)")
	compression := fs.String("compression", "none", "producer batch compression")
	return 180000, func(d *deadline) (int, error) {
		if *topic == "" || *max < 0 || *throughput <= 0 {
			return 0, usageErr("--topic is required, --max-messages >= 0, --throughput > 0")
		}
		codec, err := parseCodec(*compression)
		if err != nil {
			return 0, err
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		setContext("topic", *topic)
		cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(*topic),
			kgo.ProducerBatchCompression(codec), kgo.RecordDeliveryTimeout(clientTimeout(d)))...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		ctx, cancel := d.ctx()
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		acked, failed, sent := 0, 0, 0
		errorKinds := map[string]int{}
		start := time.Now()
		for i := 0; i < *max && !d.expired(); i++ {
			// Pacing: record i goes out no earlier than i / throughput seconds in.
			if due := start.Add(time.Duration(i) * time.Second / time.Duration(*throughput)); time.Now().Before(due) {
				time.Sleep(time.Until(due))
			}
			v := fmt.Sprint(i)
			wg.Add(1)
			sent++
			cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					errorKinds[errName(err)]++
					emit(obj{"name": "producer_send_error", "value": v, "exception": errName(err), "message": err.Error()})
					return
				}
				acked++
				emit(obj{"name": "producer_send_success", "value": v, "partition": r.Partition, "offset": r.Offset})
			})
		}
		wg.Wait()
		ok := acked+failed == *max
		f := obj{"acked": acked, "failed": failed, "unsent": *max - sent, "error_kinds": errorKinds, "elapsed_ms": d.elapsedMs()}
		if !ok {
			f["error"] = fmt.Sprintf("%d of %d records got a result", acked+failed, *max)
		}
		return summary(ok, f), nil
	}
}

// errName: the Kafka error name (e.g. OUT_OF_ORDER_SEQUENCE_NUMBER) of a
// broker error, else the error's text.
func errName(err error) string {
	if ke, ok := asKerr(err); ok {
		return ke.Message
	}
	return err.Error()
}

func asKerr(err error) (*kerr.Error, bool) {
	for e := err; e != nil; {
		if ke, ok := e.(*kerr.Error); ok {
			return ke, true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return nil, false
		}
		e = u.Unwrap()
	}
	return nil, false
}

// read: every partition of T from the start (assigned, no group) up to the
// end offsets taken at the start under the same isolation level
// (read_committed: the last stable offset). One line per record unless
// --quiet: {"type":"record","partition","offset","key","value","headers"}
// (text; null for null). A topic the broker does not know reads as no
// records (topic_exists false). ok: the end reached and, with --expect,
// that many.
func readCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic")
	isolation := fs.String("isolation", "read_uncommitted", "read_committed or read_uncommitted")
	expect := fs.Int("expect", -1, "exactly this many records (default: any)")
	quiet := fs.Bool("quiet", false, "no record lines")
	follow := fs.Bool("follow", false, "read until --expect N records, not to the end offsets (a topic being written)")
	partitionBytes := fs.Int("max-partition-fetch-bytes", 0, "kgo.FetchMaxPartitionBytes (default: franz-go's)")
	return 60000, func(d *deadline) (int, error) {
		if *topic == "" || (*isolation != "read_committed" && *isolation != "read_uncommitted") {
			return 0, usageErr("--topic is required; --isolation read_committed or read_uncommitted")
		}
		if *follow && *expect < 0 {
			return 0, usageErr("--follow needs --expect N")
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		if *partitionBytes > 0 {
			opts = append(opts, kgo.FetchMaxPartitionBytes(int32(*partitionBytes)))
		}
		setContext("topic", *topic)
		setContext("isolation", *isolation)
		count := 0
		exists := true
		var until func() bool
		if *follow {
			until = func() bool { return count >= *expect }
		}
		perPartition, err := readTopic(d, opts, *topic, *isolation == "read_committed", until, func(r *kgo.Record) {
			count++
			if !*quiet {
				emit(obj{"type": "record", "partition": r.Partition, "offset": r.Offset, "key": nullable(r.Key),
					"value": nullable(r.Value), "headers": headerPairs(r.Headers)})
			}
		})
		if errors.Is(err, errUnknownTopic) {
			exists, err, perPartition = false, nil, map[int32]int{}
		}
		if err != nil {
			return 0, err
		}
		ok := *expect < 0 || count == *expect
		f := obj{"count": count, "per_partition": perPartition, "topic_exists": exists, "elapsed_ms": d.elapsedMs()}
		if !ok {
			f["error"] = fmt.Sprintf("read %d records, expected %d", count, *expect)
		}
		return summary(ok, f), nil
	}
}

func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// readTopic reads every partition of topic from its start offset to the end
// offset (under the isolation level) taken first, handing each record to
// each; returns the count per partition. With until, it reads (past those
// end offsets) until until() holds instead.
func readTopic(d *deadline, opts []kgo.Opt, topic string, committed bool, until func() bool, each func(*kgo.Record)) (map[int32]int, error) {
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	admin, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ends, err := listOffsets(d, admin, topic, -1, committed)
	admin.Close()
	if err != nil {
		return nil, err
	}
	starts := map[int32]kgo.Offset{}
	for p := range ends {
		starts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.FetchIsolationLevel(iso),
		// Control records (transaction markers) are returned too, so the
		// position passes them; they are not handed to each.
		kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	pos := map[int32]int64{}
	counts := map[int32]int{}
	done := func() bool {
		if until != nil {
			return until()
		}
		for p, e := range ends {
			if pos[p] < e {
				return false
			}
		}
		return true
	}
	// Reading starts at each partition's log start offset.
	starts2, err := listOffsets(d, cl, topic, -2, committed)
	if err != nil {
		return nil, err
	}
	for p, s := range starts2 {
		pos[p] = s
	}
	for !done() {
		if d.expired() {
			return counts, fmt.Errorf("read %s: deadline with positions %v, ends %v", topic, pos, ends)
		}
		pctx, cancel := d.capped(time.Second)
		f := cl.PollFetches(pctx)
		cancel()
		f.EachError(func(t string, p int32, err error) {
			if err != context.DeadlineExceeded && err != context.Canceled {
				logf("fetch error %s-%d: %v", t, p, err)
			}
		})
		f.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				if (until == nil && r.Offset >= ends[fp.Partition]) || r.Attrs.IsControl() {
					continue
				}
				counts[fp.Partition]++
				each(r)
			}
			// The next offset to read: past the last record or marker.
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset+1 > pos[fp.Partition] {
				pos[fp.Partition] = fp.Records[n-1].Offset + 1
			}
		})
	}
	return counts, nil
}

// errUnknownTopic: the broker does not know the topic (metadata answered
// UNKNOWN_TOPIC_OR_PARTITION; the tests create topics with create-topic,
// which waits until every broker lists them, so this is not a lag).
var errUnknownTopic = errors.New("unknown topic")

// listOffsets: each partition's offset at timestamp ts (-1 end / last
// stable offset with committed, -2 start).
func listOffsets(d *deadline, cl *kgo.Client, topic string, ts int64, committed bool) (map[int32]int64, error) {
	ctx, cancel := d.capped(30 * time.Second)
	defer cancel()
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	mreq.Topics = append(mreq.Topics, mt)
	var parts []int32
	for {
		mresp, err := mreq.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("metadata %s: %w", topic, err)
		}
		if len(mresp.Topics) == 1 {
			if e := kerr.ErrorForCode(mresp.Topics[0].ErrorCode); e != nil {
				if e == kerr.UnknownTopicOrPartition {
					return nil, errUnknownTopic
				}
				if !kerr.IsRetriable(e) {
					return nil, fmt.Errorf("metadata %s: %w", topic, e)
				}
			} else {
				for _, p := range mresp.Topics[0].Partitions {
					parts = append(parts, p.Partition)
				}
				break
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("metadata %s: no partitions before the deadline", topic)
		}
		time.Sleep(100 * time.Millisecond) // bounded retry of a retriable metadata error
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	shards := cl.RequestSharded(ctx, req)
	out := map[int32]int64{}
	var errs []string
	for _, s := range shards {
		if s.Err != nil {
			errs = append(errs, s.Err.Error())
			continue
		}
		for _, t := range s.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					errs = append(errs, fmt.Sprintf("%s-%d: %v", t.Topic, p.Partition, e))
					continue
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("list offsets %s: %s", topic, strings.Join(errs, "; "))
	}
	return out, nil
}
