//! `tresor env ...` and `tresor exec`: dotenv files whose values are
//! tresor ciphertexts, and a launcher that opens them into a child
//! process's environment only.
//!
//! | module | responsibility |
//! |--------|----------------|
//! | `layout` | a dotenv file's lines: comments and order kept, values read by dotenvy |
//! | `value` | the `tresor:v1:` value and the header line (docs/FORMAT.md) |
//! | `file` | an env file: header plus layout, opened and written back |
//! | `crypt` | batch seal, open and re-seal, failures named by variable |
//! | `edit` | `tresor env edit`: a private temporary file and `$EDITOR` |
//! | `exec` | `tresor exec`: open, then replace the process with the command |

mod crypt;
mod edit;
pub mod exec;
mod file;
mod layout;
mod value;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use zeroize::Zeroizing;

use super::connection::Connection;
use super::data::parse_pair;
use super::failure::CliError;
use crypt::Plain;
use file::EnvFile;
use value::{Header, SealedValue};

pub use exec::ExecArgs;

/// `tresor env ...`
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Encrypt every value of a dotenv file under a key, each bound to its
    /// variable's name and the file's context; comments, order and blank
    /// lines stay. Commit the result; names stay readable in diffs.
    ///
    /// Example: tresor env encrypt billing/app-env --context env=prod --in .env --out .env.tresor
    Encrypt {
        /// The key (or alias) the values go under.
        #[arg(value_name = "KEY")]
        key_id: String,
        /// The file's encryption context (repeatable); every value needs
        /// the same to open.
        #[arg(long = "context", short = 'c', value_name = "K=V", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// The plaintext dotenv file.
        #[arg(long = "in", default_value = ".env", value_name = "FILE")]
        input: PathBuf,
        /// Where the encrypted file goes (0600, replaced atomically).
        #[arg(long, default_value = ".env.tresor", value_name = "FILE")]
        out: PathBuf,
    },
    /// Print an encrypted env file's plaintext (to stdout; refused when
    /// stdout is a file: use --out, which writes 0600 and never follows a
    /// symlink).
    ///
    /// Example: tresor env decrypt --in .env.tresor
    Decrypt {
        /// The encrypted file.
        #[arg(long = "in", default_value = ".env.tresor", value_name = "FILE")]
        input: PathBuf,
        /// Write the plaintext here (0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Set one variable: the value is read from stdin (one trailing
    /// newline dropped), or from a prompt that does not echo on a terminal.
    /// Only that line changes.
    ///
    /// Example: tresor env set DB_PASSWORD --in .env.tresor < new-password.txt
    Set {
        /// The variable.
        name: String,
        /// The encrypted file.
        #[arg(long = "in", default_value = ".env.tresor", value_name = "FILE")]
        file: PathBuf,
    },
    /// Re-encrypt every value under its key's current version (after a
    /// key rotation); contexts stay.
    ///
    /// Example: tresor env rotate --in .env.tresor
    Rotate {
        /// The encrypted file.
        #[arg(long = "in", default_value = ".env.tresor", value_name = "FILE")]
        file: PathBuf,
    },
    /// Edit an encrypted env file in $VISUAL or $EDITOR: the plaintext
    /// lives in a private temporary file (0600, on /dev/shm when there is
    /// one) that is overwritten and removed afterwards, whatever happens;
    /// only changed values are re-encrypted.
    ///
    /// Example: tresor env edit .env.tresor
    Edit {
        /// The encrypted file.
        #[arg(default_value = ".env.tresor", value_name = "FILE")]
        file: PathBuf,
    },
}

/// Runs a `tresor env` command; returns what to print.
pub async fn run_env(
    command: EnvCommand,
    conn: &Connection,
) -> Result<Zeroizing<String>, CliError> {
    let client = &conn.client;
    match command {
        EnvCommand::Encrypt {
            key_id,
            context,
            input,
            out,
        } => encrypt(client, key_id, context, &input, &out).await,
        EnvCommand::Decrypt { input, out } => {
            let (env, header) = EnvFile::read_sealed(&input)?;
            let plaintext = env.plaintext(&env.open(client, &header).await?);
            match out {
                Some(out) => {
                    file::write(&out, &plaintext)?;
                    Ok(Zeroizing::new(String::new()))
                }
                None => {
                    refuse_stdout_file()?;
                    Ok(plaintext)
                }
            }
        }
        EnvCommand::Set { name, file } => set(client, &name, &file).await,
        EnvCommand::Rotate { file } => {
            let (env, header) = EnvFile::read_sealed(&file)?;
            let sealed = env.sealed_vars(&header)?;
            let resealed = crypt::reseal_all(client, &sealed).await?;
            let replaced: BTreeMap<String, SealedValue> = sealed
                .into_iter()
                .map(|value| value.name)
                .zip(resealed)
                .collect();
            file::write(&file, &env.render_with(&replaced))?;
            Ok(Zeroizing::new(format!(
                "re-encrypted {} value(s) in {}\n",
                replaced.len(),
                file.display()
            )))
        }
        EnvCommand::Edit { file } => edit::edit(client, &file).await,
    }
}

async fn encrypt(
    client: &tresor_client::Client,
    key_id: String,
    context: Vec<(String, String)>,
    input: &Path,
    out: &Path,
) -> Result<Zeroizing<String>, CliError> {
    let context: BTreeMap<String, String> = context.into_iter().collect();
    value::check_context(&context).map_err(CliError::usage)?;
    let env = EnvFile::read(input)?;
    if env.header.is_some() || env.layout.vars().any(|v| SealedValue::is_sealed(&v.value)) {
        return Err(CliError::refused(format!(
            "{} is already encrypted: use tresor env set, edit or rotate",
            input.display()
        )));
    }
    file::refuse_substitutions(&env.layout, input)?;
    let header = Header { key_id, context };
    let plains: Vec<Plain> = env
        .layout
        .vars()
        .map(|var| Plain {
            name: var.name.clone(),
            value: var.value.clone(),
            context: header.context_of(&var.name),
        })
        .collect();
    let sealed = crypt::seal_all(client, &header.key_id, &plains).await?;
    let replaced: BTreeMap<String, SealedValue> = plains
        .into_iter()
        .map(|plain| plain.name)
        .zip(sealed)
        .collect();
    let encrypted = EnvFile {
        header: Some(header),
        layout: env.layout,
    };
    file::write(out, &encrypted.render_with(&replaced))?;
    Ok(Zeroizing::new(format!(
        "encrypted {} value(s) into {}\n",
        replaced.len(),
        out.display()
    )))
}

async fn set(
    client: &tresor_client::Client,
    name: &str,
    path: &Path,
) -> Result<Zeroizing<String>, CliError> {
    let (mut env, header) = EnvFile::read_sealed(path)?;
    if layout::Layout::parse(&format!("{name}=x\n")).is_err() {
        return Err(CliError::usage(
            "a variable name is letters, digits, _ and . only",
        ));
    }
    let value = read_new_value(name)?;
    let plain = Plain {
        name: name.to_owned(),
        value,
        context: header.context_of(name),
    };
    let sealed = crypt::seal_all(client, &header.key_id, std::slice::from_ref(&plain)).await?;
    let Some(sealed) = sealed.into_iter().next() else {
        return Err(CliError::refused("the server answered no value"));
    };
    let exists = env.layout.vars().any(|var| var.name == name);
    if !exists {
        env.layout.append(name);
    }
    file::write(
        path,
        &env.render_with(&BTreeMap::from([(name.to_owned(), sealed)])),
    )?;
    Ok(Zeroizing::new(format!(
        "{} {name} in {}\n",
        if exists { "updated" } else { "added" },
        path.display()
    )))
}

/// The new value of `tresor env set`: stdin, or a no-echo prompt.
fn read_new_value(name: &str) -> Result<Zeroizing<String>, CliError> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("value for {name}: "))
            .map(Zeroizing::new)
            .map_err(|e| CliError::refused(format!("cannot read the value: {e}")));
    }
    let mut value = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut value)
        .map_err(|e| CliError::refused(format!("cannot read the value from stdin: {e}")))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

/// Refuses to print plaintext into a regular file through a shell
/// redirection: `--out` writes it with the right mode.
fn refuse_stdout_file() -> Result<(), CliError> {
    use std::os::fd::AsFd;
    let is_file = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|stdout| stdout.metadata())
        .is_ok_and(|meta| meta.is_file());
    if is_file {
        return Err(CliError::refused(
            "refusing to write plaintext to a file through stdout: pass --out FILE (written 0600)",
        ));
    }
    Ok(())
}

/// The context pairs of `--context` flags, with the reserved key refused.
fn flag_context(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, CliError> {
    let context: BTreeMap<String, String> = pairs.iter().cloned().collect();
    value::check_context(&context).map_err(CliError::usage)?;
    Ok(context)
}
