package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// group: T (must exist, --partitions partitions) gets N records, key =
// index, value "value-<index>", record i on partition i % P, acks=all. Two
// members of one group (franz-go's default cooperative-sticky balancer,
// auto-commit off) join with fetching paused until both hold a non-empty
// share of the partitions (disjoint, covering all). Each consumes at least
// --part-records (or its partitions to their end), committing each poll's
// records synchronously. Member 2 commits and closes (LeaveGroup); member 1
// must be assigned every partition, resumes and reads to the end. Checks:
// every index seen exactly once, member 1's first offset per partition after
// the leave equals the last committed offset (0 when none), and the group's
// committed offsets (OffsetFetch) equal the end offsets.

type member struct {
	id       int
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
	consumed int
}

func (m *member) assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p, ok := range m.assigned {
		if ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

func groupCmd(fs *flag.FlagSet, c *common) (int, func(*deadline) (int, error)) {
	topic := fs.String("topic", "", "topic (must exist)")
	records := fs.Int("records", 2000, "N")
	partitions := fs.Int("partitions", 4, "partitions of T")
	part := fs.Int("part-records", 0, "records each member consumes before member 2 leaves (default N/10)")
	group := fs.String("group", "", "group id (default strait-fg-group-<random>)")
	return 90000, func(d *deadline) (int, error) {
		if *topic == "" || *records < 1 || *partitions < 2 {
			return 0, usageErr("--topic is required, --records >= 1, --partitions >= 2")
		}
		if *part <= 0 {
			*part = *records / 10
			if *part < 1 {
				*part = 1
			}
		}
		if *group == "" {
			*group = "strait-fg-group-" + randomID()
		}
		setContext("topic", *topic)
		setContext("group", *group)
		setContext("records", *records)
		opts, err := c.opts()
		if err != nil {
			return 0, err
		}

		// Produce: record i to partition i % P.
		setContext("phase", "produce")
		pc, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
			kgo.DefaultProduceTopic(*topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RecordDeliveryTimeout(clientTimeout(d)))...)
		if err != nil {
			return 0, err
		}
		ctx, cancel := d.ctx()
		defer cancel()
		var rs []*kgo.Record
		for i := 0; i < *records; i++ {
			rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i)), Partition: int32(i % *partitions)})
		}
		results := pc.ProduceSync(ctx, rs...)
		pc.Close()
		if err := results.FirstErr(); err != nil {
			return 0, fmt.Errorf("produce: %w", err)
		}
		end := map[int32]int64{}
		for _, r := range results {
			if r.Record.Offset+1 > end[r.Record.Partition] {
				end[r.Record.Partition] = r.Record.Offset + 1
			}
		}
		emit(obj{"type": "produced", "records": len(results), "end_offsets": end})

		var seenMu sync.Mutex
		seen := make([]int, *records)
		badValues := 0
		lastCommitted := map[int32]int64{}
		newMember := func(id int) (*member, error) {
			m := &member{id: id, assigned: map[int32]bool{}}
			cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...),
				kgo.ConsumerGroup(*group),
				kgo.ConsumeTopics(*topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.DisableAutoCommit(),
				kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
					m.mu.Lock()
					for _, p := range a[*topic] {
						m.assigned[p] = true
					}
					m.mu.Unlock()
					logf("member %d: assigned %v", id, a[*topic])
				}),
				kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
					m.mu.Lock()
					for _, p := range r[*topic] {
						delete(m.assigned, p)
					}
					m.mu.Unlock()
					logf("member %d: revoked %v", id, r[*topic])
				}),
				kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
					m.mu.Lock()
					for _, p := range l[*topic] {
						delete(m.assigned, p)
					}
					m.mu.Unlock()
					logf("member %d: lost %v", id, l[*topic])
				}),
			)...)
			if err != nil {
				return nil, err
			}
			// Nothing is fetched until the member is meant to consume.
			cl.PauseFetchTopics(*topic)
			m.cl = cl
			return m, nil
		}
		// consume polls m until done() (checked after each poll), committing
		// every poll's records synchronously; first (if not nil) gets the
		// first offset read per partition.
		consume := func(m *member, first map[int32]int64, done func() bool) error {
			m.cl.ResumeFetchTopics(*topic)
			defer m.cl.PauseFetchTopics(*topic)
			for !done() {
				if d.expired() {
					return fmt.Errorf("member %d: deadline while consuming (%d consumed)", m.id, m.consumed)
				}
				pctx, cancel := d.capped(200 * time.Millisecond)
				// At most 50 records a poll, so a member's part is a part.
				f := m.cl.PollRecords(pctx, 50)
				cancel()
				var errs []string
				f.EachError(func(t string, p int32, err error) {
					if err != context.DeadlineExceeded && err != context.Canceled {
						errs = append(errs, fmt.Sprintf("%s-%d: %v", t, p, err))
					}
				})
				if len(errs) > 0 {
					logf("member %d: fetch errors %v", m.id, errs)
				}
				recs := f.Records()
				if len(recs) == 0 {
					continue
				}
				for _, r := range recs {
					if first != nil {
						if _, ok := first[r.Partition]; !ok {
							first[r.Partition] = r.Offset
						}
					}
					i, err := strconv.Atoi(string(r.Key))
					seenMu.Lock()
					if err != nil || i < 0 || i >= *records || string(r.Value) != "value-"+string(r.Key) {
						badValues++
					} else {
						seen[i]++
					}
					seenMu.Unlock()
				}
				m.consumed += len(recs)
				cctx, cancel := d.capped(30 * time.Second)
				err := m.cl.CommitRecords(cctx, recs...)
				cancel()
				if err != nil {
					return fmt.Errorf("member %d: commit: %w", m.id, err)
				}
				seenMu.Lock()
				for _, r := range recs {
					if r.Offset+1 > lastCommitted[r.Partition] {
						lastCommitted[r.Partition] = r.Offset + 1
					}
				}
				seenMu.Unlock()
			}
			return nil
		}
		// caughtUp: every partition m holds is read to its end.
		positions := func(m *member) map[int32]int64 {
			seenMu.Lock()
			defer seenMu.Unlock()
			out := map[int32]int64{}
			for _, p := range m.assignment() {
				out[p] = lastCommitted[p]
			}
			return out
		}
		caughtUp := func(m *member) bool {
			a := positions(m)
			if len(a) == 0 {
				return false
			}
			for p, pos := range a {
				if pos < end[p] {
					return false
				}
			}
			return true
		}
		waitFor := func(what string, cond func() bool) error {
			for pause := 10 * time.Millisecond; !cond(); {
				if d.expired() {
					return fmt.Errorf("deadline waiting for %s", what)
				}
				time.Sleep(pause) // bounded polling of the members' callback state
				if pause < 200*time.Millisecond {
					pause *= 2
				}
			}
			return nil
		}

		setContext("phase", "join")
		m1, err := newMember(1)
		if err != nil {
			return 0, err
		}
		defer m1.cl.Close()
		m2, err := newMember(2)
		if err != nil {
			return 0, err
		}
		closed2 := false
		defer func() {
			if !closed2 {
				m2.cl.Close()
			}
		}()
		err = waitFor("both members to hold disjoint, non-empty shares of every partition", func() bool {
			a, b := m1.assignment(), m2.assignment()
			if len(a) == 0 || len(b) == 0 || len(a)+len(b) != *partitions {
				return false
			}
			union := map[int32]bool{}
			for _, p := range append(append([]int32{}, a...), b...) {
				union[p] = true
			}
			return len(union) == *partitions
		})
		if err != nil {
			return 0, err
		}
		emit(obj{"type": "assignment", "when": "before", "member": 1, "partitions": m1.assignment()})
		emit(obj{"type": "assignment", "when": "before", "member": 2, "partitions": m2.assignment()})

		setContext("phase", "part")
		for _, m := range []*member{m1, m2} {
			m := m
			if err := consume(m, nil, func() bool { return m.consumed >= *part || caughtUp(m) }); err != nil {
				return 0, err
			}
			emit(obj{"type": "part", "member": m.id, "consumed": m.consumed})
		}

		setContext("phase", "leave")
		seenMu.Lock()
		committedAtLeave := map[int32]int64{}
		for p := int32(0); p < int32(*partitions); p++ {
			committedAtLeave[p] = lastCommitted[p]
		}
		seenMu.Unlock()
		m2.cl.Close() // commits nothing more: every poll was committed; leaves the group
		closed2 = true
		err = waitFor("member 1 to be assigned every partition after member 2 left", func() bool {
			return len(m1.assignment()) == *partitions
		})
		if err != nil {
			return 0, err
		}
		emit(obj{"type": "assignment", "when": "after", "member": 1, "partitions": m1.assignment()})

		setContext("phase", "finish")
		first := map[int32]int64{}
		if err := consume(m1, first, func() bool { return caughtUp(m1) }); err != nil {
			return 0, err
		}
		resumeMismatches := 0
		for p, off := range first {
			if off != committedAtLeave[p] {
				resumeMismatches++
			}
		}
		emit(obj{"type": "resume", "first_offsets": first, "committed_at_leave": committedAtLeave})

		// The group's committed offsets, as the coordinator has them.
		setContext("phase", "offset fetch")
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = *group
		t := kmsg.NewOffsetFetchRequestTopic()
		t.Topic = *topic
		for p := int32(0); p < int32(*partitions); p++ {
			t.Partitions = append(t.Partitions, p)
		}
		req.Topics = append(req.Topics, t)
		octx, cancel2 := d.capped(30 * time.Second)
		resp, err := req.RequestWith(octx, m1.cl)
		cancel2()
		if err != nil {
			return 0, fmt.Errorf("offset fetch: %w", err)
		}
		committed := map[int32]int64{}
		offsetMismatches := 0
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				committed[rp.Partition] = rp.Offset
			}
		}
		for p := int32(0); p < int32(*partitions); p++ {
			if committed[p] != end[p] {
				offsetMismatches++
			}
		}
		emit(obj{"type": "committed_offsets", "offsets": committed})
		setContext("phase", nil)
		missing, duplicates := 0, 0
		for _, n := range seen {
			if n == 0 {
				missing++
			} else {
				duplicates += n - 1
			}
		}
		ok := missing == 0 && duplicates == 0 && badValues == 0 && resumeMismatches == 0 && offsetMismatches == 0 &&
			len(first) > 0
		f := obj{"missing": missing, "duplicates": duplicates, "bad_values": badValues, "resume_mismatches": resumeMismatches,
			"offset_mismatches": offsetMismatches, "member1_consumed": m1.consumed, "member2_consumed": m2.consumed,
			"elapsed_ms": d.elapsedMs()}
		if !ok {
			f["error"] = "group checks failed"
		}
		return summary(ok, f), nil
	}
}
