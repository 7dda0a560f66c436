//! The walk itself: a cursor over a body that reads lengths, skips what
//! it does not need and refuses what the decoder would choke on.

use super::{F, T};

/// Where the walk found a body malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the body ends at byte {at} inside a field")]
    Short { at: usize },
    #[error("an array at byte {at} declares {count} elements but only {left} bytes are left")]
    Array { at: usize, count: u64, left: usize },
    #[error("an array at byte {at} declares a negative length ({count})")]
    Negative { at: usize, count: i32 },
    #[error(
        "a tagged field at byte {at} has tag {tag}: tags must ascend and fit an int32 \
         (the decoder would drop or mangle it, and the message would not encode back)"
    )]
    Tag { at: usize, tag: u32 },
    #[error("no guard layout for this message (a decode the guard does not cover)")]
    Unguarded,
}

pub(super) struct Walk<'a> {
    buf: &'a [u8],
    at: usize,
    /// Flexible versions: compact lengths and tagged fields.
    flexible: bool,
    version: i16,
    /// Where each array length was read (the tests corrupt them).
    #[cfg(test)]
    pub(super) arrays: Vec<(usize, bool)>,
}

impl<'a> Walk<'a> {
    pub(super) fn new(buf: &'a [u8], flexible: bool, version: i16) -> Walk<'a> {
        Walk {
            buf,
            at: 0,
            flexible,
            version,
            #[cfg(test)]
            arrays: Vec::new(),
        }
    }

    pub(super) fn at(&self) -> usize {
        self.at
    }

    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn skip(&mut self, n: u64) -> Result<(), Malformed> {
        if n > self.left() as u64 {
            return Err(Malformed::Short { at: self.buf.len() });
        }
        self.at += n as usize;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let b = self
            .buf
            .get(self.at..self.at + N)
            .ok_or(Malformed::Short { at: self.buf.len() })?;
        self.at += N;
        Ok(b.try_into().expect("N bytes"))
    }

    /// An unsigned varint as kafka-protocol reads it: at most five bytes,
    /// bits past 32 dropped.
    fn varint(&mut self) -> Result<u32, Malformed> {
        let mut value = 0u32;
        for i in 0..5 {
            let [b] = self.bytes::<1>()?;
            value |= u32::from(b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A string or bytes: its length, then that many bytes. Null and, for
    /// the decoder to refuse, other negative lengths take no bytes.
    fn sized(&mut self, classic: bool, wide: bool) -> Result<(), Malformed> {
        let len = if self.flexible && !classic {
            u64::from(self.varint()?).saturating_sub(1)
        } else if wide {
            u64::try_from(i32::from_be_bytes(self.bytes()?)).unwrap_or(0)
        } else {
            u64::try_from(i16::from_be_bytes(self.bytes()?)).unwrap_or(0)
        };
        self.skip(len)
    }

    /// An array; `element` walks one element.
    fn array(&mut self, element: &T) -> Result<(), Malformed> {
        let at = self.at;
        #[cfg(test)]
        self.arrays.push((at, self.flexible));
        let count = if self.flexible {
            // 0 is null; n is n - 1 elements.
            u64::from(self.varint()?).saturating_sub(1)
        } else {
            match i32::from_be_bytes(self.bytes()?) {
                -1 => 0,
                n if n < 0 => return Err(Malformed::Negative { at, count: n }),
                n => n as u64,
            }
        };
        if count > self.left() as u64 {
            return Err(Malformed::Array {
                at,
                count,
                left: self.left(),
            });
        }
        for _ in 0..count {
            self.ty(element)?;
        }
        Ok(())
    }

    fn ty(&mut self, ty: &T) -> Result<(), Malformed> {
        match ty {
            T::N(n) => self.skip(u64::from(*n)),
            T::Str { classic, .. } => self.sized(*classic, false),
            T::Bytes { classic, .. } => self.sized(*classic, true),
            T::A(e) | T::NA(e) => self.array(e),
            T::S(fields) => self.fields(fields),
        }
    }

    /// A struct: its fields in this version, then (flexible versions) its
    /// tagged fields, the known ones walked as their type and the rest
    /// skipped by size, as the decoder reads them.
    pub(super) fn fields(&mut self, fields: &[F]) -> Result<(), Malformed> {
        let v = self.version;
        let here = |f: &&F| f.lo <= v && v <= f.hi;
        for f in fields.iter().filter(here).filter(|f| f.tag.is_none()) {
            self.ty(&f.ty)?;
        }
        if !self.flexible {
            return Ok(());
        }
        let n = self.varint()?;
        let mut previous: Option<u32> = None;
        for _ in 0..n {
            let at = self.at;
            let tag = self.varint()?;
            if tag > i32::MAX as u32 || previous.is_some_and(|p| tag <= p) {
                return Err(Malformed::Tag { at, tag });
            }
            previous = Some(tag);
            let size = self.varint()?;
            match fields.iter().filter(here).find(|f| f.tag == Some(tag)) {
                Some(f) => self.ty(&f.ty)?,
                None => self.skip(u64::from(size))?,
            }
        }
        Ok(())
    }
}
