//! The env-file formats (docs/FORMAT.md, "Env values"): a value is
//! `tresor:v1:` and unpadded base64url of `u16be len(key id) || key id ||
//! ciphertext`; a file's first line is a header comment
//! `# tresor-env v1 {"key_id":..,"context":{..}}` naming the key new values
//! go under and the file's context. Each value's encryption context is the
//! file's (or, for values from the environment, `tresor exec --context`'s)
//! plus [`VAR_CONTEXT_KEY`] = the variable's name.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// What every encrypted value starts with.
pub const VALUE_PREFIX: &str = "tresor:v1:";
/// What the header line starts with.
pub const HEADER_PREFIX: &str = "# tresor-env v1 ";
/// The context key that binds a value to its variable's name.
pub const VAR_CONTEXT_KEY: &str = "tresor.env.var";

/// An encrypted value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// The key it was made with.
    pub key_id: String,
    /// The tresor ciphertext.
    pub ciphertext: Vec<u8>,
}

impl SealedValue {
    /// Whether `text` claims to be an encrypted value (it may still be
    /// malformed).
    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(VALUE_PREFIX)
    }

    /// Parses `tresor:v1:...`; `None` when it is not well-formed.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.strip_prefix(VALUE_PREFIX)?)
            .ok()?;
        let len = usize::from(u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?));
        let key_id = std::str::from_utf8(bytes.get(2..2 + len)?).ok()?.to_owned();
        let ciphertext = bytes.get(2 + len..)?.to_vec();
        if key_id.is_empty() || ciphertext.is_empty() {
            return None;
        }
        Some(Self { key_id, ciphertext })
    }

    /// The value's text.
    pub fn encode(&self) -> String {
        // Key ids are at most 128 characters (the server refuses longer).
        let len = u16::try_from(self.key_id.len()).unwrap_or(u16::MAX);
        let mut bytes = Vec::with_capacity(2 + self.key_id.len() + self.ciphertext.len());
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(self.key_id.as_bytes());
        bytes.extend_from_slice(&self.ciphertext);
        format!("{VALUE_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// A file's header: the key new values go under and the file's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The key `tresor env encrypt` was given.
    pub key_id: String,
    /// The file's context (every value's, with its variable's name).
    pub context: BTreeMap<String, String>,
}

impl Header {
    /// The header line (with its newline).
    pub fn line(&self) -> String {
        // A struct of strings always serialises.
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{HEADER_PREFIX}{json}\n")
    }

    /// Parses a header line; `None` when `line` is not one.
    pub fn parse(line: &str) -> Option<Result<Self, String>> {
        let json = line.trim_end().strip_prefix(HEADER_PREFIX)?;
        Some(
            serde_json::from_str(json)
                .map_err(|e| format!("the tresor-env header is damaged: {e}")),
        )
    }

    /// The encryption context of variable `name` in this file.
    pub fn context_of(&self, name: &str) -> HashMap<String, String> {
        context_of(&self.context, name)
    }
}

/// `context` plus the variable's name.
pub fn context_of(context: &BTreeMap<String, String>, name: &str) -> HashMap<String, String> {
    let mut pairs: HashMap<String, String> = context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.insert(VAR_CONTEXT_KEY.to_owned(), name.to_owned());
    pairs
}

/// Refuses a `--context` that names the reserved key.
pub fn check_context(context: &BTreeMap<String, String>) -> Result<(), String> {
    if context.contains_key(VAR_CONTEXT_KEY) {
        return Err(format!(
            "--context {VAR_CONTEXT_KEY}=... is reserved: tresor puts each variable's name there"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_garbage_is_not_a_value() {
        let value = SealedValue {
            key_id: "app/env".into(),
            ciphertext: vec![1, 2, 3, 250],
        };
        let text = value.encode();
        assert!(text.starts_with(VALUE_PREFIX) && SealedValue::is_sealed(&text));
        assert!(!text.contains(['=', '+', '/', '#', ' ']), "{text}");
        assert_eq!(SealedValue::parse(&text), Some(value));
        for bad in [
            "tresor:v1:",
            "tresor:v1:!!",
            "tresor:v1:AAA",
            "tresor:v2:AAAA",
            "plain",
        ] {
            assert_eq!(SealedValue::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_round_trip_and_bind_the_name() {
        let header = Header {
            key_id: "app/env".into(),
            context: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
        };
        let parsed = Header::parse(&header.line())
            .expect("a header")
            .expect("valid");
        assert_eq!(parsed, header);
        assert!(Header::parse("# a comment\n").is_none());
        assert!(
            Header::parse("# tresor-env v1 {oops\n")
                .expect("a header")
                .is_err()
        );
        let context = header.context_of("DB_PASS");
        assert_eq!(
            context.get(VAR_CONTEXT_KEY).map(String::as_str),
            Some("DB_PASS")
        );
        assert_eq!(context.get("env").map(String::as_str), Some("prod"));
        assert!(
            check_context(&BTreeMap::from([(
                VAR_CONTEXT_KEY.to_owned(),
                "x".to_owned()
            )]))
            .is_err()
        );
    }
}
