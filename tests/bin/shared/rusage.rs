//! What more than one benchmark needs: a child's CPU time.

use std::process::Child;
use std::time::Duration;

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
