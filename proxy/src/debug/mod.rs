//! Debug tooling from what the cluster and Strait know, served on the
//! admin listener (`admin::debug`) and read by the `strait lag` and
//! `strait stuck` commands: consumer lag per partition per group with a
//! status by Burrow's rules (`lag.rs`, `scan.rs`, `status.rs`), the
//! message a group is stuck on (`stuck.rs`) and the live tail of a topic
//! with filters (`tail.rs`, `filter.rs`, CEL expressions in `cel.rs`), an
//! event's route by trace id (`route.rs`, from the trace index and the
//! observation tap), and each group's recent lag for the web UI
//! (`history.rs`), and the mirror of policies' topics to a topic and JSONL
//! files (`mirror/`). Strait's own requests for these go through an internal
//! Kafka client of their own, so a slow debug read never queues behind
//! chunk writes.

pub mod cel;
pub mod filter;
pub mod history;
pub mod lag;
pub mod mirror;
pub mod route;
pub mod scan;
pub mod seen;
pub mod share;
pub mod status;
pub mod stuck;
pub mod tail;

use std::sync::Arc;

pub use lag::LagBoard;
pub use stuck::Reader;

/// What the debug endpoints read, and who may read them.
#[derive(Clone)]
pub struct Debug {
    pub lag: Arc<LagBoard>,
    pub stuck: Reader,
    pub access: Access,
    /// Live-tail viewers now (bounded).
    pub viewers: Arc<tail::Viewers>,
    /// Traced records and their hops, for event routes.
    pub traces: Arc<crate::pipeline::TraceIndex>,
    /// The observation tap, when on.
    pub tap: Option<Arc<crate::tap::Tap>>,
    /// Other instances' observations, when `debug.share_observations` is on.
    pub shared: Option<Arc<share::Shared>>,
    /// The mirror's readers and their counts.
    pub mirror: Arc<mirror::Board>,
}

/// Who may use the debug API: anyone on a loopback admin listener without
/// a token; with a token, only requests bearing it; off loopback without
/// a token, nobody (never open by omission).
#[derive(Clone, Debug)]
pub enum Access {
    Open,
    Token(Arc<str>),
    Refused,
}

impl Access {
    pub fn new(token: Option<String>, loopback: bool) -> Access {
        match (token, loopback) {
            (Some(t), _) => Access::Token(t.into()),
            (None, true) => Access::Open,
            (None, false) => Access::Refused,
        }
    }

    /// `Ok` or the status and message of the refusal, for an
    /// `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), (u16, &'static str)> {
        match self {
            Access::Open => Ok(()),
            Access::Refused => Err((
                403,
                "the debug API is off: the admin listener is bound beyond loopback and debug.token_file is not set\n",
            )),
            Access::Token(t) => {
                let given = authorization.and_then(|a| a.strip_prefix("Bearer "));
                match given {
                    None => Err((401, "the debug API requires Authorization: Bearer <token>\n")),
                    Some(g) if constant_time_eq(g.as_bytes(), t.as_bytes()) => Ok(()),
                    Some(_) => Err((403, "the bearer token is not the debug API's token\n")),
                }
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_is_never_open_by_omission_off_loopback() {
        assert!(Access::new(None, true).check(None).is_ok());
        assert_eq!(
            Access::new(None, false)
                .check(Some("Bearer x"))
                .unwrap_err()
                .0,
            403
        );
        let a = Access::new(Some("0123456789abcdef".into()), false);
        assert_eq!(a.check(None).unwrap_err().0, 401);
        assert_eq!(a.check(Some("Basic abc")).unwrap_err().0, 401);
        assert_eq!(a.check(Some("Bearer 0123456789abcdeX")).unwrap_err().0, 403);
        assert!(a.check(Some("Bearer 0123456789abcdef")).is_ok());
        // A token also guards a loopback listener.
        let a = Access::new(Some("0123456789abcdef".into()), true);
        assert_eq!(a.check(None).unwrap_err().0, 401);
    }
}
