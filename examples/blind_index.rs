//! A table of users with an encrypted email column and a blind index on
//! it, stored in sled: rows are found by email although only ciphertexts
//! and MAC tokens are stored, also after the MAC key is rotated.
//!
//! ```text
//! tresor dev          # in one terminal; then, in another, its export lines (admin)
//! tresor key create crm/records --owner spiffe://tresor.dev/billing
//! tresor key create crm/email-index --owner spiffe://tresor.dev/billing --purpose mac
//! TRESOR_CERT=.tresor-dev/billing/cert.pem TRESOR_KEY=.tresor-dev/billing/key.pem \
//!   cargo run --example blind_index -- /tmp/users-db
//! ```
//!
//! Connection: `TRESOR_ADDR`, `TRESOR_CA`, `TRESOR_CERT`, `TRESOR_KEY`, as
//! for the CLI; the certificate's identity must own both keys (it rotates
//! the MAC key). Keys: `crm/records` (ENCRYPT_DECRYPT) encrypts the
//! emails, `crm/email-index` (MAC) makes the index tokens; override with
//! `RECORDS_KEY` and `INDEX_KEY`.
//!
//! What it does: inserts users, rotates the MAC key, inserts more, then
//! looks every user up by email with MacAllVersions (one token per live
//! key version) and checks each hit by decrypting it (truncated tokens
//! collide on purpose; full ones practically never). Exits non-zero if a
//! row is not found. Store the key id each response names (never an
//! alias) beside the ciphertext, as here.

use std::collections::HashMap;

use tresor_client::{Client, mac_request};

/// The context every cell and token is bound to.
fn context() -> HashMap<String, String> {
    HashMap::from([("table".to_owned(), "users".to_owned())])
}

/// Index tokens keep 16 HMAC bytes: short enough to be compact, far too
/// long to collide by chance in a table of this size.
const TRUNCATE_BYTES: u32 = 16;

/// A stored row: the key that encrypted the email, then its ciphertext.
fn encode_row(key_id: &str, ciphertext: &[u8]) -> Vec<u8> {
    let mut row = Vec::with_capacity(2 + key_id.len() + ciphertext.len());
    row.extend_from_slice(
        &u16::try_from(key_id.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    row.extend_from_slice(key_id.as_bytes());
    row.extend_from_slice(ciphertext);
    row
}

fn decode_row(row: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = row.split_first_chunk::<2>()?;
    let (key_id, ciphertext) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    Some((std::str::from_utf8(key_id).ok()?, ciphertext))
}

/// The users table and its index: `rows` maps a row id to its row,
/// `by_email` maps an index token followed by the row id to nothing (so
/// equal tokens of different rows coexist).
struct Table {
    rows: sled::Tree,
    by_email: sled::Tree,
    client: Client,
    records_key: String,
    index_key: String,
}

impl Table {
    /// Normalises an email for the index: equal addresses, equal tokens.
    fn normalise(email: &str) -> Vec<u8> {
        email.trim().to_lowercase().into_bytes()
    }

    async fn insert(&self, id: u64, email: &str) -> Result<(), Box<dyn std::error::Error>> {
        let sealed = self
            .client
            .encrypt(&self.records_key, email.as_bytes(), &context())
            .await?;
        let token = self
            .client
            .mac_request(mac_request(
                &self.index_key,
                &Self::normalise(email),
                &context(),
                TRUNCATE_BYTES,
            ))
            .await?;
        self.rows.insert(
            id.to_be_bytes(),
            encode_row(&sealed.key_id, &sealed.ciphertext),
        )?;
        let mut entry = token.mac;
        entry.extend_from_slice(&id.to_be_bytes());
        self.by_email.insert(entry, &[])?;
        Ok(())
    }

    /// Every row whose email is `email`: candidates from each live
    /// version's token, each confirmed by decrypting it.
    async fn find(&self, email: &str) -> Result<Vec<u64>, Box<dyn std::error::Error>> {
        let tokens = self
            .client
            .mac_all_versions_request(mac_request(
                &self.index_key,
                &Self::normalise(email),
                &context(),
                TRUNCATE_BYTES,
            ))
            .await?;
        let mut found = Vec::new();
        for token in tokens {
            for entry in self.by_email.scan_prefix(&token.mac) {
                let (entry, _) = entry?;
                let id_bytes: [u8; 8] = entry[token.mac.len()..].try_into()?;
                let Some(row) = self.rows.get(id_bytes)? else {
                    continue;
                };
                let (key_id, ciphertext) = decode_row(&row).ok_or("corrupt row")?;
                let opened = self.client.decrypt(key_id, ciphertext, &context()).await?;
                if Self::normalise(&String::from_utf8_lossy(&opened.plaintext))
                    == Self::normalise(email)
                {
                    found.push(u64::from_be_bytes(id_bytes));
                }
            }
        }
        Ok(found)
    }
}

async fn connect() -> Result<Client, Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    Ok(Client::builder()
        .endpoint(var("TRESOR_ADDR")?)
        .ca_file(var("TRESOR_CA")?)
        .identity_files(var("TRESOR_CERT")?, var("TRESOR_KEY")?)
        .build()
        .await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: blind_index DB_DIR")?;
    let db = sled::open(&dir)?;
    let table = Table {
        rows: db.open_tree("users")?,
        by_email: db.open_tree("users_by_email")?,
        client: connect().await?,
        records_key: std::env::var("RECORDS_KEY").unwrap_or_else(|_| "crm/records".into()),
        index_key: std::env::var("INDEX_KEY").unwrap_or_else(|_| "crm/email-index".into()),
    };
    let emails: Vec<String> = (0..40).map(|i| format!("user{i}@example.com")).collect();
    let (before, after) = emails.split_at(20);
    for (id, email) in (0u64..).zip(before) {
        table.insert(id, email).await?;
    }
    let rotated = table.client.rotate_key(&table.index_key).await?;
    println!(
        "rotated {}: primary version {}",
        table.index_key, rotated.primary_version
    );
    for (id, email) in (20u64..).zip(after) {
        table.insert(id, email).await?;
    }
    let mut missing = Vec::new();
    for (id, email) in (0u64..).zip(&emails) {
        // Looked up as a user would type it.
        let found = table.find(&email.to_uppercase()).await?;
        if found != [id] {
            missing.push(email.clone());
        }
    }
    db.flush()?;
    if !missing.is_empty() {
        return Err(format!("rows not found by email: {missing:?}").into());
    }
    println!(
        "found all {} rows by email through the blind index ({} written before the rotation)",
        emails.len(),
        before.len()
    );
    Ok(())
}
