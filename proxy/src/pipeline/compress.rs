//! Compression stage: writes batches in the topic's codec. Uncompressed
//! batches are compressed; batches the client compressed in another codec are
//! re-compressed only with `recompress = true`. The result replaces the
//! batch's records only when it is smaller. zstd needs Produce v7+; older
//! requests keep their codec.

use strait_policies::set::{GZIP_DEFAULT_LEVEL, ZSTD_DEFAULT_LEVEL};
use strait_policies::{Codec, CompressRules};

use super::{Context, Stage};
use crate::codec::batch::BatchError;
use crate::codec::compression::compress;
use crate::codec::records::BatchEdit;

/// The first Produce version that may carry zstd batches.
pub const ZSTD_MIN_PRODUCE_VERSION: i16 = 7;

pub struct Compress {
    codec: Codec,
    level: i32,
    recompress: bool,
}

impl Compress {
    pub fn new(rules: &CompressRules) -> Compress {
        Compress {
            codec: rules.codec,
            level: rules.level,
            recompress: rules.recompress,
        }
    }

    /// The codec (and level) this batch should end up in.
    fn target(&self, batch: &BatchEdit, api_version: i16) -> (Codec, i32) {
        let original = batch.original_codec();
        let wanted = if original == Codec::None || original == self.codec || self.recompress {
            (self.codec, self.level)
        } else {
            (original, default_level(original))
        };
        if wanted.0 == Codec::Zstd && api_version < ZSTD_MIN_PRODUCE_VERSION {
            metrics::counter!("strait_pipeline_compress_skipped_total", "reason" => "zstd_needs_produce_v7")
                .increment(1);
            return (original, default_level(original));
        }
        wanted
    }
}

fn default_level(codec: Codec) -> i32 {
    match codec {
        Codec::Gzip => GZIP_DEFAULT_LEVEL,
        Codec::Zstd => ZSTD_DEFAULT_LEVEL,
        _ => 0,
    }
}

impl Stage for Compress {
    fn name(&self) -> &'static str {
        "compress"
    }

    fn rule(&self) -> strait_policies::Rule {
        strait_policies::Rule::Compress
    }

    fn apply(&self, batch: &mut BatchEdit, cx: &mut Context<'_>) -> Result<(), BatchError> {
        let (codec, level) = self.target(batch, cx.api_version);
        if codec == Codec::None || batch.codec() == codec {
            return Ok(());
        }
        let plain = batch.plain()?;
        let packed = compress(codec, level, &plain)?;
        if packed.len() < batch.section_len() {
            metrics::counter!("strait_pipeline_compress_bytes_total", "direction" => "in")
                .increment(batch.section_len() as u64);
            metrics::counter!("strait_pipeline_compress_bytes_total", "direction" => "out")
                .increment(packed.len() as u64);
            batch.set_section(codec, packed);
        } else {
            metrics::counter!("strait_pipeline_compress_skipped_total", "reason" => "not_smaller")
                .increment(1);
        }
        Ok(())
    }
}
