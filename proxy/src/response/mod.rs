//! The response side: everything Strait does to a broker's response before
//! the client sees it. Most responses stream through untouched; a request
//! whose response must change gets a [`ResponsePlan`] when it is admitted,
//! and the plan's steps run once the response arrives.
//!
//! - [`codec`]: decoding and encoding the responses Strait rewrites.
//!   Every body (and header) is walked by [`crate::codec::guard`] first, so
//!   a malformed array length cannot make the decoder reserve more memory
//!   than the frame holds.
//! - [`versions`]: which request versions Strait serves; the ApiVersions clamp.
//! - [`addresses`]: broker endpoints in responses, pointed at Strait.
//! - [`merge`]: policy rejections merged into the broker's answer.
//! - [`body`]: reads and filters over decoded bodies (topic ids, base offsets,
//!   aborted transactions).
//! - [`plan`]: the plan and its execution.

pub mod addresses;
pub mod body;
pub mod codec;
pub mod merge;
pub mod plan;
pub mod session;
pub mod versions;

pub use addresses::AddressMap;
pub use codec::{Decoded, Kind, RewriteError, UNSUPPORTED_VERSION};
pub use merge::{Rejected, TOPIC_RESOURCE};
pub use plan::{Encoded, PendingTraces, ResponseEnv, ResponsePlan, Step};
pub use versions::{classify, proxy_range, Unsupported};
