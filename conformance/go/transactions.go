package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// transactions: --transactions T transactions of --per-transaction K records
// to TOPIC (must exist) from one transactional producer (transactional id
// strait-fg-txn-<run>); every A-th transaction (the A-th, 2A-th, ...) is
// aborted after all its records were acknowledged, the others committed.
// Keys "t<transaction>-<index>", values "<run>-<transaction>-<index>". Then
// TOPIC is read from the start to the last stable offset read_committed:
// each committed record exactly once, value intact, no aborted record;
// and read_uncommitted: the aborted records are in the log too (so their
// absence above is the isolation, not a lost write). With --trace-header
// NAME every record read committed carries exactly one valid traceparent.
func transactionsCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic (must exist)")
	transactions := fs.Int("transactions", 20, "T")
	per := fs.Int("per-transaction", 50, "K")
	abortEvery := fs.Int("abort-every", 3, "A: every A-th transaction is aborted")
	traceHeader := fs.String("trace-header", "", "header Strait's trace stage adds")
	return 90000, func(d *deadline) (int, error) {
		if *topic == "" || *transactions < 1 || *per < 1 || *abortEvery < 1 {
			return 0, usageErr("--topic is required; --transactions, --per-transaction, --abort-every >= 1")
		}
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}
		run := randomID()
		txnID := "strait-fg-txn-" + run
		setContext("topic", *topic)
		setContext("transactional_id", txnID)
		cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
			kgo.DefaultProduceTopic(*topic), kgo.TransactionalID(txnID),
			kgo.RecordDeliveryTimeout(clientTimeout(d)))...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		committed, aborted := map[string]string{}, map[string]bool{}
		ctx, cancel := d.ctx()
		defer cancel()
		for t := 1; t <= *transactions; t++ {
			setContext("phase", fmt.Sprintf("transaction %d", t))
			if err := cl.BeginTransaction(); err != nil {
				return 0, fmt.Errorf("begin transaction %d: %w", t, err)
			}
			var rs []*kgo.Record
			for i := 0; i < *per; i++ {
				rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("t%d-%d", t, i)), Value: []byte(fmt.Sprintf("%s-%d-%d", run, t, i))})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				_ = cl.AbortBufferedRecords(ctx)
				_ = cl.EndTransaction(ctx, kgo.TryAbort)
				return 0, fmt.Errorf("produce in transaction %d: %w", t, err)
			}
			abort := t%*abortEvery == 0
			how := kgo.TryCommit
			if abort {
				how = kgo.TryAbort
			}
			if err := cl.EndTransaction(ctx, how); err != nil {
				return 0, fmt.Errorf("end transaction %d (abort %v): %w", t, abort, err)
			}
			for _, r := range rs {
				if abort {
					aborted[string(r.Key)] = true
				} else {
					committed[string(r.Key)] = string(r.Value)
				}
			}
		}
		cl.Close()
		emit(obj{"type": "produced", "committed": len(committed), "aborted": len(aborted)})

		setContext("phase", "read_committed")
		seen := map[string]int{}
		badValues, abortedSeen, foreign, badTrace, consumed := 0, 0, 0, 0, 0
		problem := func(what string, r *kgo.Record) {
			if badValues+abortedSeen+foreign+badTrace <= 20 {
				emit(obj{"type": "problem", "what": what, "key": nullable(r.Key), "value": nullable(r.Value), "offset": r.Offset})
			}
		}
		_, err = readTopic(d, opts, *topic, true, func(r *kgo.Record) {
			consumed++
			k := string(r.Key)
			switch want, ok := committed[k]; {
			case aborted[k]:
				abortedSeen++
				problem("aborted record read", r)
			case !ok:
				foreign++
				problem("unknown record", r)
			case string(r.Value) != want:
				badValues++
				problem("value", r)
			default:
				seen[k]++
			}
			if *traceHeader != "" {
				var tps [][]byte
				for _, h := range r.Headers {
					if h.Key == *traceHeader {
						tps = append(tps, h.Value)
					}
				}
				if len(tps) != 1 || !validTraceparent(tps[0]) {
					badTrace++
					problem("traceparent", r)
				}
			}
		})
		if err != nil {
			return 0, err
		}
		setContext("phase", "read_uncommitted")
		abortedInLog := 0
		runPrefix := run + "-"
		_, err = readTopic(d, opts, *topic, false, func(r *kgo.Record) {
			if aborted[string(r.Key)] && strings.HasPrefix(string(r.Value), runPrefix) {
				abortedInLog++
			}
		})
		if err != nil {
			return 0, err
		}
		setContext("phase", "checked")
		missing, duplicates := 0, 0
		for k := range committed {
			switch n := seen[k]; {
			case n == 0:
				missing++
			default:
				duplicates += n - 1
			}
		}
		ok := missing == 0 && duplicates == 0 && badValues == 0 && abortedSeen == 0 && foreign == 0 && badTrace == 0 &&
			abortedInLog == len(aborted)
		f := obj{"committed": len(committed), "aborted": len(aborted), "consumed": consumed, "distinct": len(seen),
			"missing": missing, "duplicates": duplicates, "bad_values": badValues, "aborted_seen": abortedSeen,
			"foreign": foreign, "bad_traceparents": badTrace, "aborted_in_log": abortedInLog,
			"elapsed_ms": d.elapsedMs()}
		if !ok {
			f["error"] = "transaction checks failed"
		}
		return summary(ok, f), nil
	}
}
