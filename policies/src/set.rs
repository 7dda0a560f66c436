//! Loading: policy files → a validated [`PolicySet`], or every problem with
//! its file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use regex::Regex;

use crate::large::LargeRecordRules;
use crate::schema::{AcksDef, Codec, File, PolicyDef, SelectorDef};
use crate::selector::Selector;

/// A problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Where a policy came from, for messages and `explain`.
#[derive(Debug, Clone)]
pub struct Source {
    pub file: String,
    pub line: usize,
}

/// One validated policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub selector: Selector,
    pub source: Source,
    pub produce: Option<ProduceRules>,
    pub fetch: FetchRules,
    pub admin: Option<AdminRules>,
    pub compress: Option<CompressRules>,
    pub trace: Option<TraceRules>,
    pub large_records: Option<LargeRecordRules>,
    /// Debug tooling may show these topics' values (`[policy.debug]
    /// values`, default true).
    pub debug_values: bool,
    /// `[policy.mirror]`: where the topics' records are copied.
    pub mirror: Option<crate::mirror::MirrorRules>,
}

impl Policy {
    /// Whether produce requests to this policy's topics are inspected
    /// (produce rules or a record pipeline stage).
    pub fn inspects_produce(&self) -> bool {
        self.produce.is_some() || self.rewrites_records()
    }

    /// Whether a record pipeline stage rewrites this policy's batches.
    pub fn rewrites_records(&self) -> bool {
        self.compress.is_some() || self.trace.is_some() || self.large_records.is_some()
    }

    /// Whether fetches of this policy's topics may carry records Strait
    /// restores (claim-checked or chunked values).
    pub fn restores_records(&self) -> bool {
        self.large_records.as_ref().is_some_and(|l| l.restores())
    }
}

/// `[policy.compress]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressRules {
    pub codec: Codec,
    /// The codec's level (gzip and zstd; their defaults when not given).
    pub level: i32,
    pub recompress: bool,
}

/// `[policy.trace]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRules {
    pub header: String,
    pub client_id_header: Option<String>,
    pub received_at_header: Option<String>,
}

/// Default gzip and zstd levels (the Java client's defaults).
pub const GZIP_DEFAULT_LEVEL: i32 = 6;
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRules {
    pub acks: AcksDef,
    pub require_idempotent: bool,
    pub require_transactional: bool,
    pub max_record_bytes: Option<u32>,
    pub required_headers: Vec<String>,
    pub allowed_compression: Option<Vec<Codec>>,
}

impl ProduceRules {
    /// True when checking needs the records, not just batch headers.
    pub fn needs_records(&self) -> bool {
        self.max_record_bytes.is_some() || !self.required_headers.is_empty()
    }

    /// True when checking needs batch headers (acks alone does not).
    pub fn needs_batches(&self) -> bool {
        self.require_idempotent
            || self.require_transactional
            || self.allowed_compression.is_some()
            || self.needs_records()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRules {
    pub read_committed: bool,
}

#[derive(Debug, Clone)]
pub struct AdminRules {
    pub partitions: (Option<i32>, Option<i32>),
    pub min_replication_factor: Option<i16>,
    pub name_pattern: Option<Regex>,
    pub required_configs: BTreeMap<String, String>,
    pub deny_configs: Vec<String>,
    pub protect_delete: bool,
}

/// All policies, validated; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
    exact: std::collections::HashMap<String, usize>,
    produce: bool,
    fetch: bool,
    admin: bool,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub(crate) struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Ctx<'_> {
    pub(crate) fn at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = line_col(self.text, offset);
        self.problems.push(Problem {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }
}

impl PolicySet {
    /// Parses and validates policy files given as `(path, contents)`.
    /// Either every file is good and no two selectors tie, or every problem found is returned.
    pub fn parse(files: &[(String, String)]) -> Result<PolicySet, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut policies: Vec<(Policy, usize)> = Vec::new();
        for (path, text) in files {
            let file: File = match toml::from_str(text) {
                Ok(f) => f,
                Err(e) => {
                    let offset = e.span().map_or(0, |s| s.start);
                    let mut ctx = Ctx {
                        file: path,
                        text,
                        problems: &mut problems,
                    };
                    ctx.at(offset, e.message().to_string());
                    continue;
                }
            };
            let mut ctx = Ctx {
                file: path,
                text,
                problems: &mut problems,
            };
            for def in file.policy {
                let offset = def.span().start;
                if let Some(p) = compile(&mut ctx, def.into_inner()) {
                    policies.push((p, offset));
                }
            }
        }
        // Ties: two selectors that could match one topic at equal precedence.
        for i in 0..policies.len() {
            for j in i + 1..policies.len() {
                let (a, b) = (&policies[i].0, &policies[j].0);
                if a.selector.ties_with(&b.selector) {
                    problems.push(Problem {
                        file: b.source.file.clone(),
                        line: b.source.line,
                        column: 1,
                        message: format!(
                            "policy {:?} ({}) ties with policy {:?} ({}) at {}:{}: both can match the same topic with equal precedence; \
                             make one more specific{}",
                            b.name,
                            b.selector,
                            a.name,
                            a.selector,
                            a.source.file,
                            a.source.line,
                            if matches!(a.selector, Selector::Regex { .. }) { " or give them different priorities" } else { "" }
                        ),
                    });
                }
            }
        }
        mirror_loops(&policies, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut set = PolicySet::default();
        for (p, _) in policies {
            set.produce |= p.inspects_produce();
            set.fetch |= p.fetch.read_committed || p.restores_records();
            set.admin |= p.admin.is_some();
            if let Selector::Exact(name) = &p.selector {
                set.exact.insert(name.clone(), set.policies.len());
            }
            set.policies.push(Arc::new(p));
        }
        Ok(set)
    }

    /// The policy that applies to a topic: the most specific match, else the default, else none.
    pub fn resolve(&self, topic: &str) -> Option<&Arc<Policy>> {
        self.resolve_index(topic).map(|i| &self.policies[i])
    }

    /// Like [`PolicySet::resolve`], as an index into [`PolicySet::policies`].
    pub fn resolve_index(&self, topic: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(topic) {
            return Some(i);
        }
        if !self.has_patterns() {
            return None;
        }
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(p.selector, Selector::Exact(_)) && p.selector.matches(topic))
            .max_by(|(_, a), (_, b)| a.selector.cmp_precedence(&b.selector))
            .map(|(i, _)| i)
    }

    /// The index of the policy whose `exact` selector names `topic`, the
    /// cheap first step of [`PolicySet::resolve_index`].
    pub fn exact_index(&self, topic: &str) -> Option<usize> {
        self.exact.get(topic).copied()
    }

    /// Whether any selector is not `exact` (prefix, glob, regex or default),
    /// so resolving a topic may take more than one lookup.
    pub fn has_patterns(&self) -> bool {
        self.exact.len() < self.policies.len()
    }

    /// How many selectors are globs or regexes (the ones that cost more than
    /// a string comparison to match).
    pub fn pattern_selectors(&self) -> usize {
        self.policies
            .iter()
            .filter(|p| matches!(p.selector, Selector::Glob(_) | Selector::Regex { .. }))
            .count()
    }

    /// Every policy, in load order.
    pub fn policies(&self) -> &[Arc<Policy>] {
        &self.policies
    }

    /// Every policy matching a topic, most specific first (for `explain`).
    pub fn candidates(&self, topic: &str) -> Vec<&Arc<Policy>> {
        let mut v: Vec<_> = self
            .policies
            .iter()
            .filter(|p| p.selector.matches(topic))
            .collect();
        v.sort_by(|a, b| b.selector.cmp_precedence(&a.selector));
        v
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Whether any policy has produce rules (else produce requests are never inspected).
    pub fn has_produce_rules(&self) -> bool {
        self.produce
    }

    pub fn has_fetch_rules(&self) -> bool {
        self.fetch
    }

    pub fn has_admin_rules(&self) -> bool {
        self.admin
    }
}

fn compile(ctx: &mut Ctx<'_>, def: PolicyDef) -> Option<Policy> {
    let name_span = def.name.span().start;
    let name = def.name.into_inner();
    if name.trim().is_empty() {
        ctx.at(name_span, "policy name must not be empty");
    }
    let sel_span = def.topics.span().start;
    let selector = selector(ctx, sel_span, def.topics.into_inner(), def.priority);
    let produce = def.produce.map(|p| {
        let max = p.max_record_bytes.and_then(|m| {
            let at = m.span().start;
            let v = m.into_inner();
            match u32::try_from(v) {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    ctx.at(
                        at,
                        format!(
                            "produce.max_record_bytes must be between 1 and {}, got {v}",
                            u32::MAX
                        ),
                    );
                    None
                }
            }
        });
        for h in &p.required_headers {
            if h.is_empty() {
                ctx.at(
                    sel_span,
                    "produce.required_headers: header names must not be empty",
                );
            }
        }
        if let Some(c) = &p.allowed_compression {
            if c.is_empty() {
                ctx.at(
                    sel_span,
                    "produce.allowed_compression: an empty list would reject every batch",
                );
            }
        }
        ProduceRules {
            acks: p.acks,
            require_idempotent: p.require_idempotent || p.require_transactional,
            require_transactional: p.require_transactional,
            max_record_bytes: max,
            required_headers: p.required_headers,
            allowed_compression: p.allowed_compression,
        }
    });
    let fetch = def
        .fetch
        .map(|f| FetchRules {
            read_committed: f.read_committed,
        })
        .unwrap_or_default();
    let admin = def.admin.map(|a| {
        let at = a.span().start;
        let a = a.into_inner();
        let partitions = match a.partitions {
            None => (None, None),
            Some(r) => {
                let rat = r.span().start;
                let r = r.into_inner();
                let conv = |v: Option<i64>, ctx: &mut Ctx<'_>| {
                    v.and_then(|v| match i32::try_from(v) {
                        Ok(v) if v >= 1 => Some(v),
                        _ => {
                            ctx.at(rat, format!("admin.partitions: {v} is not a partition count (1..=2147483647)"));
                            None
                        }
                    })
                };
                let (min, max) = (conv(r.min, ctx), conv(r.max, ctx));
                if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi {
                        ctx.at(rat, format!("admin.partitions: min {lo} is greater than max {hi}"));
                    }
                }
                if r.min.is_none() && r.max.is_none() {
                    ctx.at(rat, "admin.partitions: give min, max or both");
                }
                (min, max)
            }
        };
        let rf = a.min_replication_factor.and_then(|m| {
            let at = m.span().start;
            let v = m.into_inner();
            match i16::try_from(v) {
                Ok(v) if v >= 1 => Some(v),
                _ => {
                    ctx.at(at, format!("admin.min_replication_factor must be between 1 and 32767, got {v}"));
                    None
                }
            }
        });
        let pattern = a.name_pattern.and_then(|p| {
            let pat = p.span().start;
            match Regex::new(&anchored(p.get_ref())) {
                Ok(r) => Some(r),
                Err(e) => {
                    ctx.at(pat, format!("admin.name_pattern is not a valid regex: {e}"));
                    None
                }
            }
        });
        for k in a.required_configs.keys().chain(a.deny_configs.iter()) {
            if k.is_empty() {
                ctx.at(at, "admin: config names must not be empty");
            }
        }
        AdminRules {
            partitions,
            min_replication_factor: rf,
            name_pattern: pattern,
            required_configs: a.required_configs,
            deny_configs: a.deny_configs,
            protect_delete: a.protect_delete,
        }
    });
    let compress = def.compress.and_then(|c| {
        let at = c.span().start;
        let c = c.into_inner();
        let range = match c.codec {
            Codec::None => {
                ctx.at(at, "compress.codec must be gzip, snappy, lz4 or zstd (\"none\" compresses nothing; remove [policy.compress] instead)");
                return None;
            }
            Codec::Gzip => Some((1, 9, GZIP_DEFAULT_LEVEL)),
            Codec::Zstd => Some((1, 22, ZSTD_DEFAULT_LEVEL)),
            Codec::Snappy | Codec::Lz4 => None,
        };
        let level = match (range, c.level) {
            (Some((_, _, d)), None) => d,
            (Some((lo, hi, _)), Some(l)) if (lo..=hi).contains(&l) => l as i32,
            (Some((lo, hi, _)), Some(l)) => {
                ctx.at(at, format!("compress.level for {} must be between {lo} and {hi}, got {l}", c.codec.name()));
                return None;
            }
            (None, Some(_)) => {
                ctx.at(at, format!("compress.level: {} has no levels; remove it", c.codec.name()));
                return None;
            }
            (None, None) => 0,
        };
        Some(CompressRules {
            codec: c.codec,
            level,
            recompress: c.recompress,
        })
    });
    let trace = def.trace.and_then(|t| {
        let at = t.span().start;
        let t = t.into_inner();
        let header = t.header.unwrap_or_else(|| "traceparent".to_string());
        let names = [
            Some(&header),
            t.client_id_header.as_ref(),
            t.received_at_header.as_ref(),
        ];
        let names: Vec<&String> = names.into_iter().flatten().collect();
        if names.iter().any(|n| n.is_empty()) {
            ctx.at(at, "trace: header names must not be empty");
            return None;
        }
        for (i, a) in names.iter().enumerate() {
            if names[i + 1..].contains(a) {
                ctx.at(at, format!("trace: header name {a:?} is used twice"));
                return None;
            }
        }
        Some(TraceRules {
            header,
            client_id_header: t.client_id_header,
            received_at_header: t.received_at_header,
        })
    });
    let large_records = def.large_records.and_then(|l| {
        let at = l.span().start;
        crate::large::compile(ctx, at, l.into_inner())
    });
    let mirror = def.mirror.and_then(|m| {
        let at = m.span().start;
        let rules = crate::mirror::compile(ctx, at, m.into_inner())?;
        // A policy mirroring into a topic it covers would mirror its own
        // mirror records, without end.
        if let (Some(t), Some(sel)) = (&rules.topic, &selector) {
            if t.bootstrap.is_none() && sel.matches(&t.name) {
                ctx.at(at, format!("mirror.topic {:?} is one of this policy's own topics ({sel}): its mirror records would be mirrored again, without end", t.name));
                return None;
            }
        }
        Some(rules)
    });
    let selector = selector?;
    let (line, _) = line_col(ctx.text, sel_span);
    Some(Policy {
        name,
        selector,
        source: Source {
            file: ctx.file.to_string(),
            line,
        },
        produce,
        fetch,
        admin,
        compress,
        trace,
        large_records,
        debug_values: def.debug.as_ref().is_none_or(|d| d.values),
        mirror,
    })
}

/// A mirror topic on this cluster whose own policy mirrors too: the two
/// would copy each other's mirror records without end.
fn mirror_loops(policies: &[(Policy, usize)], problems: &mut Vec<Problem>) {
    for (p, _) in policies {
        let Some(t) = p.mirror.as_ref().and_then(|m| m.topic.as_ref()) else {
            continue;
        };
        if t.bootstrap.is_some() {
            continue;
        }
        let mut covering: Vec<&Policy> = policies
            .iter()
            .map(|(q, _)| q)
            .filter(|q| q.selector.matches(&t.name))
            .collect();
        covering.sort_by(|a, b| b.selector.cmp_precedence(&a.selector));
        if let Some(q) = covering.first().filter(|q| q.mirror.is_some()) {
            if q.name != p.name {
                problems.push(Problem {
                    file: p.source.file.clone(),
                    line: p.source.line,
                    column: 1,
                    message: format!(
                        "policy {:?} mirrors to topic {:?}, which policy {:?} ({}:{}) mirrors in turn: mirror records would be mirrored again",
                        p.name, t.name, q.name, q.source.file, q.source.line
                    ),
                });
            }
        }
    }
}

/// Patterns match whole topic names.
fn anchored(p: &str) -> String {
    format!("^(?:{p})$")
}

fn selector(ctx: &mut Ctx<'_>, at: usize, s: SelectorDef, priority: i32) -> Option<Selector> {
    let mut chosen = Vec::new();
    if let Some(v) = s.exact {
        chosen.push(("exact", Some(v)));
    }
    if let Some(v) = s.prefix {
        chosen.push(("prefix", Some(v)));
    }
    if let Some(v) = s.glob {
        chosen.push(("glob", Some(v)));
    }
    if let Some(v) = s.regex {
        chosen.push(("regex", Some(v)));
    }
    match s.default {
        Some(true) => chosen.push(("default", None)),
        Some(false) => {
            ctx.at(
                at,
                "topics.default = false selects nothing; remove it or use another selector",
            );
            return None;
        }
        None => {}
    }
    if chosen.len() != 1 {
        ctx.at(
            at,
            format!(
                "topics needs exactly one of exact, prefix, glob, regex or default = true (got {})",
                if chosen.is_empty() {
                    "none".to_string()
                } else {
                    chosen.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
                }
            ),
        );
        return None;
    }
    let (kind, value) = chosen.pop().expect("one");
    let value = value.unwrap_or_default();
    if kind != "default" && value.is_empty() {
        ctx.at(at, format!("topics.{kind} must not be empty"));
        return None;
    }
    if priority != 0 && kind != "regex" {
        ctx.at(
            at,
            "priority only orders regex selectors; other selectors are ordered by specificity",
        );
    }
    Some(match kind {
        "exact" => Selector::Exact(value),
        "prefix" => Selector::Prefix(value),
        "glob" => Selector::Glob(value),
        "regex" => match Regex::new(&anchored(&value)) {
            Ok(pattern) => Selector::Regex { pattern, priority },
            Err(e) => {
                ctx.at(at, format!("topics.regex is not a valid regex: {e}"));
                return None;
            }
        },
        _ => Selector::Default,
    })
}
