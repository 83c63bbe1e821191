//! `tresor env edit`: the plaintext goes into a private temporary file
//! (0600, created exclusively, on `/dev/shm` when there is one so it never
//! reaches a disk), `$VISUAL` or `$EDITOR` runs on it through `sh -c` as
//! git does, then only the values that changed are sealed again. The
//! temporary file is overwritten with zeros and removed in every case:
//! after the editor, when it fails or is killed (nothing changes then),
//! and on SIGTERM or SIGHUP to tresor. SIGINT goes to the editor (as with
//! git: Ctrl-C inside vi must not end the session); if it ends the
//! editor, nothing changes and the file is removed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};
use zeroize::Zeroizing;

use super::crypt::{self, Plain};
use super::file::{self, EnvFile};
use super::layout::Layout;
use super::value::SealedValue;
use crate::cli::failure::CliError;

/// The plaintext's temporary file; overwritten and removed when dropped.
struct PrivateTemp {
    file: tempfile::NamedTempFile,
}

impl PrivateTemp {
    fn create(contents: &str) -> Result<Self, CliError> {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let mut file = tempfile::Builder::new()
            .prefix(".tresor-env-")
            .suffix(".env")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(&dir)
            .map_err(|e| {
                CliError::refused(format!(
                    "cannot create a private file in {}: {e}",
                    dir.display()
                ))
            })?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| CliError::refused(format!("cannot write the temporary file: {e}")))?;
        Ok(Self { file })
    }

    fn path(&self) -> &Path {
        self.file.path()
    }

    fn read(&self) -> Result<Zeroizing<String>, CliError> {
        file::read_text(self.path())
    }
}

impl Drop for PrivateTemp {
    fn drop(&mut self) {
        // Overwrite whatever the editor left (its length may have changed),
        // then the NamedTempFile removes the file.
        if let Ok(mut handle) = std::fs::OpenOptions::new().write(true).open(self.path()) {
            let len = handle.metadata().map_or(0, |m| m.len());
            let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
            let _ = handle.write_all(&zeros).and_then(|()| handle.sync_all());
        }
    }
}

/// The editor command, as the user set it.
fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

/// Runs the editor on `path`; `Ok(())` when it exited successfully.
async fn run_editor(path: &Path) -> Result<(), CliError> {
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| CliError::refused(format!("cannot watch signals: {e}")))?;
    let mut hangup = signal(SignalKind::hangup())
        .map_err(|e| CliError::refused(format!("cannot watch signals: {e}")))?;
    // Registered so that SIGINT does not end tresor: it is the editor's.
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| CliError::refused(format!("cannot watch signals: {e}")))?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{} \"$@\"", editor()))
        .arg("tresor-env-edit")
        .arg(path)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CliError::refused(format!("cannot start the editor: {e}")))?;
    let aborted = |why: &str| CliError::refused(format!("{why}; nothing changed"));
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| CliError::refused(format!("the editor: {e}")))?;
                return if status.success() {
                    Ok(())
                } else {
                    Err(aborted(&format!("the editor did not finish cleanly ({status})")))
                };
            }
            _ = terminate.recv() => return Err(aborted("terminated")),
            _ = hangup.recv() => return Err(aborted("hung up")),
            _ = interrupt.recv() => {}
        }
    }
}

/// Runs `tresor env edit FILE`.
pub async fn edit(
    client: &tresor_client::Client,
    path: &Path,
) -> Result<Zeroizing<String>, CliError> {
    let (env, header) = EnvFile::read_sealed(path)?;
    let opened = env.open(client, &header).await?;
    let edited = {
        let temp = PrivateTemp::create(&env.plaintext(&opened))?;
        run_editor(temp.path()).await?;
        temp.read()?
    };
    let layout = Layout::parse(&edited).map_err(|e| {
        CliError::refused(format!(
            "the edited file, line {}: {}; nothing changed",
            e.line, e.why
        ))
    })?;
    file::refuse_substitutions(&layout, Path::new("the edited file"))?;
    // A value is kept, line and ciphertext, when its name had that value.
    let originals: BTreeMap<&str, &super::layout::Var> = env
        .layout
        .vars()
        .map(|var| (var.name.as_str(), var))
        .collect();
    let mut kept = 0;
    let mut changed = Vec::new();
    for var in layout.vars() {
        let same =
            originals
                .get(var.name.as_str())
                .is_some_and(|original| match opened.get(&var.name) {
                    Some(plain) if SealedValue::is_sealed(&original.value) => plain == &var.value,
                    _ => original.value == var.value,
                });
        if same {
            kept += 1;
        } else {
            changed.push(Plain {
                name: var.name.clone(),
                value: var.value.clone(),
                context: header.context_of(&var.name),
            });
        }
    }
    let removed = originals
        .keys()
        .filter(|name| !layout.vars().any(|var| var.name == **name))
        .count();
    let sealed = crypt::seal_all(client, &header.key_id, &changed).await?;
    let resealed: BTreeMap<String, SealedValue> = changed
        .iter()
        .map(|plain| plain.name.clone())
        .zip(sealed)
        .collect();
    let mut out = Zeroizing::new(header.line());
    out.push_str(&layout.render(|var| {
        match resealed.get(&var.name) {
            Some(value) => super::layout::assignment_line(var, &value.encode()),
            None => originals
                .get(var.name.as_str())
                .map_or_else(|| var.raw.clone(), |original| original.raw.clone()),
        }
    }));
    file::write(path, &out)?;
    Ok(Zeroizing::new(format!(
        "{}: {} value(s) re-encrypted, {kept} unchanged, {removed} removed\n",
        path.display(),
        resealed.len()
    )))
}
