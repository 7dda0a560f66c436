//! Any bytes as a policy file: parsing never panics, every problem has a
//! position inside the file, and a set that loads resolves any topic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strait_policies::PolicySet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.lines().count().max(1);
    match PolicySet::parse(&[("fuzz.toml".to_string(), text.to_string())]) {
        Ok(set) => {
            for topic in ["orders", "orders.eu", "", "a-b_c.9", text.get(..text.len().min(40)).unwrap_or("")] {
                let _ = set.resolve(topic);
                let _ = strait_policies::explain::explain(&set, topic);
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in problems {
                assert!(p.line >= 1 && p.line <= lines + 1, "{p} outside a {lines}-line file");
            }
        }
    }
});
