//! Topic selectors and their precedence: exact > prefix (longer first) >
//! glob (more literal characters first) > regex (higher priority first) >
//! default. Two selectors that could match one topic with equal precedence
//! are a tie, reported when the files load.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;

#[derive(Debug, Clone)]
pub enum Selector {
    Exact(String),
    Prefix(String),
    /// `*` matches any run of characters, `?` any one character.
    Glob(String),
    Regex {
        pattern: Regex,
        priority: i32,
    },
    Default,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Exact(s) => write!(f, "exact {s:?}"),
            Selector::Prefix(s) => write!(f, "prefix {s:?}"),
            Selector::Glob(s) => write!(f, "glob {s:?}"),
            Selector::Regex { pattern, priority } => {
                write!(f, "regex {:?} (priority {priority})", pattern.as_str())
            }
            Selector::Default => f.write_str("default"),
        }
    }
}

impl Selector {
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Selector::Exact(s) => s == topic,
            Selector::Prefix(p) => topic.starts_with(p.as_str()),
            Selector::Glob(g) => glob_match(g.as_bytes(), topic.as_bytes()),
            Selector::Regex { pattern, .. } => pattern.is_match(topic),
            Selector::Default => true,
        }
    }

    /// (kind rank, rank within kind): larger wins.
    fn precedence(&self) -> (u8, i64) {
        match self {
            Selector::Exact(_) => (4, 0),
            Selector::Prefix(p) => (3, p.len() as i64),
            Selector::Glob(g) => (
                2,
                g.bytes().filter(|b| *b != b'*' && *b != b'?').count() as i64,
            ),
            Selector::Regex { priority, .. } => (1, i64::from(*priority)),
            Selector::Default => (0, 0),
        }
    }

    /// Which of two matching selectors wins.
    pub fn cmp_precedence(&self, other: &Selector) -> Ordering {
        self.precedence().cmp(&other.precedence())
    }

    /// True when both could match one topic at equal precedence.
    pub fn ties_with(&self, other: &Selector) -> bool {
        if self.precedence() != other.precedence() {
            return false;
        }
        match (self, other) {
            (Selector::Exact(a), Selector::Exact(b)) => a == b,
            // Two different prefixes of equal length never match one topic.
            (Selector::Prefix(a), Selector::Prefix(b)) => a == b,
            (Selector::Glob(a), Selector::Glob(b)) => globs_overlap(a.as_bytes(), b.as_bytes()),
            // Whether two regexes overlap is undecidable in general: equal priority ties.
            (Selector::Regex { .. }, Selector::Regex { .. }) => true,
            (Selector::Default, Selector::Default) => true,
            _ => false,
        }
    }
}

/// Glob match with `*` and `?`, iterative with backtracking to the last star.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Whether some string matches both globs (dynamic programming over both).
pub fn globs_overlap(a: &[u8], b: &[u8]) -> bool {
    // reach[i][j]: a[..i] and b[..j] can consume a common string.
    let mut reach = vec![vec![false; b.len() + 1]; a.len() + 1];
    reach[0][0] = true;
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            if !reach[i][j] {
                continue;
            }
            let sa = a.get(i) == Some(&b'*');
            let sb = b.get(j) == Some(&b'*');
            // A star may match nothing.
            if sa {
                reach[i + 1][j] = true;
            }
            if sb {
                reach[i][j + 1] = true;
            }
            if i < a.len() && j < b.len() {
                let (ca, cb) = (a[i], b[j]);
                match (sa, sb) {
                    // A star consumes one character the other side consumes.
                    (true, true) => reach[i + 1][j + 1] = true,
                    (true, false) => reach[i][j + 1] = true,
                    (false, true) => reach[i + 1][j] = true,
                    (false, false) => {
                        if ca == b'?' || cb == b'?' || ca == cb {
                            reach[i + 1][j + 1] = true;
                        }
                    }
                }
            }
        }
    }
    reach[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"orders-*", b"orders-eu"));
        assert!(glob_match(b"*-dlq", b"payments-dlq"));
        assert!(glob_match(b"a?c*", b"abcdef"));
        assert!(!glob_match(b"orders-*", b"order"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn glob_overlap() {
        assert!(globs_overlap(b"orders-*", b"*-eu"));
        assert!(!globs_overlap(b"orders-*", b"events-*"));
        assert!(globs_overlap(b"a?c", b"abc"));
        assert!(!globs_overlap(b"abc", b"abd"));
        assert!(globs_overlap(b"*x*", b"*y*"));
        assert!(!globs_overlap(b"x*", b"y*"));
        assert!(globs_overlap(b"a*b", b"a*b"));
    }

    #[test]
    fn precedence() {
        let exact = Selector::Exact("orders".into());
        let prefix = Selector::Prefix("ord".into());
        let longer = Selector::Prefix("orders".into());
        let glob = Selector::Glob("orders*".into());
        assert_eq!(exact.cmp_precedence(&longer), Ordering::Greater);
        assert_eq!(longer.cmp_precedence(&prefix), Ordering::Greater);
        assert_eq!(prefix.cmp_precedence(&glob), Ordering::Greater);
        assert!(Selector::Glob("orders-*".into()).ties_with(&Selector::Glob("*-orders".into())));
        assert!(!Selector::Glob("orders-*".into()).ties_with(&Selector::Glob("events-*".into())));
    }
}
