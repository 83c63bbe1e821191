//! Which owner or grant allowed each data-plane call, for its audit
//! record: the authorization point notes it here, and the gRPC edge, which
//! writes the record, collects the notes of the call it is running (a
//! task-local, so nothing is threaded through every result type).

use std::future::Future;
use std::sync::{Arc, Mutex};

use super::authz::Allowed;
use crate::model::{ContextConstraint, KeyMetadata};

tokio::task_local! {
    static NOTES: Arc<Mutex<Notes>>;
}

/// What one call's authorization noted.
#[derive(Debug, Default)]
pub struct Notes {
    /// What allowed it: each distinct allowance once, in order.
    pub allowed_by: Vec<String>,
    /// For refusals: the grants that came closest, each once.
    pub closest_denied: Vec<String>,
}

/// Runs `call`, collecting what its authorization noted.
pub async fn collecting<F: Future>(call: F) -> (F::Output, Notes) {
    let notes = Arc::new(Mutex::new(Notes::default()));
    let output = NOTES.scope(Arc::clone(&notes), call).await;
    let notes = std::mem::take(
        &mut *notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    (output, notes)
}

fn push(pick: impl FnOnce(&mut Notes) -> &mut Vec<String>, text: String) {
    let _ = NOTES.try_with(|notes| {
        let mut notes = notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = pick(&mut notes);
        if !list.contains(&text) {
            list.push(text);
        }
    });
}

/// Notes what allowed a call on `key` (nothing outside [`collecting`]).
pub(super) fn note(key: &KeyMetadata, allowed: &Allowed, caller: &str) {
    push(|n| &mut n.allowed_by, describe(key, allowed, caller));
}

/// Notes, for a refused call, the conditional grant that came closest
/// (for operators: only the audit record shows it).
pub(super) fn note_closest(key: &KeyMetadata, index: usize, caller: &str) {
    push(
        |n| &mut n.closest_denied,
        describe(key, &Allowed::ConditionalGrant(index), caller),
    );
}

/// "owner", "grant to ID", or a conditional grant with its terms.
fn describe(key: &KeyMetadata, allowed: &Allowed, caller: &str) -> String {
    match allowed {
        Allowed::Owner => "owner".to_owned(),
        Allowed::Grant => format!("grant to {caller}"),
        Allowed::ConditionalGrant(index) => match key.conditional_grants.get(*index) {
            None => "grant".to_owned(),
            Some(grant) => {
                let mut text = format!("grant to {}", grant.grantee);
                let keys = |pairs: &std::collections::BTreeMap<String, String>| {
                    pairs.keys().cloned().collect::<Vec<_>>().join(",")
                };
                // Constraint keys only: values may be sensitive, and the
                // record's context digest already identifies them.
                match &grant.constraint {
                    ContextConstraint::None => {}
                    ContextConstraint::Equals(pairs) => {
                        text.push_str(&format!(" (context equals on {})", keys(pairs)));
                    }
                    ContextConstraint::Subset(pairs) => {
                        text.push_str(&format!(" (context has {})", keys(pairs)));
                    }
                }
                if let Some(at) = grant.expires_at {
                    text.push_str(&format!(" (expires {at})"));
                }
                text
            }
        },
    }
}
