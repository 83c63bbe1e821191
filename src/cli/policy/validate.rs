//! Reading a policy file: the YAML and every value in it
//! ([`super::file`]), then the checks across entries. Each error names the
//! file, the line and column, and the field; all of them are reported
//! before anything is read from the server or applied.

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Spanned;

use super::super::failure::CliError;
use super::file::{GrantEntry, PolicyFile};
use crate::model::ContextConstraint;

/// The longest description the server takes (its
/// `service::admin::MAX_DESCRIPTION_BYTES`), checked here so a file with a
/// longer one is refused before anything is applied.
const MAX_DESCRIPTION_BYTES: usize = 1024;

/// Reads and checks the policy file at `path`.
pub fn load(path: &Path) -> Result<PolicyFile, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::refused(format!("cannot read {}: {e}", path.display())))?;
    parse(&text, &path.display().to_string())
}

/// Parses and checks a policy file's text; `name` is how messages name it.
pub fn parse(text: &str, name: &str) -> Result<PolicyFile, CliError> {
    let file: PolicyFile = serde_saphyr::from_str(text).map_err(|e| {
        let rendered = e.render_with_options(serde_saphyr::render_options! {
            source_name: Some(name),
        });
        let rendered = rendered.strip_prefix("error: ").unwrap_or(&rendered);
        CliError::refused(format!(
            "{name} is not a valid policy file (nothing was applied): {rendered}"
        ))
    })?;
    let errors = cross_checks(&file, name);
    if errors.is_empty() {
        return Ok(file);
    }
    Err(CliError::refused(format!(
        "{name} is not a valid policy file (nothing was applied):\n{}",
        errors.join("\n")
    )))
}

/// `name:line:column: field: message`, without the place when unknown.
fn at<T>(name: &str, spanned: &Spanned<T>, field: &str, message: &str) -> String {
    let place = spanned.referenced;
    if place.line() == 0 {
        return format!("{name}: {field}: {message}");
    }
    format!(
        "{name}:{}:{}: {field}: {message}",
        place.line(),
        place.column()
    )
}

/// The line of a value, for "first declared at line N".
fn line_of<T>(spanned: &Spanned<T>) -> u64 {
    spanned.referenced.line()
}

/// Checks that need more than one value: duplicates, references, grant
/// constraints.
fn cross_checks(file: &PolicyFile, name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut keys: BTreeMap<&str, u64> = BTreeMap::new();
    for (k, key) in file.keys.iter().enumerate() {
        let id = key.id.value.as_str();
        if let Some(first) = keys.insert(id, line_of(&key.id)) {
            keys.insert(id, first);
            let message = format!("key {id} is declared twice (first at line {first})");
            errors.push(at(name, &key.id, &format!("keys[{k}].id"), &message));
        }
        if key.description.len() > MAX_DESCRIPTION_BYTES {
            let message = format!("longer than {MAX_DESCRIPTION_BYTES} bytes");
            errors.push(at(
                name,
                &key.id,
                &format!("keys[{k}].description"),
                &message,
            ));
        }
        let mut terms = BTreeMap::new();
        for (g, grant) in key.grants.iter().enumerate() {
            let field = format!("keys[{k}].grants[{g}]");
            if let Some(message) = grant_problem(grant) {
                errors.push(at(name, &grant.grantee, &field, &message));
            }
            if let Some(first) = terms.insert(grant.terms(), line_of(&grant.grantee)) {
                let message = format!(
                    "the same grant (grantee, context constraint and expiry) as at line {first}: list its operations once"
                );
                errors.push(at(name, &grant.grantee, &field, &message));
            }
        }
    }
    let mut aliases = BTreeMap::new();
    for (a, alias) in file.aliases.iter().enumerate() {
        let text = alias.alias.value.as_str();
        if let Some(first) = aliases.insert(text, line_of(&alias.alias)) {
            let message = format!("{text} is declared twice (first at line {first})");
            errors.push(at(
                name,
                &alias.alias,
                &format!("aliases[{a}].alias"),
                &message,
            ));
        }
        let key = alias.key.value.as_str();
        if !keys.contains_key(key) {
            let message = format!(
                "{text} points at key {key}, which the file does not declare (add it under keys:)"
            );
            errors.push(at(name, &alias.key, &format!("aliases[{a}].key"), &message));
        }
    }
    let mut roles = BTreeMap::new();
    for (r, role) in file.roles.iter().flatten().enumerate() {
        if roles.insert(role, r).is_some() {
            errors.push(format!(
                "{name}: roles[{r}]: {} is bound to {} twice",
                role.role.as_str(),
                role.identity
            ));
        }
    }
    errors
}

/// What is wrong with one grant on its own, if anything.
fn grant_problem(grant: &GrantEntry) -> Option<String> {
    if grant.operations.is_empty() {
        return Some("operations must name at least one operation".to_owned());
    }
    for (field, pairs) in [
        ("context_equals", &grant.context_equals),
        ("context_subset", &grant.context_subset),
    ] {
        if pairs.as_ref().is_some_and(BTreeMap::is_empty) {
            return Some(format!(
                "{field} is empty: give at least one pair, or leave it out for no constraint"
            ));
        }
    }
    ContextConstraint::from_fields(
        grant.context_equals.clone().unwrap_or_default(),
        grant.context_subset.clone().unwrap_or_default(),
    )
    .err()
    .map(|e| format!("bad constraint: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "version: 1\nkeys:\n  - id: billing/a\n    owner: spiffe://x.test/billing\n";

    fn errors(yaml: &str) -> String {
        parse(yaml, "tresor.yaml").expect_err(yaml).message
    }

    #[test]
    fn duplicates_and_dangling_aliases_are_refused_with_their_lines() {
        let twice = format!("{KEY}  - id: billing/a\n    owner: spiffe://x.test/billing\n");
        let err = errors(&twice);
        assert!(
            err.contains(
                "tresor.yaml:5:9: keys[1].id: key billing/a is declared twice (first at line 3)"
            ),
            "{err}"
        );
        let dangling = format!("{KEY}aliases:\n  - alias: alias/a\n    key: billing/b\n");
        let err = errors(&dangling);
        assert!(
            err.contains("tresor.yaml:7:10: aliases[0].key: alias/a points at key billing/b"),
            "{err}"
        );
    }

    #[test]
    fn grant_constraints_are_checked() {
        let grant = |extra: &str| {
            format!(
                "{KEY}    grants:\n      - grantee: spiffe://x.test/r\n        operations: [decrypt]\n{extra}"
            )
        };
        let both = grant("        context_equals: {a: b}\n        context_subset: {a: b}\n");
        let err = errors(&both);
        assert!(
            err.contains("tresor.yaml:6:18: keys[0].grants[0]: bad constraint"),
            "{err}"
        );
        assert!(errors(&grant("        context_subset: {}\n")).contains("context_subset is empty"));
        let twice = format!(
            "{}      - grantee: spiffe://x.test/r\n        operations: [encrypt]\n",
            grant("")
        );
        assert!(errors(&twice).contains("keys[0].grants[1]: the same grant"));
        assert!(parse(&grant("        context_subset: {a: b}\n"), "f").is_ok());
    }

    #[test]
    fn the_documented_example_is_a_valid_file() {
        let example = include_str!("../../../docs/examples/tresor.yaml");
        let file = parse(example, "docs/examples/tresor.yaml").expect("the example parses");
        assert_eq!(file.keys.len(), 3);
        assert_eq!(file.aliases.len(), 1);
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = errors("version: 1\nkeys: [\n");
        assert!(
            err.starts_with("tresor.yaml is not a valid policy file (nothing was applied): "),
            "{err}"
        );
        assert!(err.contains("tresor.yaml:"), "{err}");
    }
}
