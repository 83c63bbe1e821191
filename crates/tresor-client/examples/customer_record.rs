//! Encrypts a customer record's sensitive fields before writing the record
//! to a database, and reads it back. The "database" is a sled tree in a
//! temporary directory; any store works the same way, since only
//! ciphertexts reach it.
//!
//! - The card number goes through tresor's Encrypt: the data key never
//!   leaves the server, one round trip per field.
//! - The free-text notes, which can be large and are written often, are
//!   sealed locally with `seal_bytes` under a data key from GenerateDataKey,
//!   cached for up to 1,000 records or one minute (read the trade-off in
//!   `tresor_client::DataKeyCache` before turning the cache on).
//!
//! Both are bound to an encryption context naming the tenant, the table and
//! the record id, so a ciphertext copied into another row or tenant does
//! not decrypt.
//!
//! ```sh
//! tresor dev &   # prints the variables below; use the billing certificate
//! export TRESOR_ADDR=https://localhost:7443
//! export TRESOR_CA=.tresor-dev/ca/ca.pem
//! export TRESOR_CERT=.tresor-dev/billing/cert.pem TRESOR_KEY=.tresor-dev/billing/key.pem
//! cargo run --example customer_record
//! ```
//!
//! Optional: `TRESOR_KEY_ID` (default `billing/customer-records`, the key
//! `tresor dev` creates for billing).

mod common;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::BoxError;
use serde::{Deserialize, Serialize};
use tresor_client::{Client, DataKeyCacheLimits};

const USAGE: &str = "usage: customer_record (env: TRESOR_ADDR, TRESOR_CA, TRESOR_CERT, TRESOR_KEY, optional TRESOR_KEY_ID)";

/// A customer as the application sees it.
#[derive(Debug, Clone, PartialEq)]
struct Customer {
    id: String,
    name: String,
    card_number: String,
    notes: String,
}

/// The row as stored: the sensitive fields only as ciphertexts.
#[derive(Serialize, Deserialize)]
struct Row {
    id: String,
    name: String,
    /// tresor Encrypt ciphertext, base64.
    card_number: String,
    /// Stream envelope sealed locally, base64.
    notes: String,
}

/// The context a field of `id` is bound to.
fn context(tenant: &str, id: &str) -> HashMap<String, String> {
    HashMap::from([
        ("tenant".to_owned(), tenant.to_owned()),
        ("table".to_owned(), "customers".to_owned()),
        ("record".to_owned(), id.to_owned()),
    ])
}

async fn encrypt_row(
    client: &Client,
    key_id: &str,
    tenant: &str,
    customer: &Customer,
) -> Result<Row, BoxError> {
    let context = context(tenant, &customer.id);
    let card = client
        .encrypt(key_id, customer.card_number.as_bytes(), &context)
        .await?;
    let notes = client
        .seal_bytes(key_id, customer.notes.as_bytes(), &context)
        .await?;
    Ok(Row {
        id: customer.id.clone(),
        name: customer.name.clone(),
        card_number: B64.encode(card.ciphertext),
        notes: B64.encode(notes),
    })
}

async fn decrypt_row(
    client: &Client,
    key_id: &str,
    tenant: &str,
    row: &Row,
) -> Result<Customer, BoxError> {
    let context = context(tenant, &row.id);
    let card = client
        .decrypt(key_id, &B64.decode(&row.card_number)?, &context)
        .await?;
    let notes = client
        .open_bytes(&[key_id], &B64.decode(&row.notes)?, &context)
        .await?;
    Ok(Customer {
        id: row.id.clone(),
        name: row.name.clone(),
        card_number: String::from_utf8(card.plaintext)?,
        notes: String::from_utf8(notes.expose().to_vec())?,
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cache = DataKeyCacheLimits {
        max_age: Duration::from_secs(60),
        max_messages: 1_000,
        max_bytes: 64 << 20,
        max_entries: NonZeroUsize::new(100).ok_or("zero entries")?,
    };
    let client = common::connect(USAGE, |builder| builder.data_key_cache(cache)).await?;
    let key_id =
        std::env::var("TRESOR_KEY_ID").unwrap_or_else(|_| "billing/customer-records".into());
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let table = db.open_tree("customers")?;

    let customers: Vec<Customer> = (1..=3)
        .map(|n| Customer {
            id: format!("cust-{n}"),
            name: format!("Customer {n}"),
            card_number: format!("4111 1111 1111 111{n}"),
            notes: format!("called on day {n}; prefers email. ").repeat(50),
        })
        .collect();
    for customer in &customers {
        let row = encrypt_row(&client, &key_id, "acme", customer).await?;
        table.insert(&customer.id, serde_json::to_vec(&row)?)?;
    }
    table.flush_async().await?;
    println!("wrote {} rows; no plaintext in the database", table.len());

    for customer in &customers {
        let stored = table.get(&customer.id)?.ok_or("row missing")?;
        assert!(
            !stored
                .windows(customer.card_number.len())
                .any(|w| w == customer.card_number.as_bytes()),
            "the card number reached the database in clear"
        );
        let row: Row = serde_json::from_slice(&stored)?;
        let read = decrypt_row(&client, &key_id, "acme", &row).await?;
        assert_eq!(&read, customer);
        println!(
            "read {} back: card ending {}",
            read.id,
            &read.card_number[15..]
        );
    }

    // A row copied into another tenant does not decrypt.
    let stored = table.get("cust-1")?.ok_or("row missing")?;
    let row: Row = serde_json::from_slice(&stored)?;
    match decrypt_row(&client, &key_id, "other-tenant", &row).await {
        Err(e) => println!("cust-1 under another tenant: refused ({e})"),
        Ok(_) => return Err("a row decrypted under another tenant's context".into()),
    }
    Ok(())
}
