//! The module layering ARCHITECTURE.md promises, checked on the source:
//! no import circle between the top-level modules of `proxy/src` (a module
//! never imports one that imports it, directly or not), nothing imports
//! `server` (the top), the wire codec knows nothing of policies, and no
//! source file outgrows ~450 lines. Test code (`tests.rs`, `tests/`,
//! `#[cfg(test)] mod tests { .. }`) and comments do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 450;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read proxy/src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its inline test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level modules a piece of code refers to through `crate::`.
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if modules.contains(name) {
                    out.insert(name.to_string());
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn modules_import_one_way_and_files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let top = |p: &Path| -> String {
        let rel = p.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component");
        first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| top(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut too_long = Vec::new();
    for p in &files {
        let m = top(p);
        let is_test = p.components().any(|c| c.as_os_str() == "tests")
            || p.file_name().is_some_and(|f| f == "tests.rs");
        let text = std::fs::read_to_string(p).expect("read source");
        if !is_test && text.lines().count() > MAX_LINES {
            too_long.push(format!("{} ({} lines)", p.display(), text.lines().count()));
        }
        if is_test || m == "lib" || m == "main" {
            continue;
        }
        let code = code(&text);
        if m == "codec" {
            assert!(
                !code.contains("strait_policies"),
                "{}: the wire codec imports the policy crate",
                p.display()
            );
        }
        let deps = graph.entry(m.clone()).or_default();
        deps.extend(imports(&code, &modules).into_iter().filter(|d| *d != m));
    }
    assert!(
        too_long.is_empty(),
        "files over {MAX_LINES} lines: {too_long:?}"
    );
    for (m, deps) in &graph {
        assert!(
            m == "server" || !deps.contains("server"),
            "{m} imports server, the top of the tree"
        );
    }
    // Depth-first search for a cycle; report the first one found.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == m) {
            panic!("import circle: {} -> {m}", path[at..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, path, done);
        }
        path.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph.contains_key("connection") && graph["server"].contains("connection"));
}
