//! Process hardening at `tresor serve` start-up, before any key is
//! unwrapped: no core dumps, no ptrace or /proc/PID/mem access by other
//! processes of the same user, and key memory kept out of swap where the
//! host allows it.
//!
//! - `RLIMIT_CORE` is set to 0 (soft and hard), so a crash writes no core
//!   file holding unwrapped keys.
//! - `PR_SET_DUMPABLE` is cleared: the kernel then also refuses
//!   `ptrace` attach and `/proc/PID/mem` reads to non-root processes of
//!   the same user, and writes no core dump even if the limit is raised.
//! - Memory is locked with `mlockall(MCL_CURRENT | MCL_FUTURE |
//!   MCL_ONFAULT)` when the process may lock without bound: it holds
//!   `CAP_IPC_LOCK` or `RLIMIT_MEMLOCK` is unlimited. With a finite limit
//!   it does not try: with `MCL_FUTURE`, an allocation past the limit would
//!   fail and abort the server later, at an arbitrary moment. It warns
//!   instead, saying how to allow it. `MCL_ONFAULT` locks pages as they
//!   are first touched, so reserved but unused memory (thread stacks,
//!   allocator arenas) does not become resident.
//!
//! Nothing here fails start-up: each step that cannot be done is a warning
//! with the fix in its message.

use rustix::mm::{MlockAllFlags, mlockall};
use rustix::process::{
    DumpableBehavior, Resource, Rlimit, getrlimit, set_dumpable_behavior, setrlimit,
};
use rustix::thread::{CapabilitySet, capabilities};

/// What memory locking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryLock {
    /// All current and future pages are locked as they are touched.
    Locked,
    /// Not attempted: the process may lock only this many bytes.
    NotPermitted {
        /// `RLIMIT_MEMLOCK`'s soft limit.
        limit_bytes: u64,
    },
    /// Attempted and refused by the kernel.
    Failed(String),
    /// Not asked for.
    Skipped,
}

/// What [`harden_process`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// Core dumps are off (`RLIMIT_CORE` = 0).
    pub core_dumps_off: bool,
    /// The process is not dumpable (`PR_SET_DUMPABLE` = 0).
    pub not_dumpable: bool,
    /// Memory locking.
    pub memory: MemoryLock,
}

/// Applies the hardening; logs a warning, with the fix, for each step that
/// cannot be done. `lock_memory: false` skips memory locking.
pub fn harden_process(lock_memory: bool) -> Hardening {
    let core_dumps_off = match setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    ) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot turn core dumps off (RLIMIT_CORE); a crash could write unwrapped keys to disk: run with `ulimit -c 0`");
            false
        }
    };
    let not_dumpable = match set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot mark the process not dumpable (PR_SET_DUMPABLE)");
            false
        }
    };
    let memory = if lock_memory {
        lock_all_memory()
    } else {
        MemoryLock::Skipped
    };
    match &memory {
        MemoryLock::Locked => tracing::info!("memory locked: key material is never swapped out"),
        MemoryLock::NotPermitted { limit_bytes } => tracing::warn!(
            limit_bytes,
            "memory not locked: key material may be swapped to disk. Allow it with an unlimited RLIMIT_MEMLOCK (systemd: LimitMEMLOCK=infinity; docker: --ulimit memlock=-1) or the CAP_IPC_LOCK capability (docker: --cap-add IPC_LOCK), or run without swap"
        ),
        MemoryLock::Failed(error) => tracing::warn!(
            %error,
            "memory not locked: mlockall failed; key material may be swapped to disk (run without swap, or grant CAP_IPC_LOCK)"
        ),
        MemoryLock::Skipped => {}
    }
    Hardening {
        core_dumps_off,
        not_dumpable,
        memory,
    }
}

/// Locks memory if the process may lock without bound (see the module
/// docs for why a finite limit is not tried).
fn lock_all_memory() -> MemoryLock {
    let limit = getrlimit(Resource::Memlock);
    let may_lock_any = limit.current.is_none()
        || capabilities(None).is_ok_and(|caps| caps.effective.contains(CapabilitySet::IPC_LOCK));
    if !may_lock_any {
        return MemoryLock::NotPermitted {
            limit_bytes: limit.current.unwrap_or(u64::MAX),
        };
    }
    match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT) {
        Ok(()) => MemoryLock::Locked,
        Err(e) => MemoryLock::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_dumps_are_off_and_the_process_is_not_dumpable() {
        // Safe to apply to the test process; memory locking is tested on a
        // real `tresor serve` process (tests/it/hardening.rs).
        let done = harden_process(false);
        assert!(done.core_dumps_off && done.not_dumpable, "{done:?}");
        assert_eq!(done.memory, MemoryLock::Skipped);
        let core = getrlimit(Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        assert_eq!(
            rustix::process::dumpable_behavior().expect("prctl"),
            DumpableBehavior::NotDumpable
        );
    }
}
