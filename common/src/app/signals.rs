//! Ending a run cleanly on SIGINT, SIGTERM, SIGHUP, SIGPIPE and SIGQUIT.
//!
//! The handlers only set a flag; the read loop checks it (it never blocks
//! for more than [`crate::buffer::reader::POLL_INTERVAL`]) and returns, so every guard
//! is dropped on the normal return path. A second signal sets the same flag
//! again and does not cut cleanup short. [`install`] must run before the
//! first change to kernel state, which `cli::run` guarantees. A SIGHUP
//! that is ignored when the tool starts (`nohup`) stays ignored.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The signals that end a run.
pub const STOP_SIGNALS: [i32; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGPIPE,
    libc::SIGQUIT,
];

struct State {
    stop: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Installs the handlers (idempotent).
pub fn install() -> std::io::Result<()> {
    if STATE.get().is_some() {
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let which = Arc::new(AtomicUsize::new(0));
    // The signals wait while the handlers go in: between a handler's
    // installation and its action's, one arriving would be swallowed.
    // SAFETY: plain sigset_t operations on local values.
    let (set, mut old) = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in STOP_SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        (set, std::mem::zeroed::<libc::sigset_t>())
    };
    // SAFETY: blocks (then restores) this thread's mask; no other threads yet.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    let r = (|| {
        for sig in STOP_SIGNALS {
            if sig == libc::SIGHUP && ignored(sig) {
                // Started under nohup: a hangup is not meant to end the run.
                continue;
            }
            signal_hook::flag::register(sig, Arc::clone(&stop))?;
            signal_hook::flag::register_usize(sig, Arc::clone(&which), sig as usize)?;
        }
        Ok(())
    })();
    let _ = STATE.set(State { stop, which });
    // SAFETY: as above; pending signals are delivered now, to the handlers.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}

/// Whether `sig` is ignored (inherited through exec, as nohup sets SIGHUP).
fn ignored(sig: i32) -> bool {
    // SAFETY: a query only (no new action); `old` is a plain C struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Whether a stop signal arrived (or [`request_stop`] was called).
pub fn stop_requested() -> bool {
    STATE
        .get()
        .map(|s| s.stop.load(Ordering::Relaxed))
        .unwrap_or(false)
}

/// `Err(interrupted)` once a stop signal arrived: a step of setup that
/// takes a while checks it (`signals::check()?`), so that the run unwinds
/// through its guards at once instead of arming what it would then undo.
pub fn check() -> crate::Result<()> {
    if stop_requested() {
        return Err(crate::Error::interrupted());
    }
    Ok(())
}

/// The last stop signal received, if any.
pub fn last_signal() -> Option<i32> {
    let s = STATE.get()?;
    match s.which.load(Ordering::Relaxed) {
        0 => None,
        n => Some(n as i32),
    }
}

/// Asks the read loop to stop, as a signal would (e.g. a closed stdout, or
/// a traced command that exited).
pub fn request_stop() {
    if let Some(s) = STATE.get() {
        s.stop.store(true, Ordering::Relaxed);
    }
}
