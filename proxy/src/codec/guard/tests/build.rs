//! Builds message bodies from a layout, pseudo-randomly per seed, as a
//! well-behaved peer would send them.

use super::super::{Layout, F, T};

pub(super) struct Gen {
    state: u64,
    flexible: bool,
    version: i16,
    depth: u32,
}

impl Gen {
    /// A body of `layout` at `v`, and where its top-level tagged fields
    /// start (its end in non-flexible versions).
    pub(super) fn message(layout: &Layout, v: i16, seed: u64) -> (Vec<u8>, usize) {
        let mut g = Gen {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d,
            flexible: v >= layout.flex,
            version: v,
            depth: 0,
        };
        let mut out = Vec::new();
        let tags_at = g.fields(layout.fields, &mut out);
        (out, tags_at)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn varint(out: &mut Vec<u8>, mut n: u32) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A length: compact (n + 1, 0 for null) or fixed-width (-1 for null).
    fn len(&self, out: &mut Vec<u8>, n: Option<usize>, classic: bool, width: usize) {
        if self.flexible && !classic {
            Gen::varint(out, n.map_or(0, |n| n as u32 + 1));
        } else {
            let n = n.map_or(-1, |n| n as i64);
            out.extend_from_slice(&n.to_be_bytes()[8 - width..]);
        }
    }

    /// Walks `fields` as the writer; returns where the tagged fields start.
    fn fields(&mut self, fields: &[F], out: &mut Vec<u8>) -> usize {
        let v = self.version;
        let here = |f: &&F| f.lo <= v && v <= f.hi;
        for f in fields.iter().filter(here).filter(|f| f.tag.is_none()) {
            self.ty(&f.ty, out);
        }
        let tags_at = out.len();
        if !self.flexible {
            return tags_at;
        }
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        for f in fields.iter().filter(here) {
            if let Some(tag) = f.tag {
                if self.below(2) == 0 {
                    let mut value = Vec::new();
                    self.ty(&f.ty, &mut value);
                    tags.push((tag, value));
                }
            }
        }
        if self.below(2) == 0 {
            // An unknown tag, past the known ones.
            let value = (0..self.below(4)).map(|_| self.next() as u8).collect();
            tags.push((40 + self.below(40) as u32, value));
        }
        Gen::varint(out, tags.len() as u32);
        for (tag, value) in tags {
            Gen::varint(out, tag);
            Gen::varint(out, value.len() as u32);
            out.extend_from_slice(&value);
        }
        tags_at
    }

    fn ty(&mut self, ty: &T, out: &mut Vec<u8>) {
        match ty {
            // Booleans and int8 enums alike: 0 or 1 decode and encode back.
            T::N(1) => out.push(self.below(2) as u8),
            T::N(n) => out.extend((0..*n).map(|_| self.next() as u8)),
            T::Str { null, classic } => self.sized(*null, *classic, 2, out),
            T::Bytes { null, classic } => self.sized(*null, *classic, 4, out),
            T::A(e) | T::NA(e) => {
                if matches!(ty, T::NA(_)) && self.below(4) == 0 {
                    self.len(out, None, false, 4);
                    return;
                }
                // Fewer elements deeper down, so a message stays small.
                let n = self.below(if self.depth < 2 { 4 } else { 2 }) as usize;
                self.len(out, Some(n), false, 4);
                self.depth += 1;
                for _ in 0..n {
                    self.ty(e, out);
                }
                self.depth -= 1;
            }
            T::S(fields) => {
                self.fields(fields, out);
            }
        }
    }

    fn sized(&mut self, null: bool, classic: bool, width: usize, out: &mut Vec<u8>) {
        if null && self.below(4) == 0 {
            self.len(out, None, classic, width);
            return;
        }
        let n = self.below(7) as usize;
        self.len(out, Some(n), classic, width);
        out.extend((0..n).map(|_| b'a' + self.below(26) as u8));
    }
}
