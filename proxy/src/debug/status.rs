//! A partition's consumer status from a sliding window of lag evaluations,
//! by Burrow's rules (github.com/linkedin/Burrow, "Consumer Lag
//! Evaluation Rules"), evaluated on a timer rather than on each commit:
//!
//! - ERR: the committed offset is outside the partition (below its log
//!   start: records were deleted before the group read them; or past its
//!   end: the log was truncated under it).
//! - REWIND: the committed offset went back within the window (a reset or
//!   a seek).
//! - OK: the lag was zero at some point in the window (Burrow's rule 1), or
//!   the window is not full yet.
//! - STALL: the committed offset did not move over the whole window, the
//!   lag stayed above zero, and a live member of the group owns the
//!   partition: the consumer is there but not getting past a record
//!   (Burrow's rule 2).
//! - STOP: the same, but no member owns the partition: nobody consumes it
//!   (Burrow's rule 4; Burrow tells it from the age of the last commit, this
//!   view from the group's membership, which the broker reports whether or
//!   not the consumers connect through Strait).
//! - WARN: the committed offset moved, but the lag never shrank between two
//!   evaluations in the window and is above zero: the consumer falls behind
//!   (Burrow's rule 3).
//! - OK otherwise.

use std::collections::VecDeque;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warn,
    Rewind,
    Stall,
    Stop,
    Err,
}

/// One evaluation of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When, in ms since the epoch.
    pub at_ms: u64,
    pub committed: i64,
    /// The end a consumer reads to (the last stable offset).
    pub end: i64,
    /// Records still to consume.
    pub lag: i64,
}

/// What the window alone does not say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// A live member of the group owns the partition.
    pub owned: bool,
    /// The committed offset is below the log start or past the end.
    pub out_of_range: bool,
}

/// The status of a partition whose last `window.len()` evaluations are
/// `window` (oldest first), a window of `size` when full, and why.
pub fn evaluate(window: &VecDeque<Sample>, size: usize, facts: Facts) -> (Status, &'static str) {
    if facts.out_of_range {
        return (
            Status::Err,
            "the committed offset is outside the partition (below its log start or past its end)",
        );
    }
    let moved_back = window
        .iter()
        .zip(window.iter().skip(1))
        .any(|(a, b)| b.committed < a.committed);
    if moved_back {
        return (
            Status::Rewind,
            "the committed offset went back within the window",
        );
    }
    if window.iter().any(|s| s.lag <= 0) {
        return (Status::Ok, "caught up within the window");
    }
    let (Some(first), Some(last)) = (window.front(), window.back()) else {
        return (Status::Ok, "not evaluated yet");
    };
    if window.len() < size.max(2) {
        return (Status::Ok, "the window is not full yet");
    }
    if first.committed == last.committed {
        return if facts.owned {
            (
                Status::Stall,
                "a member owns the partition but its committed offset has not moved over the window",
            )
        } else {
            (
                Status::Stop,
                "no member owns the partition and its committed offset has not moved over the window",
            )
        };
    }
    let never_shrank = window
        .iter()
        .zip(window.iter().skip(1))
        .all(|(a, b)| b.lag >= a.lag);
    if never_shrank {
        return (
            Status::Warn,
            "consuming, but the lag grew or held at every evaluation of the window",
        );
    }
    (Status::Ok, "consuming")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(points: &[(i64, i64)]) -> VecDeque<Sample> {
        points
            .iter()
            .enumerate()
            .map(|(i, &(committed, lag))| Sample {
                at_ms: 1000 * i as u64,
                committed,
                end: committed + lag,
                lag,
            })
            .collect()
    }

    fn status(points: &[(i64, i64)], owned: bool) -> Status {
        let facts = Facts {
            owned,
            out_of_range: false,
        };
        evaluate(&window(points), points.len(), facts).0
    }

    #[test]
    fn burrow_rules_in_order() {
        // Caught up at some point: OK whatever else.
        assert_eq!(status(&[(5, 3), (8, 0), (8, 4)], false), Status::Ok);
        // Not moving, lag above zero: STALL with an owner, STOP without.
        assert_eq!(status(&[(5, 3), (5, 4), (5, 9)], true), Status::Stall);
        assert_eq!(status(&[(5, 3), (5, 3), (5, 3)], false), Status::Stop);
        // Moving but never gaining: WARN.
        assert_eq!(status(&[(5, 3), (7, 3), (9, 6)], true), Status::Warn);
        // Moving and gaining at least once: OK.
        assert_eq!(status(&[(5, 3), (7, 5), (12, 1)], true), Status::Ok);
        // Went back: REWIND, even when caught up.
        assert_eq!(status(&[(9, 0), (4, 5), (5, 4)], true), Status::Rewind);
    }

    #[test]
    fn out_of_range_is_an_error_and_a_short_window_judges_nothing() {
        let w = window(&[(5, 3), (5, 3)]);
        let facts = Facts {
            owned: true,
            out_of_range: true,
        };
        assert_eq!(evaluate(&w, 2, facts).0, Status::Err);
        let facts = Facts::default();
        assert_eq!(evaluate(&w, 5, facts).0, Status::Ok, "not full yet");
        assert_eq!(evaluate(&VecDeque::new(), 5, facts).0, Status::Ok);
    }
}
