//! A list that remembers whether Go would hold it as a nil slice or an empty one.
//!
//! appc's pod manifest declares `apps`, `volumes`, `isolators`, `annotations` and `ports`
//! without `omitempty`, so Go writes an empty list as `null` when the slice is nil and as `[]`
//! when it is empty but allocated. Which one rkt writes depends on how the slice was made
//! (rkt's generated pod manifest has `"volumes":null` but `"ports":[]`), and a manifest read
//! back keeps what it had (`null` or a missing key reads as nil, `[]` as empty).
use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Vec` that serialises, when empty, as `null` (Go's nil slice) or `[]`.
#[derive(Debug, Clone, Eq)]
pub struct GoSlice<T> {
    items: Vec<T>,
    /// Go's nil slice: written `null` while empty. Pushing items makes no difference to how a
    /// non-empty list is written.
    nil: bool,
}

impl<T> GoSlice<T> {
    /// Go's nil slice (`var s []T`): `null` while empty.
    pub fn nil() -> GoSlice<T> {
        GoSlice {
            items: Vec::new(),
            nil: true,
        }
    }

    /// An allocated slice (`make([]T, 0)` or a literal): `[]` while empty.
    pub fn list(items: Vec<T>) -> GoSlice<T> {
        GoSlice { items, nil: false }
    }

    /// What Go gets from appending `items` to a nil slice: nil if there are none.
    pub fn appended(items: Vec<T>) -> GoSlice<T> {
        let nil = items.is_empty();
        GoSlice { items, nil }
    }

    /// Whether Go would write this list as `null`.
    pub fn is_null(&self) -> bool {
        self.nil && self.items.is_empty()
    }

    pub fn into_vec(self) -> Vec<T> {
        self.items
    }
}

impl<T> Default for GoSlice<T> {
    /// Go's zero value, a nil slice.
    fn default() -> GoSlice<T> {
        GoSlice::nil()
    }
}

/// Equal when the items are and both would be written the same way.
impl<T: PartialEq> PartialEq for GoSlice<T> {
    fn eq(&self, other: &GoSlice<T>) -> bool {
        self.items == other.items && self.is_null() == other.is_null()
    }
}

impl<T> Deref for GoSlice<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.items
    }
}

impl<T> DerefMut for GoSlice<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.items
    }
}

impl<'a, T> IntoIterator for &'a GoSlice<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut GoSlice<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter_mut()
    }
}

impl<T: Serialize> Serialize for GoSlice<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_null() {
            s.serialize_none()
        } else {
            self.items.serialize(s)
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for GoSlice<T> {
    /// `null` reads as nil (so does a missing key, through `#[serde(default)]`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoSlice<T>, D::Error> {
        Ok(match Option::<Vec<T>>::deserialize(d)? {
            Some(items) => GoSlice::list(items),
            None => GoSlice::nil(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nil_and_empty_are_written_as_go_writes_them() {
        let json = |s: &GoSlice<u32>| serde_json::to_string(s).unwrap();
        assert_eq!(json(&GoSlice::nil()), "null");
        assert_eq!(json(&GoSlice::list(vec![])), "[]");
        assert_eq!(json(&GoSlice::appended(vec![])), "null");
        assert_eq!(json(&GoSlice::appended(vec![1])), "[1]");
        let mut nil = GoSlice::nil();
        nil.push(7);
        assert_eq!(json(&nil), "[7]");
        assert_eq!(
            nil,
            GoSlice::list(vec![7]),
            "non-empty lists compare by items"
        );
        assert_ne!(GoSlice::<u32>::nil(), GoSlice::list(vec![]));
    }

    #[test]
    fn reading_keeps_null_and_empty_apart() {
        let read = |s: &str| serde_json::from_str::<GoSlice<u32>>(s).unwrap();
        assert!(read("null").is_null());
        assert!(!read("[]").is_null());
        assert_eq!(*read("[1,2]"), vec![1, 2]);
    }
}
