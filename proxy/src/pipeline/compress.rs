//! Compression stage: writes batches in the topic's codec. Uncompressed
//! batches are compressed; batches the client compressed in another codec are
//! re-compressed only with `recompress = true`. The result replaces the
//! batch's records only when it is smaller. zstd needs Produce v7+; older
//! requests keep their codec.

use strait_policies::{Codec, CompressRules};

use super::{Context, Stage, StageError};
use crate::codec::compression::{compress, Compression};
use crate::codec::edit::BatchEdit;
use crate::metrics;

/// The first Produce version that may carry zstd batches.
pub const ZSTD_MIN_PRODUCE_VERSION: i16 = 7;

pub struct Compress {
    codec: Compression,
    level: i32,
    recompress: bool,
}

impl Compress {
    pub fn new(rules: &CompressRules) -> Compress {
        Compress {
            codec: wire_codec(rules.codec),
            level: rules.level,
            recompress: rules.recompress,
        }
    }

    /// The codec (and level) this batch should end up in.
    fn target(&self, batch: &BatchEdit, api_version: i16) -> (Compression, i32) {
        let original = batch.original_codec();
        let wanted = if original == Compression::None || original == self.codec || self.recompress {
            (self.codec, self.level)
        } else {
            (original, original.default_level())
        };
        if wanted.0 == Compression::Zstd && api_version < ZSTD_MIN_PRODUCE_VERSION {
            metrics::compress_skipped("zstd_needs_produce_v7");
            return (original, original.default_level());
        }
        wanted
    }
}

/// The wire codec for a policy file's `codec` name.
pub fn wire_codec(codec: Codec) -> Compression {
    match codec {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

impl Stage for Compress {
    fn name(&self) -> &'static str {
        "compress"
    }

    fn rule(&self) -> strait_policies::Rule {
        strait_policies::Rule::Compress
    }

    fn apply(&self, batch: &mut BatchEdit, cx: &mut Context<'_>) -> Result<(), StageError> {
        if batch.sealed_as().is_some() {
            // An earlier stage chose the codec (large records: the codec a
            // compress remedy needs, or plain for a batch of references).
            metrics::compress_skipped("codec_chosen_by_a_stage");
            return Ok(());
        }
        let (codec, level) = self.target(batch, cx.api_version);
        if codec == Compression::None || batch.codec() == codec {
            return Ok(());
        }
        let plain = batch.plain()?;
        let packed = compress(codec, level, &plain)?;
        if packed.len() < batch.section_len() {
            metrics::compressed(batch.section_len(), packed.len());
            batch.set_section(codec, packed);
        } else {
            metrics::compress_skipped("not_smaller");
        }
        Ok(())
    }
}
