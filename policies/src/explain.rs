//! `strait policy explain`: the effective policy for a topic, and where it came from.

use std::fmt::Write;

use crate::schema::AcksDef;
use crate::set::PolicySet;

/// A human-readable account of which policy applies to `topic` and why.
pub fn explain(set: &PolicySet, topic: &str) -> String {
    let mut out = String::new();
    let candidates = set.candidates(topic);
    let Some(p) = set.resolve(topic) else {
        let _ = writeln!(out, "topic {topic:?}: no policy applies (passthrough)");
        return out;
    };
    let _ = writeln!(out, "topic {topic:?}: policy {:?}", p.name);
    let _ = writeln!(out, "  from     {}:{}", p.source.file, p.source.line);
    let _ = writeln!(out, "  selector {}", p.selector);
    if let Some(r) = &p.produce {
        let acks = match r.acks {
            AcksDef::Any => "any",
            AcksDef::RequireAll => "require-all",
            AcksDef::Upgrade => "upgrade (acks=1 becomes acks=all)",
        };
        let _ = writeln!(out, "  produce.acks                  = {acks}");
        let _ = writeln!(
            out,
            "  produce.require_idempotent    = {}",
            r.require_idempotent
        );
        let _ = writeln!(
            out,
            "  produce.require_transactional = {}",
            r.require_transactional
        );
        if let Some(m) = r.max_record_bytes {
            let _ = writeln!(out, "  produce.max_record_bytes      = {m}");
        }
        if !r.required_headers.is_empty() {
            let _ = writeln!(
                out,
                "  produce.required_headers      = {:?}",
                r.required_headers
            );
        }
        if let Some(c) = &r.allowed_compression {
            let names: Vec<_> = c.iter().map(|c| c.name()).collect();
            let _ = writeln!(out, "  produce.allowed_compression   = {names:?}");
        }
    }
    if p.fetch.read_committed {
        let _ = writeln!(out, "  fetch.read_committed          = true");
    }
    if let Some(a) = &p.admin {
        if a.partitions != (None, None) {
            let _ = writeln!(
                out,
                "  admin.partitions              = {:?}..={:?}",
                a.partitions.0, a.partitions.1
            );
        }
        if let Some(rf) = a.min_replication_factor {
            let _ = writeln!(out, "  admin.min_replication_factor  = {rf}");
        }
        if let Some(n) = &a.name_pattern {
            let _ = writeln!(out, "  admin.name_pattern            = {:?}", n.as_str());
        }
        if !a.required_configs.is_empty() {
            let _ = writeln!(
                out,
                "  admin.required_configs        = {:?}",
                a.required_configs
            );
        }
        if !a.deny_configs.is_empty() {
            let _ = writeln!(
                out,
                "  admin.deny_configs            = {:?}",
                a.deny_configs
            );
        }
        let _ = writeln!(
            out,
            "  admin.protect_delete          = {}",
            a.protect_delete
        );
    }
    if let Some(c) = &p.compress {
        let level = match c.codec {
            crate::Codec::Gzip | crate::Codec::Zstd => format!(" level {}", c.level),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  compress                      = {}{level}{}",
            c.codec.name(),
            if c.recompress {
                " (also re-compresses other codecs)"
            } else {
                " (uncompressed batches only)"
            }
        );
    }
    if let Some(t) = &p.trace {
        let _ = writeln!(out, "  trace.header                  = {:?}", t.header);
        if let Some(h) = &t.client_id_header {
            let _ = writeln!(out, "  trace.client_id_header        = {h:?}");
        }
        if let Some(h) = &t.received_at_header {
            let _ = writeln!(out, "  trace.received_at_header      = {h:?}");
        }
    }
    if let Some(l) = &p.large_records {
        let names: Vec<_> = l.remedies.iter().map(|r| r.name()).collect();
        let _ = writeln!(
            out,
            "  large_records.threshold     = {} bytes of a value",
            l.threshold
        );
        let _ = writeln!(out, "  large_records.remedies      = {}", names.join(", "));
        if l.uses(crate::Remedy::ClaimCheck) {
            let _ = writeln!(
                out,
                "  large_records.objects       = {}/{topic}/<sha256>",
                l.prefix
            );
        }
        if l.uses(crate::Remedy::Chunk) {
            let _ = writeln!(
                out,
                "  large_records.chunks        = topic {:?}, {} bytes each{}",
                l.chunk_topic_for(topic),
                l.chunk_bytes,
                if l.allow_compacted {
                    ", compacted sources allowed"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            out,
            "  large_records.reserved      = client headers starting with \"strait.\" are refused"
        );
    }
    if let Some(m) = &p.mirror {
        let _ = writeln!(
            out,
            "  mirror                        = {} of records, at most {} bytes/s{}",
            m.sample,
            m.max_bytes_per_sec,
            if p.debug_values {
                ""
            } else {
                ", values hidden"
            }
        );
        if let Some(j) = &m.jsonl {
            let _ = writeln!(
                out,
                "  mirror.jsonl                  = {}/mirror-{topic}-<n>.jsonl, {} bytes a file, {} kept",
                j.dir.display(),
                j.rotate_bytes,
                j.keep_files
            );
        }
        if let Some(t) = &m.topic {
            let _ = writeln!(
                out,
                "  mirror.topic                  = {:?}{}",
                t.name,
                t.bootstrap
                    .as_ref()
                    .map(|b| format!(" on {}", b.join(",")))
                    .unwrap_or_default()
            );
        }
    }
    if candidates.len() > 1 {
        let _ = writeln!(out, "  also matched (less specific, not applied):");
        for c in candidates.iter().skip(1) {
            let _ = writeln!(
                out,
                "    {:?} {} ({}:{})",
                c.name, c.selector, c.source.file, c.source.line
            );
        }
    }
    out
}
