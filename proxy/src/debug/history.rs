//! A group's recent past for the web UI's sparkline: its total lag and
//! total consume rate at each of the last `debug.lag_window` evaluations,
//! carried from one evaluation of the group to the next (bounded by the
//! window, so its memory is bounded with the groups').

use serde::Serialize;

use super::lag::PartitionLag;

/// One evaluation of a group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// When, in ms since the epoch.
    pub at_ms: u64,
    /// Records still to consume, over the group's partitions.
    pub lag: i64,
    /// Records per second, summed over the partitions.
    pub consume_rate: f64,
}

/// `last` with this evaluation appended, the oldest points dropped past
/// `window`.
pub fn next(last: &[Point], at_ms: u64, partitions: &[PartitionLag], window: usize) -> Vec<Point> {
    let point = Point {
        at_ms,
        lag: partitions.iter().map(|p| p.lag).sum(),
        consume_rate: partitions.iter().map(|p| p.consume_rate).sum(),
    };
    let keep = window.saturating_sub(1).min(last.len());
    let mut out = last[last.len() - keep..].to_vec();
    out.push(point);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_sums_the_partitions_and_keeps_the_last_window() {
        let p = |lag, consume_rate| PartitionLag {
            topic: "t".into(),
            partition: 0,
            committed: 0,
            log_start: 0,
            end_offset: lag,
            stable_offset: lag,
            lag,
            lag_exact: true,
            lag_kafka: lag,
            lag_ms: None,
            produce_rate: 0.0,
            consume_rate,
            member_id: None,
            client_id: None,
            host: None,
            last_commit_ms: None,
            last_consume_ms: None,
            top_keys: None,
            status: crate::debug::status::Status::Ok,
            reason: "",
        };
        let parts = [p(5, 1.5), p(3, 0.5)];
        let mut h = Vec::new();
        for at in 1..=5 {
            h = next(&h, at, &parts, 3);
        }
        assert_eq!(h.iter().map(|x| x.at_ms).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!((h[2].lag, h[2].consume_rate), (8, 2.0));
        assert_eq!(next(&[], 9, &[], 0).len(), 1, "the latest is always kept");
    }
}
