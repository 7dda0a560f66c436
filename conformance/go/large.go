package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// large-records produce | consume: the large-value spec shared with
// conformance/java/.../LargeRecords.java and conformance/python/large_records.py
// (same command line, same JSON lines). value(seed, i, size) is the first
// size bytes of SHA-256(S||I||B0) || SHA-256(S||I||B1) || ... (S seed, I
// index, Bk block counter, each 8 bytes big-endian); key = K + i; one header
// ("n", i).
//
// produce: N values to T (must exist) with franz-go's defaults (idempotent,
// acks=all) except the size setting ProducerBatchMaxBytes = max(1000012,
// size + 1 MiB) (franz-go refuses a larger record locally). Output
// {"type":"acked","index","partition","offset","size","sha256"} per record,
// {"type":"error","index","error","retriable"} per failure.
// consume: without --group assigns every partition from the start (or the
// --seek P:O partitions); with --group subscribes and commits each record's
// offset + 1 synchronously after printing it (a failed commit is retried
// until the deadline). Consumer settings unchanged, except a per-partition
// fetch limit with --max-partition-fetch-bytes.
// {"type":"record","partition","offset","size","sha256","headers","key",
// "index"} per record; stops after --expect N records (--stop-after K: exits
// at once after the K-th, no close, like a crash).

const selfCheckSHA256 = "739fcd158512c980256fb6d98a076d27b3f9e9e6115029dddb0c00b6c482815e"

var largeMode string

func largeValue(seed, index int64, size int) []byte {
	out := make([]byte, 0, size+32)
	var buf [24]byte
	binary.BigEndian.PutUint64(buf[0:8], uint64(seed))
	binary.BigEndian.PutUint64(buf[8:16], uint64(index))
	for b := int64(0); len(out) < size; b++ {
		binary.BigEndian.PutUint64(buf[16:24], uint64(b))
		sum := sha256.Sum256(buf[:])
		out = append(out, sum[:]...)
	}
	return out[:size]
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func largeRecordsCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic (must exist)")
	count := fs.Int("count", -1, "produce: N records")
	size := fs.Int("size", -1, "produce: value size in bytes")
	seed := fs.Int64("seed", 1, "produce: content seed")
	partition := fs.Int("partition", -1, "produce: send every record to this partition")
	keyPrefix := fs.String("key-prefix", "", "produce: key = K + index")
	expect := fs.Int("expect", -1, "consume: stop after N records")
	group := fs.String("group", "", "consume: subscribe as this group, commit after each record")
	readCommitted := fs.Bool("read-committed", false, "consume: isolation read_committed")
	stopAfter := fs.Int("stop-after", 0, "consume: exit at once after the K-th record")
	partitionBytes := fs.Int("max-partition-fetch-bytes", 0, "consume: kgo.FetchMaxPartitionBytes (default: franz-go's)")
	var seeks kvList
	fs.Var(&seeks, "seek", "consume: assign partition P from offset O (P:O, repeatable)")
	_ = fs.Float64("timeout-s", 0, "bound on the whole run in seconds (instead of --timeout-ms)")
	return 120000, func(d *deadline) (int, error) {
		if *topic == "" {
			return 0, usageErr("--topic is required")
		}
		if got := sha(largeValue(1, 0, 1000)); got != selfCheckSHA256 {
			return 0, fmt.Errorf("value generator self-check failed: %s", got)
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		if *partitionBytes > 0 {
			opts = append(opts, kgo.FetchMaxPartitionBytes(int32(*partitionBytes)))
		}
		setContext("topic", *topic)
		switch largeMode {
		case "produce":
			if *count < 0 || *size < 0 {
				return 0, usageErr("produce needs --count N >= 0 and --size BYTES >= 0")
			}
			return largeProduce(d, opts, *topic, *count, *size, *seed, *partition, *keyPrefix)
		case "consume":
			if *expect < 0 {
				return 0, usageErr("consume needs --expect N >= 0")
			}
			return largeConsume(d, opts, *topic, *expect, *group, *readCommitted, *stopAfter, seeks)
		}
		return 0, usageErr("mode must be produce or consume, got %q", largeMode)
	}
}

func largeProduce(d *deadline, opts []kgo.Opt, topic string, count, size int, seed int64, partition int, keyPrefix string) (int, error) {
	maxBytes := size + 1<<20
	if maxBytes < 1000012 {
		maxBytes = 1000012
	}
	setContext("count", count)
	setContext("size", size)
	setContext("size_settings", obj{"ProducerBatchMaxBytes": maxBytes})
	popts := append(append([]kgo.Opt{}, opts...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(int32(maxBytes)), kgo.RecordDeliveryTimeout(clientTimeout(d)))
	if partition >= 0 {
		popts = append(popts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(popts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := d.ctx()
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	acked, errs, sent := 0, 0, 0
	for i := 0; i < count && !d.expired(); i++ {
		i := i
		v := largeValue(seed, int64(i), size)
		sum := sha(v)
		r := &kgo.Record{Key: []byte(keyPrefix + strconv.Itoa(i)), Value: v,
			Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}}, Partition: int32(partition)}
		wg.Add(1)
		sent++
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				retriable := false
				if ke, ok := asKerr(err); ok {
					retriable = ke.Retriable
				}
				emit(obj{"type": "error", "index": i, "error": err.Error(), "retriable": retriable})
				return
			}
			acked++
			emit(obj{"type": "acked", "index": i, "partition": r.Partition, "offset": r.Offset, "size": size, "sha256": sum})
		})
	}
	wg.Wait()
	ok := errs == 0 && acked == count
	f := obj{"acked": acked, "aborted": 0, "errors": errs, "pending": 0, "unsent": count - sent, "elapsed_ms": d.elapsedMs()}
	if !ok {
		f["error"] = fmt.Sprintf("%d error(s), %d unsent (%d acked of %d)", errs, count-sent, acked, count)
	}
	return summary(ok, f), nil
}

func largeConsume(d *deadline, opts []kgo.Opt, topic string, expect int, group string, committed bool, stopAfter int, seeks []string) (int, error) {
	if group != "" && len(seeks) > 0 {
		return 0, usageErr("--seek is for the no-group mode (without --group)")
	}
	if stopAfter < 0 {
		return 0, usageErr("--stop-after must be >= 1")
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	copts := append(append([]kgo.Opt{}, opts...), kgo.FetchIsolationLevel(iso))
	setContext("expect", expect)
	switch {
	case group != "":
		setContext("group", group)
		copts = append(copts, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	case len(seeks) > 0:
		parts := map[int32]kgo.Offset{}
		for _, s := range seeks {
			p, o, found := strings.Cut(s, ":")
			pn, err1 := strconv.Atoi(p)
			on, err2 := strconv.ParseInt(o, 10, 64)
			if !found || err1 != nil || err2 != nil {
				return 0, usageErr("--seek expects PARTITION:OFFSET, got %q", s)
			}
			parts[int32(pn)] = kgo.NewOffset().At(on)
		}
		copts = append(copts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	default:
		admin, err := kgo.NewClient(opts...)
		if err != nil {
			return 0, err
		}
		ends, err := listOffsets(d, admin, topic, -1, false)
		admin.Close()
		if err != nil {
			return 0, err
		}
		parts := map[int32]kgo.Offset{}
		for p := range ends {
			parts[p] = kgo.NewOffset().AtStart()
		}
		copts = append(copts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}))
	}
	cl, err := kgo.NewClient(copts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n, nbytes := 0, 0
	for n < expect && !d.expired() {
		pctx, cancel := d.capped(time.Second)
		f := cl.PollFetches(pctx)
		cancel()
		f.EachError(func(t string, p int32, err error) {
			if err != context.DeadlineExceeded && err != context.Canceled {
				logf("fetch error %s-%d: %v", t, p, err)
			}
		})
		for _, r := range f.Records() {
			if n >= expect {
				break
			}
			var index any
			hs := [][]any{}
			for _, h := range r.Headers {
				var v any
				if h.Value != nil {
					v = string(h.Value)
				}
				hs = append(hs, []any{h.Key, v})
				if h.Key == "n" && index == nil && h.Value != nil {
					if x, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
						index = x
					}
				}
			}
			line := obj{"type": "record", "partition": r.Partition, "offset": r.Offset, "size": nil, "sha256": nil,
				"headers": hs, "key": nullable(r.Key), "index": index}
			if r.Value != nil {
				line["size"], line["sha256"] = len(r.Value), sha(r.Value)
			}
			emit(line)
			n++
			nbytes += len(r.Value)
			if group != "" {
				// A commit failing on a connection error (the coordinator's
				// broker went away) is retried, as an application would.
				for {
					cctx, cancel := d.capped(30 * time.Second)
					err := cl.CommitRecords(cctx, r)
					cancel()
					if err == nil {
						break
					}
					if d.expired() {
						return 0, fmt.Errorf("commit %d-%d: %w", r.Partition, r.Offset, err)
					}
					logf("commit %d-%d: %v; retrying", r.Partition, r.Offset, err)
					time.Sleep(100 * time.Millisecond) // bounded by the deadline
				}
			}
			if stopAfter > 0 && n >= stopAfter {
				summary(true, obj{"count": n, "bytes": nbytes, "halted": true, "elapsed_ms": d.elapsedMs()})
				os.Exit(exitOK) // no close, no LeaveGroup: like a crash
			}
		}
	}
	ok := n == expect
	f := obj{"count": n, "bytes": nbytes, "elapsed_ms": d.elapsedMs()}
	if !ok {
		f["error"] = fmt.Sprintf("read %d of %d record(s) within the timeout (%d ms)", n, expect, d.timeoutMs)
	}
	return summary(ok, f), nil
}
