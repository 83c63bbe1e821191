//! Runs a closure in a child made by a real `fork(2)`: the child starts
//! with a copy of the calling thread's memory, thread-local state included,
//! exactly what an application that forks without exec gets. Test-only
//! (see Cargo.toml): tresor itself forbids `unsafe`.

use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Exit status of a child whose closure panicked.
const PANICKED: i32 = 101;

/// Forks; the child runs `work` and sends its bytes back over a pipe, then
/// leaves with `_exit` (no destructors, no test-harness code runs in it).
/// Returns those bytes in the parent once the child has exited.
///
/// The child of a multithreaded process has only the forking thread, so
/// `work` should only compute and allocate (glibc's malloc is fork-safe),
/// not take locks other threads may hold.
///
/// # Errors
///
/// The pipe or the fork failed, or the child panicked or exited otherwise
/// than with status 0.
pub fn in_forked_child(work: impl FnOnce() -> Vec<u8>) -> std::io::Result<Vec<u8>> {
    let (mut reader, mut writer) = std::io::pipe()?;
    // SAFETY: the child only runs `work` (see above), writes to the pipe,
    // and leaves with `_exit`, never returning into the caller.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        drop(reader);
        let status = match catch_unwind(AssertUnwindSafe(work)) {
            Ok(bytes) if writer.write_all(&bytes).is_ok() => 0,
            _ => PANICKED,
        };
        // SAFETY: `_exit` ends the child at once; nothing of the parent's
        // (buffers, destructors, the test harness) runs twice.
        unsafe { libc::_exit(status) }
    }
    drop(writer);
    let mut bytes = Vec::new();
    let read = reader.read_to_end(&mut bytes);
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a valid out
    // pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(std::io::Error::last_os_error());
    }
    read?;
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(bytes)
    } else {
        Err(std::io::Error::other(format!(
            "forked child failed (wait status {status})"
        )))
    }
}
