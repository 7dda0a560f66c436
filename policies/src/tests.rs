use crate::decide::*;
use crate::explain::explain;
use crate::schema::Codec;
use crate::set::PolicySet;

fn set(files: &[(&str, &str)]) -> Result<PolicySet, Vec<crate::Problem>> {
    let owned: Vec<(String, String)> = files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    PolicySet::parse(&owned)
}

fn examples() -> PolicySet {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    PolicySet::parse(&files).unwrap_or_else(|e| panic!("examples must load: {e:#?}"))
}

#[test]
fn examples_load_together_and_resolve() {
    let s = examples();
    assert_eq!(s.resolve("orders.eu").unwrap().name, "orders-exactly-once");
    assert_eq!(s.resolve("events-payments").unwrap().name, "domain-events");
    assert_eq!(s.resolve("audit-logins.v2").unwrap().name, "audit");
    assert_eq!(s.resolve("anything-else").unwrap().name, "cluster-defaults");
    assert!(s.has_produce_rules() && s.has_fetch_rules() && s.has_admin_rules());
}

#[test]
fn most_specific_wins() {
    let s = set(&[(
        "a.toml",
        r#"
[[policy]]
name = "p-short"
topics = { prefix = "o" }
[[policy]]
name = "p-long"
topics = { prefix = "orders." }
[[policy]]
name = "exact"
topics = { exact = "orders.eu" }
[[policy]]
name = "glob"
topics = { glob = "orders.*" }
[[policy]]
name = "re"
topics = { regex = "orders\\..*" }
"#,
    )])
    .unwrap();
    assert_eq!(s.resolve("orders.eu").unwrap().name, "exact");
    assert_eq!(s.resolve("orders.us").unwrap().name, "p-long");
    assert_eq!(s.resolve("ox").unwrap().name, "p-short");
    assert!(s.resolve("x").is_none());
    let text = explain(&s, "orders.us");
    assert!(
        text.contains("p-long") && text.contains("also matched") && text.contains("glob"),
        "{text}"
    );
}

#[test]
fn ties_are_load_errors_with_locations() {
    let e = set(&[
        (
            "a.toml",
            "[[policy]]\nname = \"one\"\ntopics = { glob = \"orders-*\" }\n",
        ),
        (
            "b.toml",
            "\n\n[[policy]]\nname = \"two\"\ntopics = { glob = \"*-orders\" }\n",
        ),
    ])
    .unwrap_err();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("b.toml", 5));
    assert!(
        e[0].message.contains("ties with policy \"one\""),
        "{}",
        e[0]
    );
    // Disjoint globs of equal specificity do not tie; regexes need priorities.
    set(&[("a.toml", "[[policy]]\nname = \"one\"\ntopics = { glob = \"orders-*\" }\n[[policy]]\nname = \"two\"\ntopics = { glob = \"events-*\" }\n")]).unwrap();
    let e = set(&[("a.toml", "[[policy]]\nname = \"r1\"\ntopics = { regex = \"a.*\" }\n[[policy]]\nname = \"r2\"\ntopics = { regex = \"b.*\" }\n")]).unwrap_err();
    assert!(e[0].message.contains("different priorities"), "{}", e[0]);
    set(&[("a.toml", "[[policy]]\nname = \"r1\"\ntopics = { regex = \"a.*\" }\npriority = 1\n[[policy]]\nname = \"r2\"\ntopics = { regex = \"b.*\" }\n")]).unwrap();
}

#[test]
fn every_problem_is_reported_with_file_line_and_column() {
    let e = set(&[
        ("bad-syntax.toml", "[[policy]]\nname = \"x\"\ntopics = { exact = \"a\" }\n[policy.produce]\nacks = \"sometimes\"\n"),
        ("bad-values.toml", "[[policy]]\nname = \"y\"\ntopics = { exact = \"b\", prefix = \"c\" }\n[[policy]]\nname = \"z\"\ntopics = { exact = \"d\" }\n[policy.admin]\npartitions = { min = 9, max = 3 }\nname_pattern = \"(\"\n"),
        ("unknown-key.toml", "[[policy]]\nname = \"u\"\ntopics = { exact = \"e\" }\nbogus = 1\n"),
    ])
    .unwrap_err();
    let text: Vec<String> = e.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("bad-syntax.toml:5:") && t.contains("sometimes")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("bad-values.toml:3:") && t.contains("exactly one of")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("bad-values.toml:8:")
                && t.contains("min 9 is greater than max 3")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("bad-values.toml:9:") && t.contains("not a valid regex")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("unknown-key.toml:4:") && t.contains("bogus")),
        "{text:#?}"
    );
}

struct Rec {
    size: usize,
    headers: &'static [&'static str],
}

impl RecordFacts for &Rec {
    fn size(&self) -> usize {
        self.size
    }
    fn has_header(&self, key: &[u8]) -> bool {
        self.headers.iter().any(|h| h.as_bytes() == key)
    }
    fn has_header_prefix(&self, prefix: &[u8]) -> bool {
        self.headers
            .iter()
            .any(|h| h.as_bytes().starts_with(prefix))
    }
}

#[test]
fn produce_decisions() {
    let s = examples();
    let orders = s.resolve("orders.eu").unwrap();
    assert!(
        matches!(decide_acks(orders, 1), AcksVerdict::Reject(v) if v.rule == Rule::Acks && v.error_code == POLICY_VIOLATION)
    );
    assert_eq!(decide_acks(orders, -1), AcksVerdict::Keep);
    let events = s.resolve("events-x").unwrap();
    assert_eq!(decide_acks(events, 1), AcksVerdict::UpgradeToAll);
    assert!(matches!(decide_acks(events, 0), AcksVerdict::Reject(_)));

    let plain = BatchFacts {
        producer_id: -1,
        transactional: false,
        compression: Codec::None,
        magic: 2,
    };
    let err = decide_batch(events, false, &plain).unwrap_err();
    assert_eq!(err.rule, Rule::RequireIdempotent);
    assert!(
        err.message.contains("\"domain-events\"")
            && err.message.contains("events.toml")
            && err.message.contains("produce.require_idempotent"),
        "{}",
        err.message
    );
    let idem = BatchFacts {
        producer_id: 7,
        ..plain
    };
    assert_eq!(decide_batch(events, false, &idem), Ok(()));
    let err = decide_batch(orders, false, &idem).unwrap_err();
    assert_eq!(err.rule, Rule::RequireTransactional);
    let txn = BatchFacts {
        transactional: true,
        compression: Codec::Zstd,
        ..idem
    };
    assert_eq!(decide_batch(orders, true, &txn), Ok(()));
    let gz = BatchFacts {
        compression: Codec::Gzip,
        ..txn
    };
    assert_eq!(
        decide_batch(orders, true, &gz).unwrap_err().rule,
        Rule::AllowedCompression
    );

    let ok = Rec {
        size: 10,
        headers: &["event-id", "revision"],
    };
    let missing = Rec {
        size: 10,
        headers: &["event-id"],
    };
    let big = Rec {
        size: 2 << 20,
        headers: &["event-id", "revision"],
    };
    assert_eq!(decide_records(events, [&ok, &ok]), Ok(()));
    let err = decide_records(events, [&ok, &missing, &big]).unwrap_err();
    assert_eq!(err.error_code, INVALID_RECORD);
    assert_eq!(err.rule, Rule::RequiredHeaders);
    assert_eq!(
        err.record_errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(err.record_errors[1].1.contains("exceeds the limit"));
}

#[test]
fn admin_decisions() {
    let s = examples();
    let orders = s.resolve("orders.eu").unwrap();
    let good = NewTopic {
        name: "orders.eu",
        partitions: 6,
        replication_factor: 3,
        configs: vec![("min.insync.replicas", Some("2"))],
    };
    assert_eq!(decide_create_topic(orders, &good), Ok(()));
    let few = NewTopic {
        partitions: 1,
        ..good.clone()
    };
    assert_eq!(
        decide_create_topic(orders, &few).unwrap_err().rule,
        Rule::Partitions
    );
    let rf = NewTopic {
        replication_factor: -1,
        ..good.clone()
    };
    assert!(decide_create_topic(orders, &rf)
        .unwrap_err()
        .message
        .contains("broker default"));
    let cfg = NewTopic {
        configs: vec![],
        ..good.clone()
    };
    assert_eq!(
        decide_create_topic(orders, &cfg).unwrap_err().rule,
        Rule::RequiredConfigs
    );
    let name = NewTopic {
        name: "orders.EU",
        ..good.clone()
    };
    assert_eq!(
        decide_create_topic(orders, &name).unwrap_err().rule,
        Rule::NamePattern
    );
    assert_eq!(
        decide_alter_configs(orders, ["retention.ms"])
            .unwrap_err()
            .rule,
        Rule::DenyConfigs
    );
    assert_eq!(decide_alter_configs(orders, ["segment.bytes"]), Ok(()));
    assert_eq!(
        decide_delete_topic(orders).unwrap_err().rule,
        Rule::ProtectDelete
    );
    let default = s.resolve("Bad Name").unwrap();
    let t = NewTopic {
        name: "Bad Name",
        partitions: 1,
        replication_factor: 1,
        configs: vec![],
    };
    assert_eq!(
        decide_create_topic(default, &t).unwrap_err().rule,
        Rule::NamePattern
    );
    assert!(forces_read_committed(orders));
    assert!(!forces_read_committed(default));
}

#[test]
fn pipeline_sections_validate_and_mark_produce_inspected() {
    let s = examples();
    let p = s.resolve("telemetry.cpu").unwrap();
    assert!(p.produce.is_none() && p.rewrites_records() && p.inspects_produce());
    let c = p.compress.as_ref().unwrap();
    assert_eq!((c.codec, c.level, c.recompress), (Codec::Zstd, 3, true));
    let t = p.trace.as_ref().unwrap();
    assert_eq!(t.header, "traceparent");
    assert_eq!(t.client_id_header.as_deref(), Some("strait-client-id"));
    assert!(explain(&s, "telemetry.cpu").contains("compress                      = zstd level 3"));

    let only = set(&[("c.toml", "[[policy]]\nname = \"c\"\ntopics = { exact = \"t\" }\n[policy.compress]\ncodec = \"gzip\"\n")]).unwrap();
    assert!(
        only.has_produce_rules(),
        "a compress-only policy inspects produce"
    );
    assert_eq!(
        only.resolve("t").unwrap().compress.as_ref().unwrap().level,
        6
    );

    let bad = |body: &str| {
        let text = format!("[[policy]]\nname = \"b\"\ntopics = {{ exact = \"t\" }}\n{body}");
        set(&[("b.toml", &text)]).unwrap_err()[0].to_string()
    };
    assert!(bad("[policy.compress]\ncodec = \"zstd\"\nlevel = 40\n")
        .contains("between 1 and 22, got 40"));
    assert!(bad("[policy.compress]\ncodec = \"lz4\"\nlevel = 3\n").contains("lz4 has no levels"));
    assert!(bad("[policy.compress]\ncodec = \"none\"\n").contains("compress.codec must be"));
    assert!(bad("[policy.compress]\ncodec = \"brotli\"\n").contains("brotli"));
    assert!(bad("[policy.trace]\nheader = \"\"\n").contains("must not be empty"));
    assert!(bad("[policy.trace]\nclient_id_header = \"traceparent\"\n").contains("used twice"));
    assert!(bad("[policy.trace]\nheadr = \"x\"\n").contains("headr"));
    let e = bad("[policy.compress]\ncodec = \"zstd\"\nlevel = 40\n");
    assert!(e.starts_with("b.toml:4:"), "{e}");
}

#[test]
fn large_records_validate_explain_and_reserve_the_strait_namespace() {
    let s = examples();
    let media = s.resolve("media.video").unwrap();
    let l = media.large_records.as_ref().unwrap();
    assert_eq!(l.threshold, 1_000_000);
    assert_eq!(
        l.remedies,
        vec![crate::Remedy::Compress, crate::Remedy::ClaimCheck]
    );
    assert_eq!(
        l.chunk_topic_for("media.video"),
        "media.video.strait-chunks"
    );
    assert!(media.rewrites_records() && media.restores_records());
    assert!(s.has_fetch_rules(), "restoring is a fetch rule");
    let text = crate::explain::explain(&s, "media.video");
    assert!(
        text.contains("large_records.remedies      = compress, claim-check"),
        "{text}"
    );
    // Reserved headers are refused per record, naming the rule.
    let forged = Rec {
        size: 10,
        headers: &["strait.large-record"],
    };
    let fine = Rec {
        size: 10,
        headers: &["n"],
    };
    let v = decide_records(media, [&fine, &forged]).unwrap_err();
    assert_eq!(v.rule, Rule::ReservedHeaders);
    assert_eq!(v.record_errors.len(), 1);
    assert_eq!(v.record_errors[0].0, 1);
    assert!(v.message.contains("strait."), "{}", v.message);
    // Bad definitions: every problem reported.
    let bad = |body: &str| {
        let text = format!("[[policy]]\nname = \"p\"\ntopics = {{ exact = \"t\" }}\n[policy.large_records]\n{body}\n");
        PolicySet::parse(&[("p.toml".into(), text)]).unwrap_err()
    };
    for (body, expect) in [
        ("remedies = []", "at least one"),
        ("remedies = [\"zip\"]", "unknown variant"),
        ("remedies = [\"chunk\", \"chunk\"]", "listed twice"),
        ("remedies = [\"claim-check\", \"chunk\"]", "never reached"),
        ("remedies = [\"chunk\"]\nthreshold = 10", "threshold"),
        ("remedies = [\"chunk\"]\nchunk_bytes = 100", "chunk_bytes"),
        ("remedies = [\"chunk\"]\nchunk_topic = \"fixed\"", "{topic}"),
        ("remedies = [\"claim-check\"]\nprefix = \"/abs/\"", "prefix"),
        (
            "remedies = [\"claim-check\"]\nbucket = \"b\"",
            "unknown field",
        ),
    ] {
        let problems = bad(body);
        assert!(
            problems.iter().any(|p| p.message.contains(expect)),
            "{body}: {problems:?}"
        );
    }
}

#[test]
fn a_mirror_section_loads_with_its_defaults() {
    let s = set(&[(
        "m.toml",
        r#"
[[policy]]
name = "orders"
topics = { prefix = "orders." }
[policy.mirror]
jsonl_dir = "/var/lib/strait/mirror"
topic = "mirror.orders"
"#,
    )])
    .unwrap();
    let m = s.resolve("orders.eu").unwrap().mirror.clone().unwrap();
    assert_eq!(m.sample, 1.0);
    assert_eq!(
        m.max_bytes_per_sec,
        crate::mirror::DEFAULT_MAX_BYTES_PER_SEC
    );
    let j = m.jsonl.unwrap();
    assert_eq!(
        (j.rotate_bytes, j.keep_files),
        (
            crate::mirror::DEFAULT_ROTATE_BYTES,
            crate::mirror::DEFAULT_KEEP_FILES
        )
    );
    let t = m.topic.unwrap();
    assert_eq!((t.name.as_str(), t.bootstrap), ("mirror.orders", None));
    let e = explain(&s, "orders.eu");
    assert!(
        e.contains(
            "mirror.jsonl                  = /var/lib/strait/mirror/mirror-orders.eu-<n>.jsonl"
        ),
        "{e}"
    );
    assert!(
        e.contains("mirror.topic                  = \"mirror.orders\""),
        "{e}"
    );
}

#[test]
fn bad_mirror_sections_are_refused_with_clear_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "sample = 0.0\ntopic = \"m\"",
            "mirror.sample must be above 0",
        ),
        (
            "sample = 1.5\ntopic = \"m\"",
            "mirror.sample must be above 0",
        ),
        (
            "max_bytes_per_sec = 0\ntopic = \"m\"",
            "max_bytes_per_sec must be at least 1",
        ),
        (
            "jsonl_dir = \"d\"\nrotate_bytes = 10",
            "rotate_bytes must be at least",
        ),
        (
            "jsonl_dir = \"d\"\nkeep_files = 0",
            "keep_files must be between 1",
        ),
        ("topic = \"m\"\nkeep_files = 2", "need mirror.jsonl_dir"),
        ("sample = 0.5", "needs somewhere to write"),
        (
            "jsonl_dir = \"d\"\nbootstrap = [\"h:9092\"]",
            "bootstrap needs mirror.topic",
        ),
        ("topic = \"m\"\nbootstrap = []", "host:port"),
        ("topic = \"no spaces\"", "is not a topic name"),
        ("topic = \"orders.copy\"", "one of this policy's own topics"),
        ("topic = \"m\"\ncolour = \"red\"", "unknown field `colour`"),
    ];
    for (body, says) in cases {
        let text = format!(
            "[[policy]]\nname = \"orders\"\ntopics = {{ prefix = \"orders.\" }}\n[policy.mirror]\n{body}\n"
        );
        let problems = set(&[("m.toml", &text)]).expect_err(body);
        assert!(
            problems.iter().any(|p| p.message.contains(says)),
            "{body}: {problems:#?}"
        );
        assert!(problems.iter().all(|p| p.line > 0), "{problems:#?}");
    }
    // Another cluster's topic of the same name is no loop.
    let text = "[[policy]]\nname = \"orders\"\ntopics = { prefix = \"orders.\" }\n[policy.mirror]\ntopic = \"orders.copy\"\nbootstrap = [\"other:9092\"]\n";
    assert!(set(&[("m.toml", text)]).is_ok());
}

#[test]
fn two_policies_mirroring_into_each_other_are_refused() {
    let text = r#"
[[policy]]
name = "a"
topics = { prefix = "a." }
[policy.mirror]
topic = "b.mirror"
[[policy]]
name = "b"
topics = { prefix = "b." }
[policy.mirror]
topic = "a.mirror"
"#;
    let problems = set(&[("m.toml", text)]).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("which policy \"b\"")),
        "{problems:#?}"
    );
}
