//! Strait's CPU time and memory, from /proc: the threads of this process
//! that are not the bench's (Strait in-process), or another process (a
//! running Strait on this machine, found by its listening port).

use std::path::{Path, PathBuf};

/// Prefix of the bench's own thread names (its load runtime); the main
/// thread (tid = pid) is the bench's too.
pub const BENCH_THREADS: &str = "bench-";
/// /proc's clock ticks per second (USER_HZ: 100 on every Linux ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// Whose CPU is counted.
#[derive(Debug, Clone)]
pub enum Meter {
    /// Every thread of this process but the main one and the bench's.
    InProcess,
    /// Another process.
    Pid(u32),
    /// Not measurable (a Strait on another machine).
    None,
}

impl Meter {
    /// CPU seconds used so far, or None when not measurable.
    pub fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Meter::InProcess => {
                let me = std::process::id().to_string();
                let mut total = 0.0;
                for task in std::fs::read_dir("/proc/self/task").ok()? {
                    let dir = task.ok()?.path();
                    let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                    let is_main = dir.file_name().is_some_and(|n| n == me.as_str());
                    if is_main || comm.starts_with(BENCH_THREADS) {
                        continue;
                    }
                    // A thread that ended between the listing and the read
                    // counts no more (its time stays in the process's).
                    total += task_seconds(&dir).unwrap_or(0.0);
                }
                Some(total)
            }
            Meter::Pid(pid) => task_seconds(&PathBuf::from(format!("/proc/{pid}"))),
            Meter::None => None,
        }
    }

    /// Peak resident memory in MiB (VmHWM): the whole process in-process
    /// (the bench's buffers included), the other process's otherwise.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = match self {
            Meter::InProcess => std::fs::read_to_string("/proc/self/status").ok()?,
            Meter::Pid(pid) => std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
            Meter::None => return None,
        };
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }
}

/// CPU seconds of the bench's own load threads (`bench-*`) so far: the
/// yardstick Strait's CPU is divided by to compare runs on machines of
/// different speed.
pub fn load_seconds() -> Option<f64> {
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.starts_with(BENCH_THREADS) {
            total += task_seconds(&dir).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// CPU time of a /proc task or process directory, in seconds: from
/// `schedstat` (nanoseconds on the CPU; for a process, its main thread
/// only, so processes use `stat`), else utime + stime from `stat` (ticks).
fn task_seconds(dir: &Path) -> Option<f64> {
    if dir.parent().is_some_and(|p| p.ends_with("task")) {
        if let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            return Some(ns as f64 / 1e9);
        }
    }
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. utime and stime are fields 14 and 15 (11 and 12 after it).
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_SEC)
}

/// The process on this machine listening on `port` (TCP, IPv4 or IPv6).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let want = format!("{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is ADDR:PORT in hex; state 0A is LISTEN.
            if f.len() > 9 && f[3] == "0A" && f[1].rsplit(':').next() == Some(want.as_str()) {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_cpu_and_memory() {
        let m = Meter::Pid(std::process::id());
        let before = m.cpu_seconds().unwrap();
        let mut x = 0u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(m.cpu_seconds().unwrap() >= before);
        assert!(m.peak_rss_mib().unwrap() > 0.0);
        assert!(Meter::None.cpu_seconds().is_none());
    }

    #[test]
    fn finds_the_process_listening_on_a_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
        drop(l);
        assert_eq!(pid_listening_on(port), None);
    }
}
