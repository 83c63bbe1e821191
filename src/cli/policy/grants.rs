//! The grant part of a plan: what to grant and what to revoke on one key
//! so its grants become what the file says.
//!
//! The server identifies a grant by its terms (grantee, context constraint,
//! expiry): a second CreateGrant with the same terms adds operations to it.
//! RevokeGrant takes operations away from *every* grant of a grantee, so a
//! revocation that should hit one grant of a grantee is followed by
//! re-granting what the grantee's other grants in the file keep (the
//! change's `restore` list).

use std::collections::{BTreeMap, BTreeSet};

use super::file::{GrantEntry, GrantTerms, Op, op_names};
use super::plan::{Change, Planned};

/// Grants and revocations that turn `have` (the server's grants on
/// `key_id`) into `want` (the file's), revocations first; and notes on
/// expired grants. `now` is Unix seconds.
pub fn grant_changes(
    key_id: &str,
    want: &[GrantEntry],
    have: &[GrantEntry],
    now: i64,
) -> (Vec<Planned>, Vec<String>) {
    let wanted = by_terms(want);
    let had = by_terms(have);
    let mut changes = Vec::new();
    let mut notes = Vec::new();

    // What each grantee loses: the operations of its grants on the server
    // that the file's grant of the same terms does not list.
    let mut lost: BTreeMap<&str, BTreeSet<Op>> = BTreeMap::new();
    for (terms, grant) in &had {
        let kept = wanted.get(terms).map(|w| &w.operations);
        let extra: BTreeSet<Op> = grant
            .operations
            .iter()
            .filter(|op| kept.is_none_or(|kept| !kept.contains(op)))
            .copied()
            .collect();
        if !extra.is_empty() {
            lost.entry(terms.grantee.as_str())
                .or_default()
                .extend(extra);
        }
    }
    for (grantee, operations) in lost {
        // The revocation also takes from the grantee's grants that keep
        // these operations: give those back (new grants and new operations
        // are the Grant changes' business).
        let restore = wanted
            .iter()
            .filter(|(terms, w)| terms.grantee == grantee && !w.is_expired(now))
            .filter_map(|(terms, w)| {
                let had_ops = &had.get(terms)?.operations;
                let again: BTreeSet<Op> = w
                    .operations
                    .iter()
                    .filter(|op| operations.contains(op) && had_ops.contains(op))
                    .copied()
                    .collect();
                (!again.is_empty()).then(|| w.with_operations(again))
            })
            .collect();
        changes.push(Planned::destructive(Change::Revoke {
            key_id: key_id.to_owned(),
            grantee: grantee.to_owned(),
            operations,
            restore,
        }));
    }

    for (terms, grant) in &wanted {
        let existing = had.get(terms);
        let missing: BTreeSet<Op> = grant
            .operations
            .iter()
            .filter(|op| existing.is_none_or(|e| !e.operations.contains(op)))
            .copied()
            .collect();
        let expired = grant.expires_at.filter(|_| grant.is_expired(now));
        match (expired, missing.is_empty()) {
            (Some(at), true) => notes.push(format!(
                "the grant of {} on {key_id} to {} expired at {at}: it allows nothing (remove it from the file)",
                op_names(&grant.operations),
                terms.grantee
            )),
            (Some(at), false) => notes.push(format!(
                "the grant of {} on {key_id} to {} expired at {at}, so it cannot be created: remove it from the file",
                op_names(&missing),
                terms.grantee
            )),
            (None, false) => changes.push(Planned::additive(Change::Grant {
                key_id: key_id.to_owned(),
                grant: grant.with_operations(missing),
            })),
            (None, true) => {}
        }
    }
    (changes, notes)
}

/// Grants by their terms, operations of equal terms joined (as the server
/// joins them).
fn by_terms(grants: &[GrantEntry]) -> BTreeMap<GrantTerms, GrantEntry> {
    let mut map: BTreeMap<GrantTerms, GrantEntry> = BTreeMap::new();
    for grant in grants {
        map.entry(grant.terms())
            .and_modify(|g| g.operations.extend(grant.operations.iter().copied()))
            .or_insert_with(|| grant.clone());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::super::file::{GranteeText, Timestamp, unspanned};
    use super::*;
    use tresor_proto::v1::Operation;

    fn grant(grantee: &str, ops: &[Operation], subset: Option<(&str, &str)>) -> GrantEntry {
        GrantEntry {
            grantee: unspanned(GranteeText::from_server(grantee)),
            operations: ops.iter().copied().map(Op).collect(),
            context_equals: None,
            context_subset: subset.map(|(k, v)| [(k.to_owned(), v.to_owned())].into()),
            expires_at: None,
        }
    }

    #[test]
    fn nothing_changes_when_the_grants_match() {
        let both = [grant("a", &[Operation::Decrypt], None)];
        let (changes, notes) = grant_changes("k", &both, &both, 0);
        assert!(changes.is_empty() && notes.is_empty());
    }

    #[test]
    fn a_narrowed_grant_is_revoked_and_the_grantees_other_grants_restored() {
        let have = [
            grant("a", &[Operation::Decrypt, Operation::Encrypt], None),
            grant("a", &[Operation::Encrypt], Some(("t", "1"))),
        ];
        let want = [
            grant("a", &[Operation::Decrypt], None),
            grant("a", &[Operation::Encrypt], Some(("t", "1"))),
        ];
        let (changes, _) = grant_changes("k", &want, &have, 0);
        assert_eq!(changes.len(), 1);
        let Change::Revoke {
            operations,
            restore,
            ..
        } = &changes[0].change
        else {
            panic!("{changes:?}");
        };
        assert!(changes[0].destructive);
        assert_eq!(op_names(operations), "encrypt");
        assert_eq!(restore.len(), 1);
        assert_eq!(restore[0].terms(), want[1].terms());
        assert_eq!(op_names(&restore[0].operations), "encrypt");
    }

    #[test]
    fn missing_operations_are_granted_and_expired_grants_only_noted() {
        let have = [grant("a", &[Operation::Decrypt], None)];
        let mut expired = grant("b", &[Operation::Decrypt], None);
        expired.expires_at = Some(Timestamp(100));
        let want = [
            grant("a", &[Operation::Decrypt, Operation::Encrypt], None),
            expired,
        ];
        let (changes, notes) = grant_changes("k", &want, &have, 200);
        assert_eq!(changes.len(), 1);
        let Change::Grant { grant, .. } = &changes[0].change else {
            panic!("{changes:?}");
        };
        assert!(!changes[0].destructive);
        assert_eq!(op_names(&grant.operations), "encrypt");
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("cannot be created"), "{notes:?}");
    }
}
