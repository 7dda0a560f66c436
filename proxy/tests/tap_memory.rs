//! The tap's top-keys memory stays under its configured bound
//! (`debug.top_keys_bytes`) however many partitions and distinct keys pass:
//! synthetic observations of 10,000 partitions and 1,000,000 distinct keys,
//! measured with dhat's counting allocator (the heap this test's process really
//! holds, not the sketches' own accounting). Run alone in its own binary so
//! no other test's allocations are counted.

use std::sync::Arc;

use strait_proxy::tap::keys::{KeyCounts, SKETCH_WEIGHT};

// dhat's allocator counts every byte the process holds (the workspace
// forbids unsafe code, so no hand-written one).
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// `keys` distinct keys, spread evenly over every partition of every
/// topic, each partition's given in one call (as a produce request's are).
fn feed(k: &KeyCounts, topics: &[Arc<str>], partitions: u64, keys: u64) {
    use std::io::Write;
    let all = topics.len() as u64 * partitions;
    let per = keys / all;
    let mut arena: Vec<u8> = Vec::with_capacity(per as usize * 24);
    let mut ends: Vec<usize> = Vec::with_capacity(per as usize);
    for (n, t) in topics.iter().enumerate() {
        for p in 0..partitions {
            let first = (n as u64 * partitions + p) * per;
            arena.clear();
            ends.clear();
            for i in first..first + per {
                write!(arena, "customer-{i:012}").unwrap();
                ends.push(arena.len());
            }
            let mut start = 0;
            let batch: Vec<&[u8]> = ends
                .iter()
                .map(|&end| {
                    let key = &arena[start..end];
                    start = end;
                    key
                })
                .collect();
            k.add(t, p as i32, &batch);
        }
    }
}

#[test]
fn ten_thousand_partitions_and_a_million_keys_stay_under_the_bound() {
    let topics: Vec<Arc<str>> = (0..10).map(|t| Arc::from(format!("topic-{t}"))).collect();
    // The default bound with room for every partition, then one that holds
    // a fifth of them (the least recently fed go).
    for (bound, keys) in [(32u64 << 20, 1_000_000), (4 << 20, 200_000)] {
        let profiler = dhat::Profiler::builder().testing().build();
        let base = dhat::HeapStats::get().curr_bytes as u64;
        let k = KeyCounts::new(bound);
        // 10 topics × 1,000 partitions = 10,000 partitions, each sketch
        // seeing more distinct keys than it has counters.
        feed(&k, &topics, 1_000, keys);
        let weight = k.weight();
        let partitions = k.partitions();
        let peak = dhat::HeapStats::get().max_bytes as u64 - base;
        println!(
            "top_keys_bytes bound {bound} B: peak heap {peak} B ({:.0}% of the bound), \
             {partitions} partitions kept, charged {weight} B",
            100.0 * peak as f64 / bound as f64
        );
        assert!(weight <= bound, "charged {weight} over {bound}");
        assert!(peak <= bound, "peak heap {peak} B over the bound {bound} B");
        let want = (bound / u64::from(SKETCH_WEIGHT)).min(10_000);
        assert!(
            partitions + partitions / 10 >= want,
            "{partitions} partitions kept; the bound holds {want}"
        );
        // The charge per sketch is not less than what one really holds.
        let held = dhat::HeapStats::get().curr_bytes as u64 - base;
        assert!(
            held <= partitions * u64::from(SKETCH_WEIGHT) + (1 << 20),
            "{held} B held for {partitions} sketches charged {SKETCH_WEIGHT} B each"
        );
        drop(k);
        drop(profiler);
    }
}
