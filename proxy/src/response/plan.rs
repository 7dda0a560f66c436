//! The response plan: what the response side does with one request's
//! response, decided when the request is admitted, and executed as a chain
//! of steps (some of which await) once the broker answers.
//!
//! A response with no plan ([`ResponsePlan::streams`]) is forwarded as it
//! arrives, byte for byte. Otherwise it is decoded once and each step runs in
//! a fixed order: learn topic ids, index trace ids, merge the policy's
//! rejections, drop aborted transactions, rewrite broker addresses (after
//! giving new brokers a listener), clamp api versions; then it is encoded.
//! The next features add their steps here: restoring claim-checked or
//! chunked records on the fetch path (awaiting the object store or the chunk
//! topic, then cutting the response at the client's `max_bytes`), and the
//! observation tap.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::codec::{Decoded, Kind, RewriteError};
use super::merge::Rejected;
use crate::cluster::ClusterView;
use crate::codec::RequestPeek;
use crate::config::LeaderEndpoints;
use crate::large::restore::RestoreSpec;
use crate::large::{Held, LargeRecords};
use crate::offload::Offload;
use crate::pipeline::{TraceIndex, Traced};

use super::session::{self, SessionNote};

/// A partition's traced records, waiting for the broker's base offset.
#[derive(Debug)]
pub struct PendingTraces {
    pub topic: String,
    /// As the client named it (None: by id).
    pub name: Option<StrBytes>,
    pub topic_id: Uuid,
    pub partition: i32,
    pub client: Option<String>,
    pub traced: Vec<Traced>,
}

/// One step of a plan. Variants are listed in execution order.
#[derive(Debug)]
pub enum Step {
    /// Remember the topic ids a Metadata response names.
    LearnTopicIds,
    /// Index produced records' trace ids at the offsets the broker gave them.
    IndexTraces(Vec<PendingTraces>),
    /// Learn a fetch session from the head of the answer (read without
    /// decoding it: the plan keeps it aside, and a streamed answer stays
    /// streamed).
    NoteSession(SessionNote),
    /// The fetch continued a session Strait does not know: answer
    /// FETCH_SESSION_ID_NOT_FOUND instead, so the client starts a new one.
    SessionNotFound,
    /// A share fetch while a fetch policy applies: answer UNSUPPORTED_VERSION
    /// with no records (share fetches get neither the restore nor the
    /// read_committed step).
    RefuseShareFetch,
    /// Answer the parts of the request a policy refused.
    MergeRejections(Vec<Rejected>),
    /// Drop aborted transactions' batches (a fetch forced to read_committed).
    DropAborted,
    /// Put claim-checked and chunked values back, within the client's
    /// limits (awaits the store on the large-record pool).
    RestoreLarge(RestoreSpec),
    /// Give brokers named in the response a listener; point addresses at Strait.
    RewriteAddresses,
    /// Keep the client within the versions Strait serves.
    ClampVersions,
    /// Leave share groups (KIP-932) out of an ApiVersions answer while a
    /// fetch policy applies: share fetches bypass its steps.
    HideShareGroups,
}

impl Step {
    fn order(&self) -> u8 {
        match self {
            Step::LearnTopicIds
            | Step::NoteSession(_)
            | Step::SessionNotFound
            | Step::RefuseShareFetch => 0,
            Step::IndexTraces(_) => 1,
            Step::MergeRejections(_) => 2,
            Step::DropAborted => 3,
            Step::RestoreLarge(_) => 4,
            Step::RewriteAddresses => 5,
            Step::ClampVersions => 6,
            Step::HideShareGroups => 7,
        }
    }
}

/// What the response side needs from the rest of the proxy.
#[derive(Clone)]
pub struct ResponseEnv {
    pub cluster: Arc<ClusterView>,
    pub traces: Arc<TraceIndex>,
    pub leader_endpoints: LeaderEndpoints,
    pub offload: Offload,
    /// Large-record I/O, when running.
    pub large: Option<Arc<LargeRecords>>,
    /// Cap on a batch's decompressed size.
    pub cap: usize,
}

/// The plan for one request's response, kept while the request is in flight
/// (responses carry no api key: the plan remembers the request header).
#[derive(Debug)]
pub struct ResponsePlan {
    pub correlation_id: i32,
    pub api_key: i16,
    pub api_version: i16,
    pub sent: Instant,
    decode: Option<Kind>,
    steps: Vec<Step>,
    /// A fetch session to learn from the answer's head.
    session: Option<SessionNote>,
    /// The tap's name of the connection, when the tap wants to know when
    /// this request (a fetch it observed) was answered.
    pub tapped: Option<Arc<crate::tap::ConnTag>>,
}

impl ResponsePlan {
    /// Plans the response of an admitted request: `kind` is the decoding its
    /// api and version need for their own sake ([`super::classify`]), `steps`
    /// what the request's policies asked for.
    pub fn new(peek: RequestPeek, kind: Option<Kind>, mut steps: Vec<Step>) -> ResponsePlan {
        let mut session = None;
        steps.retain_mut(|s| match std::mem::replace(s, Step::ClampVersions) {
            Step::NoteSession(note) => {
                session = Some(note);
                false
            }
            other => {
                *s = other;
                true
            }
        });
        let decode = if steps.is_empty() {
            kind
        } else {
            kind.or(Kind::for_patch(peek.api_key))
        };
        // Only the kinds `classify` names can carry broker addresses (a
        // response decoded just to merge a policy's answer cannot).
        match kind {
            Some(Kind::ApiVersions) => steps.push(Step::ClampVersions),
            Some(Kind::Metadata) => steps.extend([Step::LearnTopicIds, Step::RewriteAddresses]),
            Some(_) => steps.push(Step::RewriteAddresses),
            None => {}
        }
        steps.sort_by_key(Step::order);
        ResponsePlan {
            correlation_id: peek.correlation_id,
            api_key: peek.api_key,
            api_version: peek.api_version,
            sent: Instant::now(),
            tapped: None,
            decode,
            steps,
            session,
        }
    }

    /// Reads the head of the answer (the bytes after the length prefix, or
    /// their start; `len` in all) for the fetch session this request used.
    /// `Ok(None)`: done, or nothing to learn; `Ok(Some(n))`: needs the first
    /// `n` bytes. Call before any byte of the answer reaches the client.
    pub fn learn_session(
        &mut self,
        frame: &[u8],
        len: usize,
    ) -> Result<Option<usize>, RewriteError> {
        if self.session.is_none() {
            return Ok(None);
        }
        match session::head(frame, len, self.api_version) {
            session::Head::Need(n) => Ok(Some(n)),
            session::Head::Read {
                error_code,
                session_id,
            } => {
                let note = self.session.take().expect("checked above");
                note.learn(error_code, session_id);
                Ok(None)
            }
            session::Head::Malformed => Err(RewriteError::Decode {
                what: "Fetch",
                version: self.api_version,
                source: anyhow::anyhow!("the response header's tagged fields run past the frame"),
            }),
        }
    }

    /// True when the response passes through undecoded.
    pub fn streams(&self) -> bool {
        self.decode.is_none()
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Runs the plan over the response `frame` (after the length prefix) and
    /// returns the frame to send, length prefix included. Decoding, the
    /// steps and encoding run as one job (on the blocking pool when the
    /// response is large), split only where a step awaits: a broker the
    /// response names must have a listener before addresses are rewritten.
    pub async fn execute(self, frame: Bytes, env: &ResponseEnv) -> Result<Encoded, RewriteError> {
        let kind = self.decode.expect("streamed responses are never executed");
        let size = frame.len();
        let (key, version, steps) = (self.api_key, self.api_version, self.steps);
        let offloaded = |e: crate::offload::Panicked| RewriteError::Step(e.to_string());
        let job_env = env.clone();
        let restores = steps.iter().any(|s| matches!(s, Step::RestoreLarge(_)));
        let job = move || -> Result<Progress, RewriteError> {
            let mut d = Decoded::decode(kind, key, version, frame)?;
            let mut steps = steps.into_iter();
            for step in steps.by_ref() {
                if let Step::RewriteAddresses = step {
                    return Ok(Progress::Listeners(d, steps.collect()));
                }
                apply(&mut d, step, &job_env);
            }
            encoded(d).map(Progress::Done)
        };
        // Restoring waits on the store: always on the large-record pool.
        let first = match (&env.large, restores) {
            (Some(large), true) => large.pool.run(job).await,
            _ => env.offload.run_sized(size, job).await,
        }
        .map_err(offloaded)??;
        let (mut d, rest) = match first {
            Progress::Done(out) => return Ok(out),
            Progress::Listeners(d, rest) => (d, rest),
        };
        let endpoints = d.endpoints();
        if !endpoints.is_empty() {
            env.cluster.learn(&endpoints).await?;
        }
        d.rewrite_addresses(env.cluster.routes())?;
        for step in rest {
            apply(&mut d, step, env);
        }
        env.offload
            .run_sized(size, move || encoded(d))
            .await
            .map_err(offloaded)?
    }
}

/// A response ready to send, and the memory a step took for it (restored
/// large records), to give back once it is written.
pub struct Encoded {
    pub frame: BytesMut,
    pub held: Vec<Held>,
}

fn encoded(mut d: Decoded) -> Result<Encoded, RewriteError> {
    let held = std::mem::take(&mut d.held);
    Ok(Encoded {
        frame: d.encode()?,
        held,
    })
}

/// How far the first job got.
enum Progress {
    Done(Encoded),
    /// Decoded and stepped up to the address rewrite; these steps follow it.
    Listeners(Decoded, Vec<Step>),
}

/// Runs one step that does not await.
fn apply(d: &mut Decoded, step: Step, env: &ResponseEnv) {
    match step {
        Step::LearnTopicIds => env.cluster.topic_ids.learn(d.topic_ids()),
        Step::IndexTraces(pending) => {
            for t in &pending {
                if let Some(base) = d.produce_base_offset(t.name.as_ref(), &t.topic_id, t.partition)
                {
                    env.traces
                        .record(&t.topic, t.partition, base, t.client.as_deref(), &t.traced);
                }
            }
        }
        Step::SessionNotFound => d.session_not_found(),
        Step::RefuseShareFetch => d.refuse_share_fetch(),
        Step::HideShareGroups => d.hide_share_groups(),
        Step::NoteSession(_) => unreachable!("plans keep session notes aside"),
        Step::MergeRejections(rejected) => d.merge_rejections(&rejected),
        Step::DropAborted => d.drop_aborted(),
        Step::RestoreLarge(spec) => {
            if let Some(large) = &env.large {
                d.restore_large(&spec, &env.cluster.topic_ids, large, env.cap);
            }
        }
        Step::ClampVersions => d.clamp_versions(env.leader_endpoints),
        Step::RewriteAddresses => unreachable!("the executor awaits listeners for it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peek(api_key: i16) -> RequestPeek {
        RequestPeek {
            api_key,
            api_version: 9,
            correlation_id: 1,
        }
    }

    #[test]
    fn passthrough_streams_and_policy_steps_decode_in_a_fixed_order() {
        assert!(ResponsePlan::new(peek(0), None, vec![]).streams());
        let p = ResponsePlan::new(
            peek(1),
            None,
            vec![Step::DropAborted, Step::MergeRejections(vec![])],
        );
        assert!(!p.streams());
        let order: Vec<u8> = p.steps().iter().map(Step::order).collect();
        assert_eq!(
            order,
            vec![2, 3],
            "merge, drop aborted; a fetch v9 names no broker"
        );
        let m = ResponsePlan::new(peek(3), Some(Kind::Metadata), vec![]);
        let order: Vec<u8> = m.steps().iter().map(Step::order).collect();
        assert_eq!(order, vec![0, 5], "learn topic ids, then addresses");
    }
}
