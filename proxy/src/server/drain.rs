//! Draining on SIGTERM: one flag that every listener, connection and the
//! readiness probe watch, and the count of client connections still open,
//! so the proxy knows when the last one has closed (or how many the
//! deadline cut).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::info;

use crate::metrics;

/// The drain flag and the open-connection count of one proxy.
pub struct Drain {
    flag: watch::Sender<bool>,
    open: watch::Sender<usize>,
    /// Connections that ended after the drain began.
    closed_while_draining: AtomicUsize,
}

/// One open client connection; dropping it counts the connection closed.
pub struct Tracked(Arc<Drain>);

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections open when the drain began.
    pub open: usize,
    /// Connections that closed at a request boundary before the deadline.
    pub closed: usize,
    /// Connections still open at the deadline (cut when the process exits).
    pub cut: usize,
    pub elapsed: Duration,
}

impl Drain {
    pub fn new() -> Arc<Drain> {
        Arc::new(Drain {
            flag: watch::channel(false).0,
            open: watch::channel(0).0,
            closed_while_draining: AtomicUsize::new(0),
        })
    }

    /// True once the drain has begun (listeners stop, connections stop
    /// reading at their next request boundary, readiness turns false).
    pub fn flag(&self) -> watch::Receiver<bool> {
        self.flag.subscribe()
    }

    /// Counts a client connection open until the guard is dropped.
    pub fn track(self: &Arc<Drain>) -> Tracked {
        self.open.send_modify(|n| *n += 1);
        Tracked(self.clone())
    }

    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Begins the drain and waits until every connection has closed or
    /// `timeout` has passed; logs both ends and says how many were cut.
    pub async fn run(&self, timeout: Duration) -> DrainReport {
        let started = Instant::now();
        // Counted before the flag flips: a connection at a request boundary
        // closes the moment it sees the flag, and it was open when the
        // drain began.
        let open = self.open();
        self.flag.send_replace(true);
        metrics::draining(true);
        info!(
            connections = open,
            drain_timeout_ms = timeout.as_millis() as u64,
            "drain started: not ready, listeners closed, connections close after their responses"
        );
        let mut count = self.open.subscribe();
        let cut = match tokio::time::timeout(timeout, count.wait_for(|n| *n == 0)).await {
            Ok(_) => 0,
            Err(_) => self.open(),
        };
        let report = DrainReport {
            open,
            closed: self.closed_while_draining.load(Ordering::Relaxed),
            cut,
            elapsed: started.elapsed(),
        };
        metrics::drained(report.closed, report.cut);
        info!(
            closed_cleanly = report.closed,
            cut_at_deadline = report.cut,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "drain finished"
        );
        report
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if *self.0.flag.borrow() {
            self.0.closed_while_draining.fetch_add(1, Ordering::Relaxed);
        }
        self.0.open.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ends_when_the_last_connection_closes() {
        crate::metrics::install();
        let drain = Drain::new();
        let (a, b) = (drain.track(), drain.track());
        let mut flag = drain.flag();
        let closer = tokio::spawn(async move {
            flag.wait_for(|d| *d).await.unwrap();
            drop(a);
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(b);
        });
        let r = drain.run(Duration::from_secs(5)).await;
        closer.await.unwrap();
        assert_eq!((r.open, r.closed, r.cut), (2, 2, 0));
        assert_eq!(r.elapsed, Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn counts_the_connections_the_deadline_cuts() {
        crate::metrics::install();
        let drain = Drain::new();
        let _stuck = drain.track();
        let done = drain.track();
        let mut flag = drain.flag();
        tokio::spawn(async move {
            flag.wait_for(|d| *d).await.unwrap();
            drop(done);
        });
        let r = drain.run(Duration::from_secs(2)).await;
        assert_eq!((r.open, r.closed, r.cut), (2, 1, 1));
        assert_eq!(r.elapsed, Duration::from_secs(2));
    }
}
