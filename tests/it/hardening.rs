//! A real `tresor serve` process hardens itself at start: no core dumps,
//! and memory locked when the host permits it (else a warning that says
//! how to permit it). Read from the kernel's view of the process in /proc.

use crate::common;

use common::{Fixture, ServeProcess};

/// A field of /proc/PID/status, e.g. `VmLck:     1234 kB`.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|value| value.trim().to_owned())
        .unwrap_or_default()
}

/// Whether this test process could lock memory without bound, as the
/// server decides it: CAP_IPC_LOCK (bit 14) in its effective set, or an
/// unlimited RLIMIT_MEMLOCK. The server inherits both.
fn may_lock_memory() -> bool {
    let me = std::process::id();
    let caps = u64::from_str_radix(&status_field(me, "CapEff"), 16).unwrap_or(0);
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let unlimited = limits
        .lines()
        .find(|line| line.starts_with("Max locked memory"))
        .is_some_and(|line| line.split_whitespace().nth(3) == Some("unlimited"));
    caps & (1 << 14) != 0 || unlimited
}

#[test]
fn serve_turns_core_dumps_off_and_locks_memory_where_permitted() {
    let fixture = Fixture::new();
    let server = ServeProcess::start(&fixture);
    let pid = server.child.id();

    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .expect("core limit line");
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "{core}"
    );

    let locked_kb: u64 = status_field(pid, "VmLck")
        .trim_end_matches(" kB")
        .parse()
        .expect("VmLck");
    let log = server.log_lines().join("\n");
    if may_lock_memory() {
        assert!(locked_kb > 0, "VmLck {locked_kb} kB\n{log}");
        assert!(log.contains("memory locked"), "{log}");
    } else {
        println!("this host does not permit unbounded mlock: checking the warning instead");
        assert_eq!(locked_kb, 0);
        assert!(
            log.contains("memory not locked") && log.contains("LimitMEMLOCK=infinity"),
            "{log}"
        );
    }
    let log_before = server.log_lines().len();
    let log = server.log.clone();
    let status = server.terminate();
    let tail = log.lock().expect("log")[log_before..].join("\n");
    assert!(status.success(), "{status:?}\n{tail}");
}
