//! Fetch sessions (KIP-227) as one client connection uses them, so a fetch's
//! policy is decided from every partition it reads, not from the few an
//! incremental fetch names.
//!
//! A full fetch (epoch 0) names all its partitions and the broker answers
//! with the new session's id; an incremental fetch (epoch > 0) names only
//! partitions added or changed, and lists the ones it forgets; the broker
//! answers for every partition of the session with news. So Strait keeps,
//! per connection, each session's partitions: learned from the full fetch,
//! the id read from the head of its answer (a few bytes, so a streamed answer
//! stays streamed), then kept up to date by each incremental fetch.
//!
//! A session Strait did not see created (one built before Strait restarted,
//! on another connection, or through another Strait instance: a Java client
//! whose connection was closed cleanly keeps its session and resumes it on
//! the next connection) is never guessed at: while a policy decides anything
//! on fetch, its incremental fetch is answered with FETCH_SESSION_ID_NOT_FOUND,
//! and the client starts a new session with a full fetch (every client that
//! uses sessions does: Java's `FetchSessionHandler`, franz-go, kafka-python).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::large::restore::TopicKey;

/// Kafka's FETCH_SESSION_ID_NOT_FOUND: the client drops its session and
/// sends a full fetch.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

/// Sessions one connection keeps at most; past it the least recently used is
/// forgotten (its next incremental fetch is answered as unknown, and the
/// client starts over). Clients use one session per broker connection.
const MAX_SESSIONS: usize = 8;

/// A partition of a session, with the `max_bytes` the client gave it.
pub type Partition = (TopicKey, i32, usize);

/// The sessions of one client connection.
#[derive(Debug, Default)]
pub struct FetchSessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<i32, Session>,
    tick: u64,
}

#[derive(Debug)]
struct Session {
    partitions: HashMap<(TopicKey, i32), usize>,
    used: u64,
}

/// What a fetch request does with sessions.
#[derive(Debug)]
pub enum Use {
    /// No session (Fetch before v7, or epoch -1): the request names every
    /// partition it reads.
    Sessionless,
    /// A full fetch that asks for a new session: it names every partition;
    /// its answer carries the session id.
    Create,
    /// An incremental fetch of a session Strait knows: these are all of the
    /// session's partitions, adds and forgets applied.
    Known { id: i32, partitions: Vec<Partition> },
    /// An incremental fetch of a session Strait never saw created.
    Unknown(i32),
}

impl FetchSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("fetch sessions lock")
    }

    /// What a request with `session_id` and `epoch` (v7+) does, applying an
    /// incremental fetch's `adds` and `forgets` to the session it continues.
    pub fn classify(
        &self,
        session_id: i32,
        epoch: i32,
        adds: &[Partition],
        forgets: &[(TopicKey, i32)],
    ) -> Use {
        let mut inner = self.lock();
        if epoch <= 0 {
            // A full fetch (epoch 0) or no session (-1) closes the one it names.
            inner.sessions.remove(&session_id);
            return if epoch == 0 {
                Use::Create
            } else {
                Use::Sessionless
            };
        }
        inner.tick += 1;
        let tick = inner.tick;
        let Some(s) = inner.sessions.get_mut(&session_id) else {
            return Use::Unknown(session_id);
        };
        s.used = tick;
        for key in forgets {
            s.partitions.remove(key);
        }
        for (topic, partition, max) in adds {
            s.partitions.insert((topic.clone(), *partition), *max);
        }
        let partitions = s
            .partitions
            .iter()
            .map(|((t, p), m)| (t.clone(), *p, *m))
            .collect();
        Use::Known {
            id: session_id,
            partitions,
        }
    }

    fn created(&self, id: i32, partitions: Vec<Partition>) {
        let mut inner = self.lock();
        inner.tick += 1;
        let used = inner.tick;
        if inner.sessions.len() >= MAX_SESSIONS && !inner.sessions.contains_key(&id) {
            let oldest = inner
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                inner.sessions.remove(&k);
            }
        }
        let partitions = partitions
            .into_iter()
            .map(|(t, p, m)| ((t, p), m))
            .collect();
        inner.sessions.insert(id, Session { partitions, used });
    }

    fn ended(&self, id: i32) {
        self.lock().sessions.remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().sessions.len()
    }
}

/// What the response side learns from a fetch's answer, for the sessions of
/// its connection.
#[derive(Debug)]
pub struct SessionNote {
    sessions: Arc<FetchSessions>,
    what: Noted,
}

#[derive(Debug)]
enum Noted {
    /// A full fetch asked for a session over these partitions.
    Create(Vec<Partition>),
    /// An incremental fetch of this session.
    Continue(i32),
}

impl SessionNote {
    pub fn create(sessions: Arc<FetchSessions>, partitions: Vec<Partition>) -> SessionNote {
        SessionNote {
            sessions,
            what: Noted::Create(partitions),
        }
    }

    pub fn continues(sessions: Arc<FetchSessions>, id: i32) -> SessionNote {
        SessionNote {
            sessions,
            what: Noted::Continue(id),
        }
    }

    /// Takes in the answer's top-level error and session id. Runs before the
    /// answer reaches the client, so the client's next fetch finds it.
    pub fn learn(self, error_code: i16, session_id: i32) {
        match self.what {
            Noted::Create(partitions) if error_code == 0 && session_id != 0 => {
                self.sessions.created(session_id, partitions)
            }
            Noted::Create(_) => {}
            Noted::Continue(id) if error_code != 0 => self.sessions.ended(id),
            Noted::Continue(_) => {}
        }
    }
}

/// The head of a Fetch answer (v7+), read without decoding the rest.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// Bytes of the frame (after the length prefix) needed to read it.
    Need(usize),
    Read {
        error_code: i16,
        session_id: i32,
    },
    /// The header's tagged fields run past the frame.
    Malformed,
}

/// Reads the top-level error code and session id of a Fetch v7+ answer from
/// `frame` (the bytes after the length prefix; possibly only its start),
/// `len` long in all: correlation id, the header's tagged fields (v12+),
/// throttle time, error code, session id.
pub fn head(frame: &[u8], len: usize, version: i16) -> Head {
    let mut at = 4;
    if version >= 12 {
        let mut fields = match varint(frame, &mut at, len) {
            Ok(n) => n,
            Err(h) => return h,
        };
        while fields > 0 {
            if let Err(h) = varint(frame, &mut at, len) {
                return h;
            }
            let size = match varint(frame, &mut at, len) {
                Ok(n) => n as usize,
                Err(h) => return h,
            };
            at = at.saturating_add(size);
            fields -= 1;
        }
    }
    let end = at.saturating_add(10);
    if end > len {
        return Head::Malformed;
    }
    if frame.len() < end {
        return Head::Need(end);
    }
    let error_code = i16::from_be_bytes([frame[at + 4], frame[at + 5]]);
    let session_id = i32::from_be_bytes(frame[at + 6..end].try_into().expect("4 bytes"));
    Head::Read {
        error_code,
        session_id,
    }
}

/// An unsigned varint at `*at`, moving past it.
fn varint(frame: &[u8], at: &mut usize, len: usize) -> Result<u32, Head> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        if *at >= len {
            return Err(Head::Malformed);
        }
        let Some(&b) = frame.get(*at) else {
            return Err(Head::Need(*at + 1));
        };
        *at += 1;
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Head::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::{FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::Encodable;

    fn t(name: &str) -> TopicKey {
        TopicKey::Name(name.into())
    }

    #[test]
    fn a_session_is_followed_through_its_adds_and_forgets() {
        let s = Arc::new(FetchSessions::default());
        let full = vec![(t("a"), 0, 100), (t("b"), 0, 100)];
        assert!(matches!(s.classify(0, 0, &full, &[]), Use::Create));
        SessionNote::create(s.clone(), full).learn(0, 7);
        let Use::Known { id, mut partitions } =
            s.classify(7, 1, &[(t("c"), 1, 50)], &[(t("a"), 0)])
        else {
            panic!("session 7 is known")
        };
        partitions.sort_by_key(|(k, p, _)| (format!("{k:?}"), *p));
        assert_eq!(id, 7);
        assert_eq!(partitions, vec![(t("b"), 0, 100), (t("c"), 1, 50)]);
        // An error answer ends the session; so does a new full fetch.
        SessionNote::continues(s.clone(), 7).learn(71, 0);
        assert!(matches!(s.classify(7, 2, &[], &[]), Use::Unknown(7)));
        assert!(matches!(s.classify(9, -1, &[], &[]), Use::Sessionless));
    }

    #[test]
    fn a_session_created_elsewhere_is_unknown_and_sessions_are_bounded() {
        let s = Arc::new(FetchSessions::default());
        assert!(matches!(s.classify(42, 3, &[], &[]), Use::Unknown(42)));
        // A failed full fetch creates nothing.
        SessionNote::create(s.clone(), vec![(t("a"), 0, 1)]).learn(70, 5);
        assert!(matches!(s.classify(5, 1, &[], &[]), Use::Unknown(5)));
        for id in 1..=20 {
            SessionNote::create(s.clone(), vec![(t("a"), 0, 1)]).learn(0, id);
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(matches!(s.classify(20, 1, &[], &[]), Use::Known { .. }));
        assert!(matches!(s.classify(1, 1, &[], &[]), Use::Unknown(1)));
    }

    #[test]
    fn the_head_of_an_answer_is_read_at_every_version() {
        for v in 7..=18 {
            let mut b = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(9)
                .encode(&mut b, if v >= 12 { 1 } else { 0 })
                .unwrap();
            FetchResponse::default()
                .with_throttle_time_ms(3)
                .with_error_code(70)
                .with_session_id(123_456)
                .encode(&mut b, v)
                .unwrap();
            let want = Head::Read {
                error_code: 70,
                session_id: 123_456,
            };
            assert_eq!(head(&b, b.len(), v), want, "Fetch v{v}");
            let need = match head(&b[..6], b.len(), v) {
                Head::Need(n) => n,
                other => panic!("v{v}: {other:?}"),
            };
            assert_eq!(head(&b[..need], b.len(), v), want, "v{v}: {need} bytes");
            assert_eq!(head(&b[..need], need - 1, v), Head::Malformed, "v{v}");
        }
    }
}
