//! A live-tail viewer's CEL expression (`filter=`): compiled once per
//! viewer, bounded, and evaluated only on the blocking pool (a batch of
//! records per fetch), since CEL has no run-time cost limit of its own.
//!
//! The expression sees `key` and `value` (lossy UTF-8 strings, null when
//! absent), `json` (the value parsed as JSON, null when it is not JSON),
//! `headers` (name to value; an empty string for a null value, the last
//! one for a repeated name), `partition`, `offset` and `timestamp` (ms),
//! and `truncated`: true when the value is over [`MAX_VALUE_BYTES`], and
//! then `value` and `json` are null. It must give a bool; anything else,
//! or an evaluation error, means the record does not pass.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use ::cel::objects::{Key, Map};
use ::cel::{Context, Env, Program, Value};

use super::tail::Record;

/// Bytes of expression text at most.
pub const MAX_EXPR_BYTES: usize = 2048;
/// Bytes of a value handed to the expression at most.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// Stack for parsing and running an expression. The parser (generated
/// ANTLR) and the evaluator recurse per nesting level with large frames:
/// sixteen parentheses overflow the 2 MiB of a blocking-pool thread in a
/// debug build, and the worst expressions of [`MAX_EXPR_BYTES`] (a
/// thousand `+`, two thousand open parentheses) need over 32 MiB there. A
/// stack overflow aborts the process, so both run on a thread with this
/// much, reserved (only what is touched is used).
const STACK_BYTES: usize = 64 << 20;

/// Runs `f` on a thread with [`STACK_BYTES`] of stack and waits for it;
/// None when it panicked or no thread could be started. Blocks: call it on
/// the blocking pool only.
fn deep<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("strait-cel".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(s, f)
            .ok()?
            .join()
            .ok()
    })
}

/// Why an expression was refused.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("filter is {0} bytes long; at most {MAX_EXPR_BYTES} are allowed")]
    TooLong(usize),
    #[error("filter is not a CEL expression: {0}")]
    Parse(String),
    #[error("filter could not be parsed (the CEL parser failed on it)")]
    Panicked,
}

/// A compiled expression.
pub struct Expr {
    env: Arc<Env>,
    program: Program,
    text: String,
    /// The variables it reads, decided from the compiled program.
    reads_value: bool,
    reads_json: bool,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.text).finish()
    }
}

impl Expr {
    /// Parses `text`. Blocks (on a thread of its own, [`deep`]): call it on
    /// the blocking pool only.
    pub fn compile(text: &str) -> Result<Expr, CompileError> {
        if text.len() > MAX_EXPR_BYTES {
            return Err(CompileError::TooLong(text.len()));
        }
        // The parser is generated code: a panic on odd input answers a
        // refusal, not a dead handler.
        let compiled = deep(|| {
            let env = Arc::new(Env::stdlib());
            let program = env.compile(text);
            (env, program)
        });
        let (env, program) = match compiled {
            Some((env, Ok(p))) => (env, p),
            Some((_, Err(e))) => return Err(CompileError::Parse(e.to_string())),
            None => return Err(CompileError::Panicked),
        };
        // Every identifier the program names, comprehension variables
        // included (so a loop variable called `value` counts too: it fails
        // closed). `.value` is the absolute name of `value`.
        let refs = program.references();
        let reads = |var: &str| {
            refs.variables()
                .iter()
                .any(|v| v.trim_start_matches('.').split('.').next() == Some(var))
        };
        let (reads_value, reads_json) = (reads("value"), reads("json"));
        Ok(Expr {
            env,
            program,
            text: text.to_string(),
            reads_value,
            reads_json,
        })
    }

    /// Whether the expression reads values (`value` or `json`), refused
    /// where a topic's policy hides them.
    pub fn reads_values(&self) -> bool {
        self.reads_value || self.reads_json
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether each record passes. Err: why it could not be decided (it
    /// does not pass). Runs the expression, on a thread with a deep stack
    /// ([`deep`]): call it on the blocking pool only.
    pub(super) fn judge(&self, records: &[Record]) -> Vec<Result<bool, String>> {
        if records.is_empty() {
            return Vec::new();
        }
        let run = || {
            let root = Context::with_env(self.env.clone());
            records.iter().map(|r| self.keeps(&root, r)).collect()
        };
        deep(run).unwrap_or_else(|| {
            let why = "filter's evaluator could not be started".to_string();
            vec![Err(why); records.len()]
        })
    }

    fn keeps(&self, root: &Context<'_, '_>, r: &Record) -> Result<bool, String> {
        let mut ctx = root.new_inner_scope();
        self.bind(&mut ctx, r);
        let result = catch_unwind(AssertUnwindSafe(|| self.program.execute(&ctx)));
        let at = format!("at offset {} of partition {}", r.offset, r.partition);
        match result {
            Ok(Ok(Value::Bool(b))) => Ok(b),
            Ok(Ok(other)) => Err(format!("filter gave {}, not a bool, {at}", other.type_of())),
            Ok(Err(e)) => Err(format!("filter failed {at}: {e}")),
            Err(_) => Err(format!("filter's evaluator failed {at}")),
        }
    }

    fn bind(&self, ctx: &mut Context<'_, '_>, r: &Record) {
        let text = |b: &[u8]| Value::from(String::from_utf8_lossy(b).into_owned());
        ctx.add_variable_from_value("key", r.key.as_deref().map_or(Value::Null, text));
        let value = r.value.as_deref();
        let truncated = value.is_some_and(|v| v.len() > MAX_VALUE_BYTES);
        let value = value.filter(|_| !truncated);
        ctx.add_variable_from_value("truncated", truncated);
        let shown = match value {
            Some(v) if self.reads_value => text(v),
            _ => Value::Null,
        };
        ctx.add_variable_from_value("value", shown);
        let json = match value {
            Some(v) if self.reads_json => serde_json::from_slice::<serde_json::Value>(v)
                .map_or(Value::Null, |j| from_json(&j)),
            _ => Value::Null,
        };
        ctx.add_variable_from_value("json", json);
        let headers: HashMap<Key, Value> = r
            .headers
            .iter()
            .map(|(k, v)| {
                let v = v.as_deref().unwrap_or_default();
                (Key::from(String::from_utf8_lossy(k).into_owned()), text(v))
            })
            .collect();
        ctx.add_variable_from_value("headers", Value::Map(Map::from(headers)));
        ctx.add_variable_from_value("partition", i64::from(r.partition));
        ctx.add_variable_from_value("offset", r.offset);
        ctx.add_variable_from_value("timestamp", r.timestamp);
    }
}

/// JSON as CEL: objects are maps, arrays lists; integers are ints (uints
/// past i64), other numbers doubles.
fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::from(s.clone()),
        J::Array(a) => Value::List(Arc::new(a.iter().map(from_json).collect())),
        J::Object(o) => {
            let m: HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::from(k.clone()), from_json(v)))
                .collect();
            Value::Map(Map::from(m))
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn record(key: Option<&str>, value: Option<&[u8]>) -> Record {
        Record {
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(Bytes::copy_from_slice),
            headers: vec![
                (
                    Bytes::from_static(b"region"),
                    Some(Bytes::from_static(b"eu")),
                ),
                (Bytes::from_static(b"empty"), None),
            ],
        }
    }

    fn keeps(expr: &str, r: &Record) -> Result<bool, String> {
        let e = Expr::compile(expr).expect("compiles");
        e.judge(std::slice::from_ref(r)).pop().expect("a verdict")
    }

    #[test]
    fn bad_expressions_are_refused_with_the_parsers_reason() {
        for bad in ["json.kind ==", "(", "a &&& b", "'unclosed", "1 +* 2", ""] {
            match Expr::compile(bad) {
                Err(CompileError::Parse(why)) => assert!(!why.is_empty(), "{bad}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = Expr::compile("json.kind ==").unwrap_err().to_string();
        assert!(e.starts_with("filter is not a CEL expression: "), "{e}");
        // Odd input never panics: nesting past the parser's depth limit is
        // refused, stray bytes either parse or are refused.
        let deep = "(".repeat(1000) + "1" + &")".repeat(1000);
        assert!(matches!(Expr::compile(&deep), Err(CompileError::Parse(_))));
        let r = record(None, None);
        for odd in [
            "\u{0}",
            "\u{202e}x",
            "..",
            "a..b",
            "{:}",
            "[,]",
            "\\",
            "'\\x'",
        ] {
            if let Ok(e) = Expr::compile(odd) {
                assert_eq!(e.judge(std::slice::from_ref(&r)).len(), 1, "{odd:?}");
            }
        }
    }

    #[test]
    fn the_deepest_expressions_within_the_bound_neither_overflow_nor_panic() {
        let r = record(Some("k"), Some(b"1"));
        let deepest = [
            "(".repeat(MAX_EXPR_BYTES),
            "[".repeat(MAX_EXPR_BYTES / 2) + &"]".repeat(MAX_EXPR_BYTES / 2),
            "offset+".repeat((MAX_EXPR_BYTES - 5) / 7) + "1 > 0",
            "1+".repeat(MAX_EXPR_BYTES / 2 - 3) + "1>0",
            "json".to_string() + &"[0]".repeat(MAX_EXPR_BYTES / 3 - 2),
            "!".repeat(MAX_EXPR_BYTES - 4) + "true",
        ];
        for text in &deepest {
            assert!(text.len() <= MAX_EXPR_BYTES, "{}", text.len());
            if let Ok(e) = Expr::compile(text) {
                let verdicts = e.judge(std::slice::from_ref(&r));
                assert_eq!(verdicts.len(), 1);
            }
        }
        // The chain of additions parses (the parser bounds nesting, not
        // chains) and runs to a verdict.
        assert_eq!(keeps(&deepest[3], &r), Ok(true));
    }

    #[test]
    fn the_expression_is_bounded() {
        let ok = format!("key == '{}'", "x".repeat(MAX_EXPR_BYTES - 9));
        assert_eq!(ok.len(), MAX_EXPR_BYTES);
        assert!(Expr::compile(&ok).is_ok());
        let long = format!("key == '{}'", "x".repeat(MAX_EXPR_BYTES - 8));
        match Expr::compile(&long) {
            Err(CompileError::TooLong(n)) => assert_eq!(n, MAX_EXPR_BYTES + 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_expression_sees_every_variable() {
        let r = record(
            Some("k1"),
            Some(br#"{"kind":"order","amount":12,"lines":[1,2.5]}"#),
        );
        for yes in [
            "key == 'k1'",
            "value.contains('order')",
            "json.kind == 'order' && json.amount > 10",
            "json.lines[1] == 2.5 && size(json.lines) == 2",
            "has(json.kind) && !has(json.missing)",
            "headers.region == 'eu' && headers['empty'] == ''",
            "partition == 2 && offset == 41 && timestamp == 1700000000000",
            "!truncated",
            "key.matches('^k[0-9]$')",
        ] {
            assert_eq!(keeps(yes, &r), Ok(true), "{yes}");
        }
        for no in ["key == 'k2'", "json.amount > 12", "partition == 0"] {
            assert_eq!(keeps(no, &r), Ok(false), "{no}");
        }
        let absent = record(None, None);
        assert_eq!(
            keeps("key == null && value == null && json == null", &absent),
            Ok(true)
        );
        let plain = record(Some("k"), Some(b"not json \xff"));
        assert_eq!(
            keeps("json == null && value.startsWith('not json')", &plain),
            Ok(true)
        );
    }

    #[test]
    fn non_bool_results_and_errors_do_not_pass() {
        let r = record(Some("k"), Some(br#"{"kind":"order"}"#));
        for (expr, says) in [
            ("json.kind", "not a bool"),
            ("offset + 1", "not a bool"),
            ("json.amount > 10", "No such key"),
            ("nothing == 1", "Undeclared reference"),
            ("1 / (offset - 41) == 0", "Division by zero"),
        ] {
            let why = keeps(expr, &r).unwrap_err();
            assert!(
                why.contains(says) && why.contains("offset 41"),
                "{expr}: {why}"
            );
        }
    }

    #[test]
    fn a_large_value_is_not_handed_over_and_says_so() {
        let big = format!(
            "{{\"kind\":\"order\",\"pad\":\"{}\"}}",
            "x".repeat(MAX_VALUE_BYTES)
        );
        let r = record(Some("k"), Some(big.as_bytes()));
        assert_eq!(
            keeps("truncated && value == null && json == null", &r),
            Ok(true)
        );
        assert!(keeps("json.kind == 'order'", &r).is_err());
        let at = format!("\"{}\"", "x".repeat(MAX_VALUE_BYTES - 2));
        let r = record(Some("k"), Some(at.as_bytes()));
        assert_eq!(keeps("!truncated && size(json) == 65534", &r), Ok(true));
    }

    #[test]
    fn reading_values_is_decided_from_the_program() {
        for (expr, reads) in [
            ("key == 'a'", false),
            ("headers.value == 'x'", false),
            ("'value' in headers", false),
            ("truncated", false),
            ("value == 'a'", true),
            (".value == 'a'", true),
            ("json.kind == 'a'", true),
            ("has(json.kind)", true),
            ("[1].exists(x, value.size() > x)", true),
        ] {
            assert_eq!(Expr::compile(expr).unwrap().reads_values(), reads, "{expr}");
        }
    }
}
