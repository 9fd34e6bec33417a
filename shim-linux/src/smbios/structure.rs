//! The structure table (DSP0134 §6.1): structures one after another, each a
//! 4-byte header (type, length, handle), the rest of its formatted area,
//! and a string set ended by two NUL bytes. Walked the way dmidecode walks
//! it, so both stop at the same broken structure.

use super::{le_u16, SmbiosError};

mod field {
    pub const TYPE: usize = 0;
    pub const LENGTH: usize = 1;
    pub const HANDLE: usize = 2;
    /// The header's size: the least a formatted area can be.
    pub const HEADER_LEN: usize = 4;
}

/// The end-of-table structure type.
pub const END_OF_TABLE: u8 = 127;

/// One structure: its formatted area and its string set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure<'a> {
    /// Where it starts in the table.
    pub offset: usize,
    formatted: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Structure<'a> {
    /// The structure type.
    pub fn kind(&self) -> u8 {
        self.formatted.get(field::TYPE).copied().unwrap_or(0)
    }

    /// The formatted area's length, from the header.
    pub fn length(&self) -> u8 {
        self.formatted.get(field::LENGTH).copied().unwrap_or(0)
    }

    /// The handle.
    pub fn handle(&self) -> u16 {
        le_u16(self.formatted, field::HANDLE)
    }

    /// The formatted area, header included.
    pub fn formatted(&self) -> &'a [u8] {
        self.formatted
    }

    /// String `index` (1-based; 0 means "none") of the string set, without
    /// its NUL.
    pub fn string(&self, index: u8) -> Option<&'a [u8]> {
        let n = usize::from(index.checked_sub(1)?);
        self.strings
            .split(|b| *b == 0)
            .take_while(|s| !s.is_empty())
            .nth(n)
    }
}

/// The structures of a table, in order; an error ends the walk.
#[derive(Debug, Clone)]
pub struct Structures<'a> {
    table: &'a [u8],
    offset: usize,
    remaining: Option<u16>,
    done: bool,
}

impl<'a> Structures<'a> {
    /// Walks `table`. `count`: the structure count of a 2.x entry point
    /// (the walk stops after that many); without it (3.x) the walk stops
    /// after the end-of-table structure (type 127).
    pub fn new(table: &'a [u8], count: Option<u16>) -> Self {
        Structures {
            table,
            offset: 0,
            remaining: count.filter(|n| *n > 0),
            done: false,
        }
    }

    fn next_structure(&mut self) -> Result<Option<Structure<'a>>, SmbiosError> {
        let offset = self.offset;
        let Some(rest) = self.table.get(offset..) else {
            return Ok(None);
        };
        if rest.len() < field::HEADER_LEN {
            return Ok(None);
        }
        let kind = rest.get(field::TYPE).copied().unwrap_or(0);
        let length = rest.get(field::LENGTH).copied().unwrap_or(0);
        if usize::from(length) < field::HEADER_LEN {
            return Err(SmbiosError::StructureLength {
                offset,
                kind,
                length,
            });
        }
        let truncated = SmbiosError::StructureTruncated {
            offset,
            kind,
            length,
            table_len: self.table.len(),
        };
        let (Some(formatted), Some(after)) = (
            rest.get(..usize::from(length)),
            rest.get(usize::from(length)..),
        ) else {
            return Err(truncated);
        };
        // The string set ends at the first pair of NULs (an empty set is
        // just the pair).
        let Some(end) = after.windows(2).position(|w| w == [0, 0]) else {
            return Err(truncated);
        };
        let strings = after.get(..end).unwrap_or(&[]);
        let total = usize::from(length).saturating_add(end).saturating_add(2);
        self.offset = offset.saturating_add(total);
        Ok(Some(Structure {
            offset,
            formatted,
            strings,
        }))
    }
}

impl<'a> Iterator for Structures<'a> {
    type Item = Result<Structure<'a>, SmbiosError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.remaining == Some(0) {
            return None;
        }
        match self.next_structure() {
            Ok(Some(s)) => {
                self.remaining = self.remaining.map(|n| n.saturating_sub(1));
                if s.kind() == END_OF_TABLE && self.remaining.is_none() {
                    self.done = true;
                }
                Some(Ok(s))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_with_and_without_strings_are_walked_in_order() {
        let mut t = vec![1, 4, 0x01, 0x00, b'a', b'b', 0, b'c', 0, 0];
        t.extend([42, 5, 0x02, 0x00, 0x40, 0, 0]);
        t.extend([127, 4, 0xFF, 0xFF, 0, 0]);
        t.extend([9, 4, 0, 0, 0, 0]); // after the end marker: not read
        let v: Vec<_> = Structures::new(&t, None).map(|s| s.unwrap()).collect();
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].kind(), v[0].handle()), (1, 1));
        assert_eq!(v[0].string(1), Some(&b"ab"[..]));
        assert_eq!(v[0].string(2), Some(&b"c"[..]));
        assert_eq!(v[0].string(3), None);
        assert_eq!(v[0].string(0), None);
        assert_eq!(
            (v[1].kind(), v[1].offset, v[1].formatted()),
            (42, 10, &t[10..15])
        );
        assert_eq!(v[2].kind(), END_OF_TABLE);
        // A 2.x count stops the walk, not the end marker.
        assert_eq!(Structures::new(&t, Some(1)).count(), 1);
        assert_eq!(Structures::new(&t, Some(4)).count(), 4);
    }

    #[test]
    fn a_short_length_or_a_missing_terminator_ends_the_walk_with_an_error() {
        let t = [1, 4, 0, 0, 0, 0, 42, 3, 0, 0, 0, 0];
        let v: Vec<_> = Structures::new(&t, None).collect();
        assert!(v[0].is_ok());
        assert_eq!(
            v[1],
            Err(SmbiosError::StructureLength {
                offset: 6,
                kind: 42,
                length: 3
            })
        );
        assert_eq!(v.len(), 2);
        let t = [42, 200, 0, 0, 0x40, 0, 0];
        assert!(matches!(
            Structures::new(&t, None).next(),
            Some(Err(SmbiosError::StructureTruncated { length: 200, .. }))
        ));
        let t = [42, 4, 0, 0, b'x', 0];
        assert!(matches!(
            Structures::new(&t, None).next(),
            Some(Err(SmbiosError::StructureTruncated { .. }))
        ));
    }
}
