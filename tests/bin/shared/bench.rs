//! What more than one benchmark needs: the release builds beside it, the
//! pinned getppid loop, a process's CPU time, medians.

#![allow(dead_code)] // each benchmark uses a part

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A program built beside this one (`cargo build --release --workspace
/// --bins`); exits 2 when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let p = me.parent().unwrap().join(name);
    if !p.exists() {
        let own = me.file_name().unwrap_or_default().to_string_lossy();
        eprintln!(
            "{own}: {} is missing: run `cargo build --release --workspace --bins`",
            p.display()
        );
        std::process::exit(2);
    }
    p
}

/// The CPUs this process may use.
pub fn ncpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Runs `cmd` on `cpu` only.
pub fn pin(cmd: &mut Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    // SAFETY: sched_setaffinity is async-signal-safe; the set is built
    // before the fork and only read in the child.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `ftt-workload [--wait] spin SECS` (getppid as fast as it can), pinned
/// to the last CPU; with `wait` it starts on a line on its stdin.
pub fn spin(secs: f64, wait: bool) -> Child {
    let mut cmd = Command::new(bin("ftt-workload"));
    if wait {
        cmd.arg("--wait");
    }
    cmd.args(["spin", &secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    pin(&mut cmd, ncpus() - 1);
    cmd.spawn().expect("start ftt-workload")
}

/// Waits for an ftt-workload and returns the count it said (`done N`).
pub fn done_count(child: &mut Child) -> u64 {
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child.wait().unwrap();
    out.trim()
        .strip_prefix("done ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ftt-workload said {out:?}"))
}

/// The CPU time (user + system) a process has used so far, from
/// /proc/PID/stat (in clock ticks).
pub fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    // SAFETY: no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    // utime and stime are fields 14 and 15: 12 and 13 after the ')'.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 1000 / hz)
}

/// The median (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Waits for a child and returns its status and CPU time (user + system).
pub fn wait_rusage(child: &mut Child) -> (i32, Duration) {
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value to be written into.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child with valid pointers.
        let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
        if r == child.id() as i32 {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            panic!("wait4: {}", std::io::Error::last_os_error());
        }
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, tv(ru.ru_utime) + tv(ru.ru_stime))
}
