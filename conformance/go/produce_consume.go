package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produce-consume: records with a key, a binary value and headers
// ([own traceparent,] strait-index, dup, dup) produced with acks=all
// (franz-go's idempotent default), every result awaited, then read back by
// a fresh consumer group from the start and compared byte for byte (key,
// value, headers in order) and by offset (the one the produce result gave).
//
// With --trace-header NAME (Strait's trace stage on the topic) a record may
// carry more headers after its own, among them exactly one NAME header with
// a valid W3C traceparent, or none when it was produced with its own
// (--own-traceparent-every K: every K-th record, as its first header).
//
// With --expect-failure (a TLS refusal): ok iff the client never gets a
// response (Ping fails), no record is acknowledged and at least one fails.

var traceparentRe = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

func validTraceparent(v []byte) bool {
	s := string(v)
	return traceparentRe.MatchString(s) && s[3:35] != strings.Repeat("0", 32) && s[36:52] != strings.Repeat("0", 16)
}

func ownTraceparent(i int) []byte {
	return []byte(fmt.Sprintf("00-%032x-%016x-01", 0xABC0000+i+1, 0xDEF000+i+1))
}

func pcValue(run string, i int) []byte {
	v := []byte(fmt.Sprintf("value-%s-%d-", run, i))
	for j := 0; j < 24; j++ { // bytes that are not valid UTF-8: nothing may transcode the value
		v = append(v, byte((i*31+j*7)%256))
	}
	return v
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func produceConsumeCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic (must exist)")
	records := fs.Int("records", 1000, "N")
	compression := fs.String("compression", "none", "producer batch compression: none, gzip, snappy, lz4, zstd")
	traceHeader := fs.String("trace-header", "", "header Strait's trace stage adds")
	ownEvery := fs.Int("own-traceparent-every", 0, "every K-th record carries its own traceparent (needs --trace-header)")
	expectFailure := fs.Bool("expect-failure", false, "ok iff nothing is acknowledged and the connection fails")
	return 60000, func(d *deadline) (int, error) {
		if *topic == "" || *records < 0 {
			return 0, usageErr("--topic is required and --records must be >= 0")
		}
		if *ownEvery < 0 || (*ownEvery > 0 && *traceHeader == "") {
			return 0, usageErr("--own-traceparent-every must be >= 0 and needs --trace-header")
		}
		codec, err := parseCodec(*compression)
		if err != nil {
			return 0, err
		}
		setContext("topic", *topic)
		setContext("records", *records)
		setContext("compression", *compression)
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		run := randomID()
		hasOwn := func(i int) bool { return *ownEvery > 0 && i%*ownEvery == 0 }
		headersOf := func(i int) []kgo.RecordHeader {
			var h []kgo.RecordHeader
			if hasOwn(i) {
				h = append(h, kgo.RecordHeader{Key: *traceHeader, Value: ownTraceparent(i)})
			}
			return append(h,
				kgo.RecordHeader{Key: "strait-index", Value: []byte(strconv.Itoa(i))},
				kgo.RecordHeader{Key: "dup", Value: []byte(fmt.Sprintf("first-%d", i))},
				kgo.RecordHeader{Key: "dup", Value: []byte(fmt.Sprintf("second-%d", i))},
			)
		}
		popts := append(append([]kgo.Opt{}, opts...),
			kgo.DefaultProduceTopic(*topic),
			kgo.ProducerBatchCompression(codec),
			kgo.RecordDeliveryTimeout(clientTimeout(d)),
		)
		cl, err := kgo.NewClient(popts...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()

		// Ping: the first response (or the connection's error, e.g. a TLS refusal).
		pctx, cancel := d.capped(clientTimeout(d))
		pingErr := cl.Ping(pctx)
		cancel()
		if pingErr != nil {
			emit(obj{"type": "error", "phase": "ping", "error": pingErr.Error()})
		}
		if *expectFailure && pingErr == nil {
			return summary(false, obj{"error": "the connection was accepted (Ping answered)"}), nil
		}

		offsets := make([]int64, *records)
		var mu sync.Mutex
		var wg sync.WaitGroup
		acked, failed := 0, 0
		firstErr := ""
		ctx, cancelProduce := d.ctx()
		defer cancelProduce()
		for i := 0; i < *records && !d.expired(); i++ {
			i := i
			r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: pcValue(run, i), Headers: headersOf(i), Partition: -1}
			wg.Add(1)
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					if firstErr == "" {
						firstErr = err.Error()
						emit(obj{"type": "error", "phase": "produce", "index": i, "error": firstErr})
					}
					return
				}
				acked++
				offsets[i] = r.Offset
			})
		}
		wg.Wait()
		setContext("acked", acked)
		setContext("failed", failed)
		if *expectFailure {
			ok := acked == 0 && failed > 0
			f := obj{"ping_error": errText(pingErr), "first_error": firstErr, "elapsed_ms": d.elapsedMs()}
			if !ok {
				f["error"] = fmt.Sprintf("expected a refusal: %d acknowledged, %d failed", acked, failed)
			}
			return summary(ok, f), nil
		}
		if acked != *records {
			return summary(false, obj{"error": fmt.Sprintf("%d of %d acknowledged; first error: %s", acked, *records, firstErr)}), nil
		}
		emit(obj{"type": "produced", "records": acked})
		cl.Close()

		// A fresh group reads everything back.
		group := "strait-fg-" + run
		setContext("group", group)
		cc, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(*topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
		)...)
		if err != nil {
			return 0, err
		}
		defer cc.Close()
		seen := make([]int, *records)
		verified, mismatches, foreign, read := 0, 0, 0, 0
		mismatch := func(i int, r *kgo.Record, what string) {
			mismatches++
			if mismatches <= 20 {
				emit(obj{"type": "mismatch", "index": i, "what": what, "partition": r.Partition, "offset": r.Offset,
					"key": string(r.Key), "headers": headerPairs(r.Headers)})
			}
		}
		for read < *records && !d.expired() {
			pctx, cancel := d.capped(time.Second)
			fetches := cc.PollFetches(pctx)
			cancel()
			fetches.EachError(func(t string, p int32, err error) {
				if err != context.DeadlineExceeded && err != context.Canceled {
					logf("fetch error %s-%d: %v", t, p, err)
				}
			})
			fetches.EachRecord(func(r *kgo.Record) {
				read++
				k := string(r.Key)
				i, err := strconv.Atoi(strings.TrimPrefix(k, "key-"))
				if !strings.HasPrefix(k, "key-") || err != nil || i < 0 || i >= *records {
					foreign++
					mismatch(-1, r, "unexpected key")
					return
				}
				seen[i]++
				switch {
				case !bytes.Equal(r.Value, pcValue(run, i)):
					mismatch(i, r, "value")
				case !headersMatch(headersOf(i), r.Headers, *traceHeader, hasOwn(i)):
					mismatch(i, r, "headers")
				case r.Offset != offsets[i]:
					mismatch(i, r, fmt.Sprintf("offset: produced at %d", offsets[i]))
				default:
					verified++
				}
			})
		}
		missing, duplicates := 0, 0
		for _, n := range seen {
			if n == 0 {
				missing++
			} else {
				duplicates += n - 1
			}
		}
		ok := verified == *records && mismatches == 0 && duplicates == 0
		f := obj{"verified": verified, "consumed": read, "missing": missing, "duplicates": duplicates,
			"mismatches": mismatches, "foreign": foreign, "elapsed_ms": d.elapsedMs()}
		if !ok {
			f["error"] = fmt.Sprintf("%d of %d verified (%d missing, %d duplicates, %d mismatches)", verified, *records, missing, duplicates, mismatches)
		}
		return summary(ok, f), nil
	}
}

// headersMatch: the produced headers in order, then (with a trace header)
// only Strait's additions, among them exactly one valid traceparent unless
// the record had its own.
func headersMatch(want, got []kgo.RecordHeader, traceHeader string, own bool) bool {
	if len(got) < len(want) {
		return false
	}
	for j, h := range want {
		if got[j].Key != h.Key || !bytes.Equal(got[j].Value, h.Value) {
			return false
		}
	}
	if traceHeader == "" {
		return len(got) == len(want)
	}
	var added [][]byte
	for _, h := range got[len(want):] {
		if h.Key == traceHeader {
			added = append(added, h.Value)
		}
	}
	if own {
		return len(added) == 0
	}
	return len(added) == 1 && validTraceparent(added[0])
}

func headerPairs(hs []kgo.RecordHeader) [][]any {
	out := [][]any{}
	for _, h := range hs {
		var v any
		if h.Value != nil {
			v = string(h.Value)
		}
		out = append(out, []any{h.Key, v})
	}
	return out
}

func errText(err error) any {
	if err == nil {
		return nil
	}
	return err.Error()
}

// clientTimeout is what client-side timeouts get: the time left minus a
// margin (min(10 s, max(2 s, 1/5))), so the client's own timeout error
// arrives before the driver's deadline.
func clientTimeout(d *deadline) time.Duration {
	left := d.remaining()
	margin := left / 5
	if margin < 2*time.Second {
		margin = 2 * time.Second
	}
	if margin > 10*time.Second {
		margin = 10 * time.Second
	}
	if left-margin < time.Second {
		return time.Second
	}
	return left - margin
}

func parseCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), usageErr("--compression must be none, gzip, snappy, lz4 or zstd, got %q", name)
}
