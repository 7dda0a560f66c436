//! A classic consumer group member's assignment, as the consumer protocol
//! lays it out in DescribeGroups' `member_assignment` bytes.

/// The partitions in a classic consumer group member's assignment (the
/// consumer protocol's Assignment: version, then topic → partitions; user
/// data after it is not read). `None` when the bytes are not one: a group
/// of another protocol, or a broken client.
pub(crate) fn consumer(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    let mut r = Reader(bytes);
    let _version = r.i16()?;
    let topics = r.count()?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let len = usize::try_from(r.i16()?).ok()?;
        let name = std::str::from_utf8(r.take(len)?).ok()?.to_string();
        let partitions = r.count()?;
        for _ in 0..partitions {
            out.push((name.clone(), r.i32()?));
        }
    }
    Some(out)
}

/// Big-endian reads that fail instead of running past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    /// An array length: never more elements than bytes left (each takes
    /// at least two), so a hostile count cannot make the loop run long.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n <= self.0.len() / 2).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = vec![0, 3];
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes()); // null user data
        b
    }

    #[test]
    fn a_classic_assignment_reads_as_topic_partitions() {
        let b = assignment(&[("orders", &[0, 2]), ("refunds", &[1])]);
        assert_eq!(
            consumer(&b).unwrap(),
            vec![
                ("orders".to_string(), 0),
                ("orders".to_string(), 2),
                ("refunds".to_string(), 1)
            ]
        );
    }

    #[test]
    fn broken_assignments_are_refused_not_read_past_their_end() {
        let b = assignment(&[("orders", &[0, 2])]);
        for cut in 0..b.len() - 4 {
            assert_eq!(consumer(&b[..cut]), None, "cut at {cut}");
        }
        // A hostile count is refused before any loop runs.
        let mut hostile = vec![0, 0];
        hostile.extend(i32::MAX.to_be_bytes());
        assert_eq!(consumer(&hostile), None);
        assert_eq!(consumer(&[]), None);
    }
}
