//! Rotating JSONL files of one mirrored topic: `mirror-<topic>-<n>.jsonl`
//! in the policy's `jsonl_dir`, the next `n` once a file reaches
//! `rotate_bytes`, the oldest deleted past `keep_files`. Blocking I/O: the
//! sink calls it on a blocking thread.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use strait_policies::mirror::JsonlSink;

pub struct Writer {
    dir: PathBuf,
    topic: String,
    rotate_bytes: u64,
    keep_files: u32,
    /// The file written now, its number and size.
    open: Option<(File, u64, u64)>,
}

impl Writer {
    pub fn new(cfg: &JsonlSink, topic: &str) -> Writer {
        Writer {
            dir: cfg.dir.clone(),
            topic: topic.to_string(),
            rotate_bytes: cfg.rotate_bytes,
            keep_files: cfg.keep_files,
            open: None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("mirror-{}-{n}.jsonl", self.topic))
    }

    /// Appends one line per item (each without its newline). On an error
    /// the file is closed, to be opened again by the next call.
    pub fn write<'a>(&mut self, lines: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
        let result = self.write_all(lines);
        if result.is_err() {
            self.open = None;
        }
        result
    }

    fn write_all<'a>(&mut self, lines: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
        let mut buf = Vec::new();
        for line in lines {
            let (_, _, size) = self.file()?;
            let len = line.len() as u64 + 1;
            if *size > 0 && *size + buf.len() as u64 + len > self.rotate_bytes {
                self.flush(&mut buf)?;
                self.rotate()?;
            }
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        self.flush(&mut buf)
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let (file, _, size) = self.file()?;
        file.write_all(buf)?;
        *size += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    /// The open file; the first time, the highest-numbered existing one
    /// (appended to) or number 0.
    fn file(&mut self) -> io::Result<&mut (File, u64, u64)> {
        if self.open.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let n = self.numbers()?.into_iter().max().unwrap_or(0);
            let file = append(&self.path(n))?;
            let size = file.metadata()?.len();
            self.open = Some((file, n, size));
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        let n = self.open.as_ref().map_or(0, |o| o.1) + 1;
        self.open = None;
        let file = append(&self.path(n))?;
        self.open = Some((file, n, 0));
        let keep = u64::from(self.keep_files);
        for old in self.numbers()? {
            if old + keep <= n {
                match std::fs::remove_file(self.path(old)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Numbers of this topic's files in the directory.
    fn numbers(&self) -> io::Result<Vec<u64>> {
        let prefix = format!("mirror-{}-", self.topic);
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let name = e?.file_name();
            let n = name
                .to_str()
                .and_then(|s| s.strip_prefix(&prefix))
                .and_then(|s| s.strip_suffix(".jsonl"))
                .and_then(|s| s.parse::<u64>().ok());
            out.extend(n);
        }
        Ok(out)
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("strait-mirror-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn files_rotate_at_their_size_and_only_the_newest_are_kept() {
        let d = dir("rotate");
        let cfg = JsonlSink {
            dir: d.clone(),
            rotate_bytes: 100,
            keep_files: 2,
        };
        let mut w = Writer::new(&cfg, "orders-1");
        let line = [b'x'; 39]; // 40 bytes with its newline: two per file
        for _ in 0..7 {
            w.write([&line[..]]).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["mirror-orders-1-2.jsonl", "mirror-orders-1-3.jsonl"]
        );
        let sizes: Vec<u64> = names
            .iter()
            .map(|n| std::fs::metadata(d.join(n)).unwrap().len())
            .collect();
        assert_eq!(sizes, [80, 40]);
        // A new writer (a restart) appends to the newest file.
        let mut again = Writer::new(&cfg, "orders-1");
        again.write([&line[..]]).unwrap();
        assert_eq!(std::fs::metadata(w.path(3)).unwrap().len(), 80);
        // Another topic whose name extends this one's is not counted.
        let mut other = Writer::new(&cfg, "orders");
        other.write([&b"{}"[..]]).unwrap();
        assert!(d.join("mirror-orders-0.jsonl").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_and_the_next_call_tries_again() {
        let d = dir("unwritable");
        std::fs::create_dir_all(&d).unwrap();
        let file = d.join("a-file");
        std::fs::write(&file, b"").unwrap();
        let cfg = JsonlSink {
            dir: file.join("under"),
            rotate_bytes: 1 << 20,
            keep_files: 1,
        };
        let mut w = Writer::new(&cfg, "t");
        assert!(w.write([&b"{}"[..]]).is_err());
        assert!(w.write([&b"{}"[..]]).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
