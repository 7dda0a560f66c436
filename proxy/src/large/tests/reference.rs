//! Tests of `large::reference`.
use super::*;

fn object() -> Reference {
    let sha = [0xab; 32];
    Reference::Object(ObjectRef {
        key: format!("strait/media.video/{}", hex::encode(sha)),
        size: 5 << 20,
        sha256: sha,
    })
}

fn manifest() -> Reference {
    Reference::Chunks(Manifest {
        topic: "scans.strait-chunks".into(),
        partition: 2,
        ranges: vec![(120, 8), (131, 4)],
        chunks: 12,
        size: 6 << 20,
        sha256: [7; 32],
    })
}

#[test]
fn references_round_trip_and_read_as_json() {
    for r in [object(), manifest()] {
        let bytes = r.encode();
        assert!(bytes.len() < 300, "small: {}", bytes.len());
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("{\"strait\":"), "{text}");
        assert_eq!(Reference::parse(r.marker(), &bytes).unwrap(), r);
    }
}

#[test]
fn a_scope_admits_only_where_the_topics_policy_writes() {
    let rules = LargeRecordRules {
        threshold: 1024,
        remedies: Vec::new(),
        prefix: "media/objects".into(),
        chunk_topic: "chunks.{topic}".into(),
        chunk_bytes: 1 << 16,
        allow_compacted: false,
    };
    let scope = Scope::new("media.video", &rules);
    let sha = [0xab; 32];
    let key = |k: String| {
        Reference::Object(ObjectRef {
            key: k,
            size: 1,
            sha256: sha,
        })
    };
    let hex = hex::encode(sha);
    assert_eq!(
        scope.check(&key(format!("media/objects/media.video/{hex}"))),
        Ok(())
    );
    let chunks = |topic: &str| {
        let Reference::Chunks(m) = manifest() else {
            unreachable!()
        };
        Reference::Chunks(Manifest {
            topic: topic.into(),
            ..m
        })
    };
    assert_eq!(scope.check(&chunks("chunks.media.video")), Ok(()));
    for r in [
        key(format!("strait/media.video/{hex}")),
        key(format!("media/objects/media.audio/{hex}")),
        key(format!(
            "media/objects/media.video/{}",
            hex::encode([1u8; 32])
        )),
        key(format!("media/objects/media.video/{}", hex.to_uppercase())),
        key(format!("media/objects/media.video/x/{hex}")),
        chunks("media.video.strait-chunks"),
        chunks("chunks.media.audio"),
    ] {
        let e = scope.check(&r).unwrap_err().to_string();
        assert!(e.contains("topic media.video's policy"), "{e}");
    }
}

#[test]
fn bad_references_are_errors_never_values() {
    let ok = String::from_utf8(object().encode()).unwrap();
    let m = String::from_utf8(manifest().encode()).unwrap();
    let cases: Vec<(&[u8], String)> = vec![
        (b"bogus", ok.clone()),
        (CHUNKS, ok.clone()),
        (CLAIM_CHECK, "not json".into()),
        (CLAIM_CHECK, ok.replace("\"v\":1", "\"v\":2")),
        (CLAIM_CHECK, ok.replace("strait/media.video/", "strait/../")),
        (CLAIM_CHECK, ok.replace("strait/media.video/", "")),
        (
            CLAIM_CHECK,
            ok.replace("\"size\":5242880", "\"size\":99999999999"),
        ),
        (
            CLAIM_CHECK,
            ok.replace("\"sha256\":\"ab", "\"sha256\":\"zz"),
        ),
        (CLAIM_CHECK, ok.replace("}", ",\"extra\":1}")),
        (CHUNKS, m.replace("[131,4]", "[121,4]")),
        (CHUNKS, m.replace("\"chunks\":12", "\"chunks\":13")),
        (CHUNKS, m.replace("\"partition\":2", "\"partition\":-1")),
        (CHUNKS, m.replace("[[120,8],[131,4]]", "[]")),
        (CLAIM_CHECK, format!("{}{}", ok, " ".repeat(70_000))),
    ];
    for (marker, value) in cases {
        assert!(
            Reference::parse(marker, value.as_bytes()).is_err(),
            "{value} accepted"
        );
    }
}
