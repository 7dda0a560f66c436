package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// policy-produce: N records to T (must exist): key = index, value = S bytes
// repeating "value-<index>;", the --header k=v headers on every record (in
// order; "--header k" = null value). Producer settings from --acks,
// --no-idempotence, --compression, --partition; every result is awaited
// (delivery timeout = time left minus a margin). One {"type":"error",
// "index","error","code","name","retriable","count","last_index"} line per
// run of identical consecutive errors. ok: every record acknowledged; with
// --expect-failure: none acknowledged, at least one failed.
func policyProduceCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic (must exist)")
	records := fs.Int("records", 5, "N")
	valueBytes := fs.Int("value-bytes", 100, "S")
	acks := fs.String("acks", "all", "all, 1 or 0")
	noIdem := fs.Bool("no-idempotence", false, "turn franz-go's idempotent producer off")
	compression := fs.String("compression", "none", "producer batch compression")
	partition := fs.Int("partition", -1, "send every record to this partition")
	expectFailure := fs.Bool("expect-failure", false, "ok iff none acknowledged and >= 1 failed")
	var headers kvList
	fs.Var(&headers, "header", "k=v header on every record (repeatable; k alone: null value)")
	return 30000, func(d *deadline) (int, error) {
		if *topic == "" || *records < 0 || *valueBytes < 0 {
			return 0, usageErr("--topic is required; --records, --value-bytes >= 0")
		}
		codec, err := parseCodec(*compression)
		if err != nil {
			return 0, err
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		var hs []kgo.RecordHeader
		for _, h := range headers {
			k, v, hasValue := strings.Cut(h, "=")
			if k == "" {
				return 0, usageErr("--header expects k=v, got %q", h)
			}
			var value []byte
			if hasValue {
				value = []byte(v)
			}
			hs = append(hs, kgo.RecordHeader{Key: k, Value: value})
		}
		popts := append(append([]kgo.Opt{}, opts...), kgo.DefaultProduceTopic(*topic),
			kgo.ProducerBatchCompression(codec), kgo.RecordDeliveryTimeout(clientTimeout(d)))
		switch *acks {
		case "all", "-1":
			popts = append(popts, kgo.RequiredAcks(kgo.AllISRAcks()))
		case "1":
			popts = append(popts, kgo.RequiredAcks(kgo.LeaderAck()))
		case "0":
			popts = append(popts, kgo.RequiredAcks(kgo.NoAck()))
		default:
			return 0, usageErr("--acks must be all, 1 or 0")
		}
		if *noIdem {
			popts = append(popts, kgo.DisableIdempotentWrite())
		}
		if *partition >= 0 {
			popts = append(popts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		}
		setContext("topic", *topic)
		setContext("settings", obj{"acks": *acks, "idempotent": !*noIdem, "compression": *compression})
		cl, err := kgo.NewClient(popts...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		type result struct {
			err error
			off int64
		}
		results := make([]*result, *records)
		var mu sync.Mutex
		var wg sync.WaitGroup
		ctx, cancel := d.ctx()
		defer cancel()
		for i := 0; i < *records; i++ {
			i := i
			v := []byte(strings.Repeat(fmt.Sprintf("value-%d;", i), *valueBytes/len(fmt.Sprintf("value-%d;", i))+1)[:*valueBytes])
			r := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: v, Headers: hs, Partition: int32(*partition)}
			wg.Add(1)
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				results[i] = &result{err, r.Offset}
				mu.Unlock()
			})
		}
		wg.Wait()
		acked, failed := 0, 0
		var first obj
		var run obj
		flush := func() {
			if run != nil {
				emit(run)
				run = nil
			}
		}
		for i, r := range results {
			if r.err == nil {
				acked++
				flush()
				continue
			}
			failed++
			line := obj{"type": "error", "index": i, "error": r.err.Error(), "name": errName(r.err), "count": 1, "last_index": i}
			if ke, ok := asKerr(r.err); ok {
				line["code"] = ke.Code
				line["retriable"] = ke.Retriable
			}
			if first == nil {
				first = line
			}
			if run != nil && run["error"] == line["error"] {
				run["count"] = run["count"].(int) + 1
				run["last_index"] = i
				continue
			}
			flush()
			run = line
		}
		flush()
		ok := acked == *records
		if *expectFailure {
			ok = acked == 0 && failed > 0
		}
		f := obj{"acked": acked, "failed": failed, "elapsed_ms": d.elapsedMs()}
		if first != nil {
			f["first_index"], f["first_error"], f["first_name"], f["first_code"] = first["index"], first["error"], first["name"], first["code"]
		}
		if !ok {
			f["error"] = fmt.Sprintf("%d acknowledged, %d failed of %d (expect failure: %v)", acked, failed, *records, *expectFailure)
		}
		return summary(ok, f), nil
	}
}
