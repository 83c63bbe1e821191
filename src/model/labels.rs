//! Key labels: metadata for humans and tooling (team, cost centre,
//! environment), filterable in ListKeys. Labels never authorize anything.

use std::collections::BTreeMap;

use crate::error::Error;

/// Most labels a key carries.
pub const MAX_LABELS: usize = 50;
/// Longest label key, in bytes.
pub const MAX_LABEL_KEY_LEN: usize = 63;
/// Longest label value, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 255;

/// A key's validated labels, sorted by key.
///
/// A label key is 1 to 63 characters of `a-z 0-9 _ . / -` starting with a
/// lower-case letter (so `team`, `cost-centre`, `app.kubernetes.io/name`);
/// a value is 0 to 255 bytes of UTF-8 without control characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates labels as the API sends them.
    pub fn parse<I, K, V>(pairs: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut labels = BTreeMap::new();
        for (key, value) in pairs {
            let (key, value) = (key.into(), value.into());
            check_key(&key)?;
            check_value(&value)?;
            labels.insert(key, value);
            if labels.len() > MAX_LABELS {
                return Err(Error::InvalidArgument(format!(
                    "a key carries at most {MAX_LABELS} labels"
                )));
            }
        }
        Ok(Self(labels))
    }

    /// The labels, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every pair of `selector` is among these labels (an empty
    /// selector matches every key).
    pub fn matches(&self, selector: &Labels) -> bool {
        selector
            .0
            .iter()
            .all(|(k, v)| self.0.get(k).is_some_and(|own| own == v))
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    let bad = || {
        Error::InvalidArgument(format!(
            "a label key is 1 to {MAX_LABEL_KEY_LEN} characters of a-z 0-9 _ . / - starting with a lower-case letter"
        ))
    };
    if key.is_empty() || key.len() > MAX_LABEL_KEY_LEN {
        return Err(bad());
    }
    if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(bad());
    }
    if !key.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'/' | b'-')
    }) {
        return Err(bad());
    }
    Ok(())
}

fn check_value(value: &str) -> Result<(), Error> {
    if value.len() > MAX_LABEL_VALUE_LEN || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "a label value is at most {MAX_LABEL_VALUE_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_follow_the_documented_rules() {
        let good = Labels::parse([
            ("team", "billing"),
            ("app.kubernetes.io/name", ""),
            ("a-1_b", "Zürich 🔐"),
        ])
        .expect("valid");
        assert_eq!(good.len(), 3);
        for key in ["", "Team", "1team", "-x", "te am", "tëam", &"k".repeat(64)] {
            assert!(Labels::parse([(key, "v")]).is_err(), "{key:?}");
        }
        for value in ["a\nb", "\u{7f}", &"v".repeat(256)] {
            assert!(Labels::parse([("k", value)]).is_err(), "{value:?}");
        }
        let fifty = (0..50).map(|i| (format!("k{i}"), String::new()));
        assert!(Labels::parse(fifty).is_ok());
        let fifty_one = (0..51).map(|i| (format!("k{i}"), String::new()));
        assert!(Labels::parse(fifty_one).is_err());
    }

    #[test]
    fn a_selector_matches_by_equality_on_every_pair() {
        let labels = Labels::parse([("team", "billing"), ("env", "prod")]).expect("valid");
        assert!(labels.matches(&Labels::new()));
        assert!(labels.matches(&Labels::parse([("env", "prod")]).expect("valid")));
        assert!(!labels.matches(&Labels::parse([("env", "dev")]).expect("valid")));
        assert!(!labels.matches(&Labels::parse([("env", "prod"), ("tier", "1")]).expect("valid")));
    }
}
