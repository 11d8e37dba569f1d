//! [`Labels`]: a small, sorted string map for labels, annotations and parameters.
//!
//! Objects carry a handful of labels, and phi-guard keeps tens of thousands of objects in its
//! caches. A `BTreeMap` allocates a node for eleven entries even for one (about 540 bytes); this
//! map keeps its entries in one exactly sized, key-sorted vector (48 bytes per entry), and looks
//! keys up by binary search. Same semantics as the map the API server stores: unique keys, sorted
//! iteration, and for a key that appears twice in JSON, the last value wins.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Labels (or annotations) of an object: unique keys in sorted order.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels {
    entries: Vec<(String, String)>,
}

impl Labels {
    pub const fn new() -> Self {
        Labels {
            entries: Vec::new(),
        }
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        String: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&String>
    where
        String: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        String: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// Set a value; returns the previous one.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(key.as_str()) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<String>
    where
        String: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut String) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Build from entries in any order; for a repeated key the last value wins.
    fn from_entries(mut entries: Vec<(String, String)>) -> Self {
        // Stable: equal keys keep their input order, so keeping the last of a run keeps the
        // last value given.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for e in entries {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        out.shrink_to_fit();
        Labels { entries: out }
    }
}

/// Iterator over `(&key, &value)` in key order.
#[derive(Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (String, String)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a String);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels::from_entries(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Labels {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
        *self = Labels::from_entries(entries);
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(m: BTreeMap<String, String>) -> Self {
        let mut entries: Vec<(String, String)> = m.into_iter().collect();
        entries.shrink_to_fit();
        Labels { entries }
    }
}

impl From<&BTreeMap<String, String>> for Labels {
    fn from(m: &BTreeMap<String, String>) -> Self {
        let entries = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Labels { entries }
    }
}

/// From an optional map, as k8s-openapi's `ObjectMeta` holds labels and annotations.
impl From<Option<&BTreeMap<String, String>>> for Labels {
    fn from(m: Option<&BTreeMap<String, String>>) -> Self {
        m.map(Labels::from).unwrap_or_default()
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Labels {
    fn from(a: [(&str, &str); N]) -> Self {
        a.into_iter().collect()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(e) = map.next_entry::<String, String>()? {
                    entries.push(e);
                }
                Ok(Labels::from_entries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

impl schemars::JsonSchema for Labels {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <BTreeMap<String, String> as schemars::JsonSchema>::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<String, String> as schemars::JsonSchema>::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_last_value_wins() {
        let l: Labels = serde_json::from_str(r#"{"b":"1","a":"2","b":"3"}"#).unwrap();
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            vec![
                (&"a".to_string(), &"2".to_string()),
                (&"b".to_string(), &"3".to_string())
            ]
        );
        assert_eq!(serde_json::to_string(&l).unwrap(), r#"{"a":"2","b":"3"}"#);
        assert!(serde_json::from_str::<Labels>(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn behaves_like_a_btreemap() {
        let pairs = [("app", "web"), ("tier", "db"), ("a", "x"), ("zone", "1")];
        let mut l: Labels = pairs.into();
        let mut m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            l.insert("app".into(), "api".into()),
            m.insert("app".into(), "api".into())
        );
        assert_eq!(
            l.insert("b".into(), "2".into()),
            m.insert("b".into(), "2".into())
        );
        assert_eq!(l.remove("tier"), m.remove("tier"));
        assert_eq!(l.remove("nope"), None);
        for k in ["app", "a", "b", "zone", "tier", ""] {
            assert_eq!(l.get(k), m.get(k), "{k}");
            assert_eq!(l.contains_key(k), m.contains_key(k), "{k}");
        }
        assert!(l.iter().eq(m.iter()));
        assert_eq!(Labels::from(m.clone()), l);
        assert_eq!(Labels::from(&m), l);
        assert_eq!(Labels::from(Some(&m)), l);
        assert!(Labels::from(None::<&BTreeMap<String, String>>).is_empty());
        l.extend([("c", "3"), ("a", "y")]);
        assert_eq!(l.get("a").map(String::as_str), Some("y"));
        assert_eq!(l.len(), 5);
        l.retain(|k, _| k != "c");
        assert!(!l.contains_key("c"));
        assert_eq!(format!("{:?}", Labels::from([("k", "v")])), r#"{"k": "v"}"#);
    }
}
