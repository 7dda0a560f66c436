//! The open-file limit: every client connection takes two descriptors (the
//! client's socket and its upstream connection), so the common default soft
//! limit of 1024 caps Strait near 500 connections. At start-up Strait raises
//! its soft limit to the hard limit and logs both.

use tracing::{info, warn};

/// Raises the soft RLIMIT_NOFILE to the hard limit.
pub fn raise() {
    let before = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _)) => soft,
        Err(e) => {
            warn!(error = %e, "cannot read the open-file limit");
            return;
        }
    };
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) if now > before => {
            info!(
                from = before,
                to = now,
                "raised the open-file limit (soft RLIMIT_NOFILE) to the hard limit"
            )
        }
        Ok(now) => info!(
            limit = now,
            "open-file limit (soft RLIMIT_NOFILE) already at the hard limit"
        ),
        Err(e) => warn!(limit = before, error = %e, "cannot raise the open-file limit"),
    }
}
