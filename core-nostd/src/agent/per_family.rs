//! One value per address family, indexed by [`Family`] so no index can be
//! out of range.

use core::ops::{Index, IndexMut};

use crate::types::Family;

/// A value for IPv4 and one for IPv6 (`slots[Family::V4]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerFamily<T> {
    /// The IPv4 value.
    pub v4: T,
    /// The IPv6 value.
    pub v6: T,
}

impl<T: Copy> PerFamily<T> {
    /// The same value for both families.
    pub const fn both(value: T) -> Self {
        PerFamily {
            v4: value,
            v6: value,
        }
    }
}

impl<T> PerFamily<T> {
    /// The two values, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.v4, &self.v6].into_iter()
    }

    /// The two values, IPv4 first, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        [&mut self.v4, &mut self.v6].into_iter()
    }
}

impl<T> Index<Family> for PerFamily<T> {
    type Output = T;

    fn index(&self, family: Family) -> &T {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }
}

impl<T> IndexMut<Family> for PerFamily<T> {
    fn index_mut(&mut self, family: Family) -> &mut T {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }
}
