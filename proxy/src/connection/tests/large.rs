//! Large inspected requests and the large-record memory bound: memory taken
//! for a request while it is buffered is given back however the request
//! ends up forwarded.

use crate::config::LargeRecordsConfig;
use crate::kafka_client::KafkaClient;
use crate::large::LargeRecords;

use super::*;

/// A policy that inspects Produce requests to `t`.
const INSPECTS_PRODUCE: &str = "[[policy]]\nname = \"p\"\ntopics = { exact = \"t\" }\n\
    [policy.large_records]\nthreshold = 1024\nremedies = [\"claim-check\"]\n";

/// `test_env`, with the policies of `dir` (reloadable) and large-record
/// handling whose store is `dir/objects` (never used here).
fn env_with_large(dir: &std::path::Path) -> (Arc<Env>, Arc<LargeRecords>) {
    let client = Arc::new(KafkaClient::offline());
    let cfg = LargeRecordsConfig {
        store: dir.join("objects").display().to_string(),
        ..Default::default()
    };
    let large = Arc::new(LargeRecords::new(&cfg, client).unwrap());
    let mut env = Arc::try_unwrap(test_env(LimitsConfig::default()))
        .ok()
        .expect("not shared yet");
    env.enforcer.store = Arc::new(PolicyStore::open(Some(&dir.join("policies")), 100).unwrap());
    env.enforcer.work.large = Some(large.clone());
    (Arc::new(env), large)
}

/// A Produce request, inspected when it starts arriving, that a reload
/// turns into passthrough before it is whole: it streams, and the memory
/// taken for it is given back instead of staying held for the life of the
/// connection.
#[tokio::test]
async fn memory_held_for_a_request_a_reload_turns_to_passthrough_is_given_back() {
    let dir = std::env::temp_dir().join(format!("strait-conn-large-{}", std::process::id()));
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("p.toml"), INSPECTS_PRODUCE).unwrap();
    let (env, large) = env_with_large(&dir);
    assert!(crate::policy::request::inspects(
        &env.enforcer.store.get(),
        PRODUCE.0
    ));

    let mut c = start(&env);
    let mut body = produce_body(-1);
    body.extend(pattern(3 << 19, 4));
    let req = request(PRODUCE, 9, &body);
    let (head, rest) = req.split_at(16 << 10);
    write(&mut c.client_w, head).await;
    // Bounded: the pump takes the memory once it has read the frame's start.
    for _ in 0..1000 {
        if large.budget.held_bytes() > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(large.budget.held_bytes(), (req.len() - 4) as u64);

    std::fs::remove_file(policies.join("p.toml")).unwrap();
    assert!(env.enforcer.store.reload("test"));
    let (_, got) = tokio::join!(
        write(&mut c.client_w, rest),
        read_n(&mut c.broker_r, req.len())
    );
    assert!(got == req, "the request reaches the broker as sent");
    assert_eq!(
        large.budget.held_bytes(),
        0,
        "memory held for a request now streamed"
    );

    let answer = response(9, &pattern(8, 1));
    write(&mut c.broker_w, &answer).await;
    assert_eq!(read_n(&mut c.client_r, answer.len()).await, answer);
    c.client_w.shutdown().await.unwrap();
    finish(c.proxy).await.expect("clean end");
    let _ = std::fs::remove_dir_all(&dir);
}
