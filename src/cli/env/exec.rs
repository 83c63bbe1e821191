//! `tresor exec`: opens every `tresor:v1:` value of the env files and of
//! the inherited environment, then replaces this process with the command,
//! its environment holding the plaintexts. Nothing is written anywhere;
//! the plaintexts travel only in `execve`'s environment. One value that
//! does not open stops everything before the command runs.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use zeroize::Zeroizing;

use super::crypt::{self, Sealed};
use super::file::{self, EnvFile};
use super::layout::Var;
use super::value::{SealedValue, context_of};
use crate::cli::data::parse_pair;
use crate::cli::failure::CliError;

/// `tresor exec [--env-file F ...] [--context K=V ...] -- COMMAND ARGS...`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// An encrypted env file (repeatable; later files override earlier
    /// ones, and files override the inherited environment).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// The encryption context of `tresor:v1:` values found in the
    /// inherited environment (repeatable); each file's context is in its
    /// header.
    #[arg(long = "context", short = 'c', value_name = "K=V", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// What the child gets: its environment changes, by name (later sources
/// already applied over earlier ones).
pub struct ChildEnv {
    /// Variables to set.
    pub set: BTreeMap<String, Zeroizing<String>>,
}

/// Opens every value the child needs.
pub async fn prepare(
    args: &ExecArgs,
    client: &tresor_client::Client,
) -> Result<ChildEnv, CliError> {
    let env_context = super::flag_context(&args.context)?;
    // The inherited environment first, then each file: later wins.
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        if SealedValue::is_sealed(value) {
            let sealed = SealedValue::parse(value).ok_or_else(|| malformed(name))?;
            sources.insert(
                name.to_owned(),
                Source::Sealed(Sealed {
                    name: name.to_owned(),
                    sealed,
                    context: context_of(&env_context, name),
                }),
            );
        }
    }
    for path in &args.env_files {
        let (env, header) = EnvFile::read_sealed(path)?;
        file::refuse_substitutions(&env.layout, path)?;
        let sealed = env.sealed_vars(&header)?;
        for var in env.layout.vars() {
            sources.insert(var.name.clone(), Source::Plain(plain_of(var)));
        }
        for value in sealed {
            sources.insert(value.name.clone(), Source::Sealed(value));
        }
    }
    let (mut set, sealed): (BTreeMap<String, Zeroizing<String>>, Vec<Sealed>) = {
        let mut plain = BTreeMap::new();
        let mut sealed = Vec::new();
        for (name, source) in sources {
            match source {
                Source::Plain(value) => {
                    plain.insert(name, value);
                }
                Source::Sealed(value) => sealed.push(value),
            }
        }
        (plain, sealed)
    };
    set.extend(crypt::open_all(client, &sealed).await?);
    if let Some(name) = set.iter().find(|(_, v)| v.contains('\0')).map(|(k, _)| k) {
        return Err(CliError::refused(format!(
            "{name}: the value holds a NUL byte, which no environment variable can"
        )));
    }
    Ok(ChildEnv { set })
}

/// Where a variable's value comes from.
enum Source {
    /// A value written in clear in an env file (not a secret).
    Plain(Zeroizing<String>),
    /// A value to open.
    Sealed(Sealed),
}

fn plain_of(var: &Var) -> Zeroizing<String> {
    var.value.clone()
}

fn malformed(name: &str) -> CliError {
    CliError::refused(format!(
        "{name}: not a well-formed tresor:v1: value (cut or changed); nothing was run"
    ))
}

/// Replaces this process with `command`, its environment being this
/// process's with `env` applied. Returns only when the command cannot be
/// started.
pub fn replace_process(command: &[OsString], env: ChildEnv) -> CliError {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = command.split_first() else {
        return CliError::usage("tresor exec needs a command after --");
    };
    let mut child = std::process::Command::new(program);
    child.args(args);
    for (name, value) in &env.set {
        child.env(name, value.as_str());
    }
    let err = child.exec();
    CliError::refused(format!(
        "cannot run {}: {err}",
        std::path::Path::new(program).display()
    ))
}
