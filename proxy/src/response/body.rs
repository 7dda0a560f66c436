//! What response steps read from, or filter in, decoded bodies: topic ids
//! (Metadata), the base offsets the broker gave produced partitions
//! (Produce), and aborted transactions' batches (Fetch).

use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::codec::{Body, Decoded};
use crate::cluster::TopicIds;
use crate::codec::aborted::drop_aborted;
use crate::large::restore::{restore, RestoreSpec};
use crate::large::LargeRecords;

/// ShareGroupHeartbeat, ShareGroupDescribe, ShareFetch, ShareAcknowledge.
const SHARE_GROUP_APIS: [i16; 4] = [76, 77, 78, 79];

impl Decoded {
    /// Topic id → name pairs a Metadata response names (for Produce v13 / Fetch v13+).
    pub fn topic_ids(&self) -> Vec<(Uuid, String)> {
        match &self.body {
            Body::Metadata(m) => m
                .topics
                .iter()
                .filter(|t| !t.topic_id.is_nil())
                .filter_map(|t| Some((t.topic_id, t.name.as_ref()?.0.to_string())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The base offset the broker gave a produced partition, if it took it.
    pub fn produce_base_offset(
        &self,
        name: Option<&StrBytes>,
        topic_id: &Uuid,
        partition: i32,
    ) -> Option<i64> {
        let Body::Produce(p) = &self.body else {
            return None;
        };
        p.responses
            .iter()
            .filter(|t| match name {
                Some(n) => t.name.0 == *n,
                None => t.topic_id == *topic_id,
            })
            .flat_map(|t| &t.partition_responses)
            .find(|r| r.index == partition && r.error_code == 0 && r.base_offset >= 0)
            .map(|r| r.base_offset)
    }

    /// Turns a Fetch answer into FETCH_SESSION_ID_NOT_FOUND with no data:
    /// the client drops its session and sends a full fetch.
    pub fn session_not_found(&mut self) {
        let Body::Fetch(f) = &mut self.body else {
            return;
        };
        f.error_code = super::session::FETCH_SESSION_ID_NOT_FOUND;
        f.session_id = 0;
        f.responses.clear();
    }

    /// Turns a ShareFetch answer into UNSUPPORTED_VERSION with no records:
    /// share fetches get neither the restore nor the read_committed step, so
    /// while a fetch policy applies Strait serves none (and leaves share
    /// groups out of ApiVersions, [`Decoded::hide_share_groups`]).
    pub fn refuse_share_fetch(&mut self) {
        let Body::ShareFetch(f) = &mut self.body else {
            return;
        };
        f.error_code = super::UNSUPPORTED_VERSION;
        f.error_message = Some(StrBytes::from_static_str(
            "Strait serves no share fetches while a fetch policy (read_committed or large records) applies",
        ));
        f.responses.clear();
        crate::metrics::share_fetch_refused();
    }

    /// Leaves the share-group apis (KIP-932: ShareGroupHeartbeat,
    /// ShareGroupDescribe, ShareFetch, ShareAcknowledge) out of an
    /// ApiVersions answer, so clients do not try share groups.
    pub fn hide_share_groups(&mut self) {
        if let Body::ApiVersions(a) = &mut self.body {
            a.api_keys
                .retain(|k| !SHARE_GROUP_APIS.contains(&k.api_key));
        }
    }

    /// Drops aborted transactions' batches from every partition of a Fetch
    /// response, as a read_committed consumer would.
    pub fn drop_aborted(&mut self) {
        let Body::Fetch(f) = &mut self.body else {
            return;
        };
        for t in &mut f.responses {
            for p in &mut t.partitions {
                let (Some(aborted), Some(records)) = (&p.aborted_transactions, &p.records) else {
                    continue;
                };
                if aborted.is_empty() {
                    continue;
                }
                let list: Vec<(i64, i64)> = aborted
                    .iter()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect();
                let kept = drop_aborted(records, &list);
                p.records = Some(kept);
            }
        }
    }

    /// Puts large records' values back into a Fetch response
    /// ([`crate::large::restore`]); the memory it took is held until the
    /// response is encoded and dropped.
    pub fn restore_large(
        &mut self,
        spec: &RestoreSpec,
        names: &TopicIds,
        large: &LargeRecords,
        cap: usize,
    ) {
        let Body::Fetch(f) = &mut self.body else {
            return;
        };
        let held = restore(f, spec, |id| names.name_of(id), large, cap);
        self.held.extend(held);
    }
}
