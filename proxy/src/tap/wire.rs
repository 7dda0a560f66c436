//! The few request fields the tap reads, walked by hand: the request
//! header's client id, and a group request's first fields. Every length is
//! checked against the bytes left before anything is taken, so a hostile
//! length prefix costs nothing (nothing is reserved from it).

/// A cursor over a frame body.
pub struct Wire<'a> {
    b: &'a [u8],
    /// Flexible versions: compact strings and arrays, tagged fields.
    pub flexible: bool,
}

/// Why a frame could not be read; the observation is dropped and counted.
#[derive(Debug, PartialEq, Eq)]
pub struct Short;

impl<'a> Wire<'a> {
    pub fn new(b: &'a [u8], flexible: bool) -> Wire<'a> {
        Wire { b, flexible }
    }

    pub fn rest(&self) -> &'a [u8] {
        self.b
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if self.b.len() < n {
            return Err(Short);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Short> {
        self.take(n).map(|_| ())
    }

    pub fn i16(&mut self) -> Result<i16, Short> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }

    pub fn i32(&mut self) -> Result<i32, Short> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }

    pub fn i64(&mut self) -> Result<i64, Short> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }

    pub fn uuid(&mut self) -> Result<[u8; 16], Short> {
        Ok(self.take(16)?.try_into().expect("16"))
    }

    pub fn uvarint(&mut self) -> Result<u64, Short> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Short)
    }

    /// A string, compact or classic by the version; None when null.
    pub fn string(&mut self) -> Result<Option<&'a str>, Short> {
        if !self.flexible {
            return self.classic_string();
        }
        let len = match self.uvarint()? {
            0 => return Ok(None),
            n => (n - 1) as usize,
        };
        std::str::from_utf8(self.take(len)?)
            .map(Some)
            .map_err(|_| Short)
    }

    /// A classic (i16-prefixed) string, as the request header's client id
    /// always is; None when null.
    pub fn classic_string(&mut self) -> Result<Option<&'a str>, Short> {
        let Some(len) = self.classic_len()? else {
            return Ok(None);
        };
        std::str::from_utf8(self.take(len)?)
            .map(Some)
            .map_err(|_| Short)
    }

    fn classic_len(&mut self) -> Result<Option<usize>, Short> {
        match self.i16()? {
            -1 => Ok(None),
            n if n < 0 => Err(Short),
            n => Ok(Some(n as usize)),
        }
    }

    /// Bytes, compact or classic by the version; None when null.
    pub fn bytes(&mut self) -> Result<Option<&'a [u8]>, Short> {
        let len = if self.flexible {
            match self.uvarint()? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i32()? {
                -1 => return Ok(None),
                n if n < 0 => return Err(Short),
                n => n as usize,
            }
        };
        self.take(len).map(Some)
    }

    /// An array's length, compact or classic by the version (null reads as
    /// empty). A length beyond what the bytes left could hold (every element
    /// takes at least `min_element` bytes) is refused.
    pub fn array(&mut self, min_element: usize) -> Result<usize, Short> {
        let n = if self.flexible {
            (self.uvarint()?).saturating_sub(1) as usize
        } else {
            match self.i32()? {
                -1 => 0,
                n if n < 0 => return Err(Short),
                n => n as usize,
            }
        };
        if n.saturating_mul(min_element.max(1)) > self.b.len() {
            return Err(Short);
        }
        Ok(n)
    }

    /// Skips a tagged-field section (flexible versions only).
    pub fn tags(&mut self) -> Result<(), Short> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let n = self.uvarint()? as usize;
            self.take(n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_arrays_and_hostile_lengths() {
        let mut w = Wire::new(&[0, 3, b'a', b'b', b'c', 0xff, 0xff], false);
        assert_eq!(w.classic_string(), Ok(Some("abc")));
        assert_eq!(w.classic_string(), Ok(None));
        let mut w = Wire::new(&[4, b'x', b'y', b'z', 0], true);
        assert_eq!(w.string(), Ok(Some("xyz")));
        assert_eq!(w.string(), Ok(None));
        // An array claiming two billion elements in a few bytes.
        let mut w = Wire::new(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3], false);
        assert_eq!(w.array(4), Err(Short));
        let mut w = Wire::new(&[0xff, 0xff, 0xff, 0xff, 0x0f], true);
        assert_eq!(w.array(1), Err(Short));
        // A string longer than the frame.
        let mut w = Wire::new(&[0, 9, b'a'], false);
        assert_eq!(w.classic_string(), Err(Short));
        let mut w = Wire::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], true);
        assert_eq!(w.uvarint(), Err(Short));
    }
}
