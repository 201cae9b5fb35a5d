//! ftt-workload: programs with exactly known behaviour, for the black-box
//! tests and benchmarks. Each mode waits for a line on stdin ("go") when
//! started with `--wait`, so a test can arm tracing on its PID first, then
//! does exactly what it says and prints one line (`done N`) to stdout. The
//! wait reads with readv(2), so that no read(2) of the workload's own
//! follows the start of tracing but those of its mode.
//!
//!   ftt-workload [--wait] getppid N       N getppid() system calls
//!   ftt-workload [--wait] close-fail N    N close(-1) calls (EBADF)
//!   ftt-workload [--wait] nanosleep N MS  N sleeps of MS milliseconds
//!   ftt-workload [--wait] select-threads T MS
//!                                         T threads, each one select(2) system
//!                                         call that waits MS ms (no descriptors),
//!                                         all begun together; prints T
//!   ftt-workload [--wait] read-zero N     N read()s of /dev/zero
//!   ftt-workload [--wait] read-4k N M     N read()s of 4096 bytes of /dev/zero,
//!                                         then M read()s of fd -1 (EBADF)
//!   ftt-workload [--wait] usleep N US     N usleep(US) calls of libc
//!   ftt-workload [--wait] spin-4k SECS    read()s of 4096 bytes of /dev/zero
//!                                         as fast as possible; prints the number
//!   ftt-workload [--wait] open PATH N     N open()+close() of PATH
//!   ftt-workload [--wait] direct-io PATH R RKB W WKB
//!                                         R reads of RKB KiB, then W writes of WKB
//!                                         KiB, each O_DIRECT at its own offset of
//!                                         PATH (a block device); prints R+W
//!   ftt-workload [--wait] call N          N calls of ftt_probe_target()
//!   ftt-workload [--wait] args N [MS]     N rounds of: ftt_args8(i, i+1, ... i+7)
//!                                         (8 arguments: the last two on the stack
//!                                         on x86-64), then ftt_fill(i, buf, 256)
//!                                         with buf (one per call, kept to the
//!                                         end) holding the C string "in-i" at
//!                                         entry and fill_bytes(i) at return; then
//!                                         lives MS milliseconds more (so that its
//!                                         memory can still be read)
//!   ftt-workload [--wait] nest T M D     T threads, each M calls of ftt_nest(D),
//!                                         which recurses down to ftt_nest(0):
//!                                         ftt_nest(d) returns d; prints T*M*(D+1)
//!   ftt-workload [--wait] strlen N        N calls of libc's strlen() (an IFUNC)
//!   ftt-workload [--wait] spin SECS       getppid() as fast as possible;
//!                                         prints the number of calls made
//!   ftt-workload [--wait] spin-call SECS  ftt_probe_target() likewise
//!   ftt-workload sleep SECS               just sleep (a process to point -p at)
//!   ftt-workload [--wait] direct-read PATH N
//!                                         N reads of 4096 bytes with O_DIRECT,
//!                                         cycling through the file (block I/O)
//!   ftt-workload [--wait] nanosleep-timed N MS PATH
//!                                         like nanosleep, and writes to PATH the
//!                                         total ns the sleeps took by its own clock
//!   ftt-workload [--wait] spin-read SECS  read()s of 16 bytes of /dev/zero as fast
//!                                         as possible; prints the number made
//!   ftt-workload [--wait] steady WHAT SECS
//!                                         about 1000 a second of WHAT (getppid,
//!                                         call or read), in batches of 10: events
//!                                         that flow all along without a backlog
//!   ftt-workload [--wait] nanosleep-mix N MS
//!                                         N nanosleep()s of 0 ns, then one of MS
//!                                         milliseconds; prints N + 1
//!   ftt-workload [--wait] signals N FAIL  N signals to itself, the K-th (from 0)
//!                                         numbered 35 + K % 25 (real-time, ignored),
//!                                         sent in turn by kill, tkill, tgkill and
//!                                         pidfd_send_signal; then FAIL kill()s of
//!                                         a PID that does not exist (ESRCH);
//!                                         prints N + FAIL
//!   ftt-workload [--wait] opens PATH N FAIL
//!                                         N opens of PATH, the K-th (from 0) through
//!                                         open (openat on arm64), openat and openat2
//!                                         in turn, with O_RDONLY, O_WRONLY and O_RDWR
//!                                         in turn (each descriptor closed), then FAIL
//!                                         opens of PATH.missing (ENOENT); then waits
//!                                         1 s (so that its memory can be read);
//!                                         prints N + FAIL
//!   ftt-workload [--wait] execs PROG N FAIL [MS]
//!                                         N fork()s, each child exec'ing PROG (a
//!                                         name for this program) as
//!                                         `PROG exec-child --k=K 'ftt distinct'`,
//!                                         K from 0; then FAIL execve()s of
//!                                         PROG.missing (ENOENT) by itself, as
//!                                         `PROG.missing exec-fail --k=K`. The
//!                                         children live until all are made and
//!                                         1 s more (so /proc/PID/cmdline can be
//!                                         read); with MS, each exits at once and
//!                                         MS milliseconds pass between execs.
//!                                         Every child must exit 0; prints N + FAIL
//!   ftt-workload [--wait] open-rate PATH RATE SECS
//!                                         open()+close() of PATH at RATE a second
//!                                         (as near as it can) for SECS; prints
//!                                         the number made
//!   ftt-workload exec-child ...           what execs' children run: waits for the
//!                                         end of stdin (or not, with --now)
//!   ftt-workload cache-prep PATH N        writes N pages (4096 bytes each) to
//!                                         PATH, fsync()s it and drops it from the
//!                                         page cache (posix_fadvise DONTNEED);
//!                                         fails unless mincore(2) then finds none
//!                                         of its pages cached; prints N
//!   ftt-workload [--wait] cache-read PATH [hold]
//!                                         reads PATH (O_NOATIME) in 4096-byte
//!                                         read()s up to its size (no read at
//!                                         its end); prints the pages
//!                                         read; with hold, then waits for the end
//!                                         of stdin before it exits (its exit
//!                                         unmaps, and so marks accessed, the
//!                                         pages of its program and libraries)
//!   ftt-workload [--wait] mix SECS DIR    a bit of everything, in rounds for SECS:
//!                                         files in DIR (written, synced, read,
//!                                         renamed, removed; direct I/O where DIR's
//!                                         file system allows it), processes forked
//!                                         and exec'd, signals, timers and sleeps,
//!                                         memory mapped and touched, TCP and UDP
//!                                         over loopback; prints the rounds made

use std::time::{Duration, Instant};

/// The function the uprobe tests probe: never inlined, with an unmangled
/// name, returning its argument plus one so return probes can be checked.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ftt_probe_target(x: u64) -> u64 {
    std::hint::black_box(x) + 1
}

/// `opens PATH N FAIL`: see the usage above.
fn opens(path: &str, n: u64, fail: u64) {
    let c = std::ffi::CString::new(path).expect("a path without NUL");
    let missing = std::ffi::CString::new(format!("{path}.missing")).expect("a path");
    let modes = [libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR];
    for k in 0..n as usize {
        let flags = modes[k % 3] | libc::O_CLOEXEC;
        // SAFETY: NUL-terminated paths that outlive the calls; `how` is an
        // open_how of the size passed.
        let fd = unsafe {
            match k % 3 {
                #[cfg(target_arch = "x86_64")]
                0 => libc::syscall(libc::SYS_open, c.as_ptr(), flags, 0),
                1 => libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c.as_ptr(), flags, 0),
                2 => {
                    // struct open_how { u64 flags, mode, resolve; }
                    let how: [u64; 3] = [flags as u64, 0, 0];
                    libc::syscall(
                        libc::SYS_openat2,
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        how.as_ptr(),
                        std::mem::size_of_val(&how),
                    )
                }
                _ => libc::syscall(libc::SYS_openat, libc::AT_FDCWD, c.as_ptr(), flags, 0),
            }
        };
        assert!(fd >= 0, "ftt-workload: opening {path}");
        // SAFETY: a descriptor we own.
        unsafe { libc::close(fd as i32) };
    }
    for _ in 0..fail {
        // SAFETY: as above.
        let r = unsafe { libc::open(missing.as_ptr(), libc::O_RDONLY) };
        assert!(r < 0, "ftt-workload: {path}.missing exists");
    }
    // The paths stay in memory meanwhile.
    std::thread::sleep(Duration::from_secs(1));
    std::hint::black_box((&c, &missing));
}

/// `execs PROG N FAIL [MS]`: see the usage above.
fn execs(prog: &str, n: u64, fail: u64, pace: Option<u64>) {
    use std::ffi::CString;
    let cs = |s: &str| CString::new(s).expect("no NUL");
    let path = cs(prog);
    let mut children = Vec::new();
    let mut fds = [0i32; 2];
    // SAFETY: a pipe of two descriptors; the write end stays ours
    // (close-on-exec), the children read the other end as stdin.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    for k in 0..n {
        let mut args = vec![
            cs(prog),
            cs("exec-child"),
            cs(&format!("--k={k}")),
            cs("ftt distinct"),
        ];
        if pace.is_some() {
            args.push(cs("--now"));
        }
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: the child makes only async-signal-safe calls (dup2,
        // execv, _exit) on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                libc::dup2(fds[0], 0);
                libc::execv(path.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        assert!(pid > 0, "ftt-workload: fork");
        children.push(pid);
        if let Some(ms) = pace {
            wait_child(pid);
            children.pop();
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    // SAFETY: the read end is the children's now.
    unsafe { libc::close(fds[0]) };
    let missing = cs(&format!("{prog}.missing"));
    // Each failed exec's arguments stay in memory to the end, to be read.
    let mut kept = Vec::new();
    for k in 0..fail {
        let args = vec![missing.clone(), cs("exec-fail"), cs(&format!("--k={k}"))];
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        // SAFETY: NUL-terminated strings and a NULL-terminated argv that
        // outlive the call, which fails (no such file).
        let r = unsafe { libc::execv(missing.as_ptr(), argv.as_ptr()) };
        assert!(r < 0, "ftt-workload: {prog}.missing ran");
        kept.push((args, argv));
    }
    if pace.is_none() {
        // The children (and this process's memory) stay a while, to be read.
        std::thread::sleep(Duration::from_secs(1));
    }
    std::hint::black_box(&kept);
    // SAFETY: our own descriptor: its end is the children's end of stdin.
    unsafe { libc::close(fds[1]) };
    for pid in children {
        wait_child(pid);
    }
}

/// Waits for a child of `execs`, which must have exited 0.
fn wait_child(pid: libc::pid_t) {
    let mut st = 0;
    // SAFETY: waits for our own child.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    assert!(
        r == pid && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "ftt-workload: child {pid} ended with status {st:#x}"
    );
}

/// `signals N FAIL`: see the usage above.
fn signals(n: u64, fail: u64) {
    // SAFETY: plain system calls on this process; the signals sent are
    // ignored (SIG_IGN), so none interrupts anything.
    unsafe {
        for sig in 35..60 {
            libc::signal(sig, libc::SIG_IGN);
        }
        let pid = libc::getpid();
        let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        for k in 0..n {
            let sig = 35 + (k % 25) as i32;
            let r = match k % 4 {
                0 => libc::kill(pid, sig) as i64,
                1 => libc::syscall(libc::SYS_tkill, tid, sig),
                2 => libc::syscall(libc::SYS_tgkill, pid, tid, sig),
                _ if pidfd >= 0 => libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd,
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ),
                _ => libc::kill(pid, sig) as i64,
            };
            assert_eq!(r, 0, "ftt-workload: sending signal {sig}");
        }
        for _ in 0..fail {
            // Above any pid_max (4194304 at most): no such process.
            libc::kill(0x7fff_fff0, 36);
        }
        if pidfd >= 0 {
            libc::close(pidfd);
        }
    }
}

/// Eight arguments, for `$arg7` and `$arg8` from the stack; returns their
/// sum.
#[no_mangle]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn ftt_args8(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64, h: u64) -> u64 {
    std::hint::black_box(a + b + c + d + e + f + g + h)
}

/// Recurses down to 0 and returns its argument: each return pairs with
/// the entry of the same depth.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ftt_nest(d: u64) -> u64 {
    if std::hint::black_box(d) == 0 {
        return 0;
    }
    std::hint::black_box(ftt_nest(d - 1)) + 1
}

/// What `ftt_fill(i, ...)` writes: text, a NUL, bytes that are not text,
/// and a length that varies with i (12 to 18 bytes plus the digits of i).
pub fn fill_bytes(i: u64) -> Vec<u8> {
    let mut v = format!("out-{i}").into_bytes();
    v.extend_from_slice(b"\0\x01\xff\n\"\\ ");
    v.extend(std::iter::repeat_n(b'z', (i % 7) as usize));
    v
}

/// Fills `buf` (of `cap` bytes) with `fill_bytes(i)` like a read(2) and
/// returns the length written.
///
/// # Safety
/// `buf` must be valid for `cap` bytes.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn ftt_fill(i: u64, buf: *mut u8, cap: u64) -> u64 {
    let b = fill_bytes(std::hint::black_box(i));
    let n = b.len().min(cap as usize);
    // SAFETY: the caller gives cap bytes at buf.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), buf, n) };
    n as u64
}

/// Reads stdin up to a newline (or its end) with readv(2).
fn wait_for_go() {
    let mut buf = [0u8; 64];
    loop {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: one iovec over a live buffer of its length.
        let n = unsafe { libc::readv(0, &iov, 1) };
        if n <= 0 || buf[..n as usize].contains(&b'\n') {
            return;
        }
    }
}

fn num(s: Option<&String>, what: &str) -> u64 {
    s.and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("ftt-workload: missing or bad {what}"))
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(|a| a == "--wait").unwrap_or(false) {
        args.remove(0);
        wait_for_go();
    }
    let mode = args.first().cloned().unwrap_or_default();
    let done = match mode.as_str() {
        "getppid" => {
            let n = num(args.get(1), "count");
            for _ in 0..n {
                // SAFETY: getppid takes no arguments and cannot fail.
                unsafe { libc::syscall(libc::SYS_getppid) };
            }
            n
        }
        "signals" => {
            let n = num(args.get(1), "count");
            let fail = num(args.get(2), "failing count");
            signals(n, fail);
            n + fail
        }
        "opens" => {
            let path = args.get(1).expect("path").clone();
            let n = num(args.get(2), "count");
            let fail = num(args.get(3), "failing count");
            opens(&path, n, fail);
            n + fail
        }
        "execs" => {
            let prog = args.get(1).expect("program").clone();
            let n = num(args.get(2), "count");
            let fail = num(args.get(3), "failing count");
            let pace = args.get(4).map(|_| num(args.get(4), "milliseconds"));
            execs(&prog, n, fail, pace);
            n + fail
        }
        "open-rate" => {
            let path = std::ffi::CString::new(args.get(1).expect("path").as_str()).expect("path");
            let rate = num(args.get(2), "rate") as f64;
            let secs: f64 = args.get(3).and_then(|s| s.parse().ok()).expect("seconds");
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed().as_secs_f64() < secs {
                let due = (start.elapsed().as_secs_f64() * rate) as u64;
                while n < due {
                    // SAFETY: a NUL-terminated path; the descriptor is ours.
                    unsafe {
                        let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                        libc::close(fd);
                    }
                    n += 1;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            n
        }
        "exec-child" => {
            if args.last().map(String::as_str) != Some("--now") {
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            }
            std::process::exit(0);
        }
        "close-fail" => {
            let n = num(args.get(1), "count");
            for _ in 0..n {
                // SAFETY: closing an invalid descriptor only returns EBADF.
                unsafe { libc::syscall(libc::SYS_close, -1i64) };
            }
            n
        }
        "nanosleep" => {
            let n = num(args.get(1), "count");
            let ms = num(args.get(2), "milliseconds");
            for _ in 0..n {
                std::thread::sleep(Duration::from_millis(ms));
            }
            n
        }
        "select-threads" => {
            let t = num(args.get(1), "threads");
            let ms = num(args.get(2), "milliseconds");
            let start = std::sync::Arc::new(std::sync::Barrier::new(t as usize));
            let threads: Vec<_> = (0..t)
                .map(|_| {
                    let start = start.clone();
                    std::thread::spawn(move || {
                        start.wait();
                        let mut tv = libc::timeval {
                            tv_sec: (ms / 1000) as libc::time_t,
                            tv_usec: ((ms % 1000) * 1000) as libc::suseconds_t,
                        };
                        let null = std::ptr::null_mut::<libc::fd_set>();
                        // SAFETY: no descriptor sets; tv is a valid timeval.
                        unsafe { libc::syscall(libc::SYS_select, 0, null, null, null, &mut tv) };
                    })
                })
                .collect();
            for th in threads {
                th.join().expect("a sleeping thread");
            }
            t
        }
        "read-zero" => {
            let n = num(args.get(1), "count");
            let f = std::fs::File::open("/dev/zero").expect("open /dev/zero");
            let mut buf = [0u8; 16];
            for _ in 0..n {
                use std::os::fd::AsRawFd;
                // SAFETY: buf is valid for 16 bytes.
                unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            }
            n
        }
        "read-4k" | "spin-4k" => {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open("/dev/zero").expect("open /dev/zero");
            let mut buf = vec![0u8; 4096];
            let read = |fd: i32, buf: &mut [u8]| {
                // SAFETY: buf is valid for its length.
                unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
            };
            if mode == "spin-4k" {
                let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).expect("seconds");
                let end = Instant::now() + Duration::from_secs_f64(secs);
                let mut n = 0u64;
                while Instant::now() < end {
                    for _ in 0..100 {
                        read(f.as_raw_fd(), &mut buf);
                    }
                    n += 100;
                }
                n
            } else {
                let n = num(args.get(1), "count");
                let m = num(args.get(2), "count of failing reads");
                for _ in 0..n {
                    assert_eq!(read(f.as_raw_fd(), &mut buf), 4096);
                }
                for _ in 0..m {
                    assert_eq!(read(-1, &mut buf), -1);
                }
                n + m
            }
        }
        "usleep" => {
            let n = num(args.get(1), "count");
            let us = num(args.get(2), "microseconds");
            for _ in 0..n {
                // SAFETY: usleep has no memory preconditions.
                unsafe { libc::usleep(us as libc::useconds_t) };
            }
            n
        }
        "open" => {
            let path = args.get(1).expect("path").clone();
            let n = num(args.get(2), "count");
            for _ in 0..n {
                let _ = std::fs::File::open(&path);
            }
            n
        }
        "call" => {
            let n = num(args.get(1), "count");
            let mut acc = 0u64;
            for i in 0..n {
                acc = acc.wrapping_add(ftt_probe_target(i));
            }
            std::hint::black_box(acc);
            n
        }
        "args" => {
            let n = num(args.get(1), "count");
            let mut acc = 0u64;
            // A buffer per call, kept to the end: a return probe reads it
            // after the call, as the process left it.
            let mut bufs = vec![[0u8; 256]; n as usize];
            for (i, buf) in (0..n).zip(bufs.iter_mut()) {
                acc = acc.wrapping_add(ftt_args8(
                    i,
                    i + 1,
                    i + 2,
                    i + 3,
                    i + 4,
                    i + 5,
                    i + 6,
                    i + 7,
                ));
                let s = format!("in-{i}");
                buf[..s.len()].copy_from_slice(s.as_bytes());
                // SAFETY: buf holds 256 bytes.
                let got = unsafe { ftt_fill(i, buf.as_mut_ptr(), buf.len() as u64) };
                assert_eq!(&buf[..got as usize], &fill_bytes(i)[..]);
            }
            std::hint::black_box((acc, &bufs));
            let hold = args.get(2).map(|_| num(args.get(2), "milliseconds"));
            std::thread::sleep(Duration::from_millis(hold.unwrap_or(0)));
            n
        }
        "nest" => {
            let t = num(args.get(1), "threads");
            let m = num(args.get(2), "calls");
            let d = num(args.get(3), "depth");
            let threads: Vec<_> = (0..t)
                .map(|_| {
                    std::thread::spawn(move || {
                        for _ in 0..m {
                            assert_eq!(ftt_nest(d), d);
                        }
                    })
                })
                .collect();
            for th in threads {
                th.join().expect("a thread failed");
            }
            t * m * (d + 1)
        }
        "strlen" => {
            let n = num(args.get(1), "count");
            let s = c"ftrace-tools";
            let mut acc = 0usize;
            for _ in 0..n {
                // SAFETY: a NUL-terminated string; black_box keeps the
                // compiler from working the length out itself.
                acc = acc.wrapping_add(unsafe { libc::strlen(std::hint::black_box(s.as_ptr())) });
            }
            std::hint::black_box(acc);
            n
        }
        "spin" | "spin-call" => {
            let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).expect("seconds");
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut n = 0u64;
            while Instant::now() < end {
                for i in 0..1000 {
                    if mode == "spin" {
                        // SAFETY: as above.
                        unsafe { libc::syscall(libc::SYS_getppid) };
                    } else {
                        std::hint::black_box(ftt_probe_target(i));
                    }
                }
                n += 1000;
            }
            n
        }
        "steady" => {
            use std::os::fd::AsRawFd;
            let what = args.get(1).cloned().unwrap_or_default();
            let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).expect("seconds");
            let f = std::fs::File::open("/dev/zero").expect("open /dev/zero");
            let mut buf = [0u8; 16];
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut n = 0u64;
            while Instant::now() < end {
                for i in 0..10 {
                    match what.as_str() {
                        // SAFETY: no arguments; cannot fail.
                        "getppid" => unsafe {
                            libc::syscall(libc::SYS_getppid);
                        },
                        "call" => {
                            std::hint::black_box(ftt_probe_target(i));
                        }
                        // SAFETY: signal 0 only checks that we exist.
                        "kill" => unsafe {
                            libc::kill(libc::getpid(), 0);
                        },
                        // SAFETY: a NUL-terminated path; the descriptor is ours.
                        "open" => unsafe {
                            let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                            libc::close(fd);
                        },
                        // SAFETY: buf is valid for 16 bytes.
                        "read" => unsafe {
                            libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len());
                        },
                        w => panic!(
                            "ftt-workload: steady {w}: want getppid, call, read, kill or open"
                        ),
                    }
                }
                n += 10;
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        }
        "spin-read" => {
            use std::os::fd::AsRawFd;
            let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).expect("seconds");
            let f = std::fs::File::open("/dev/zero").expect("open /dev/zero");
            let mut buf = [0u8; 16];
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut n = 0u64;
            while Instant::now() < end {
                for _ in 0..100 {
                    // SAFETY: buf is valid for 16 bytes.
                    unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                }
                n += 100;
            }
            n
        }
        "nanosleep-mix" => {
            let n = num(args.get(1), "count");
            let ms = num(args.get(2), "milliseconds");
            let sleep = |ts: libc::timespec| {
                // SAFETY: ts is a valid timespec; no remainder is asked for.
                unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
            };
            for _ in 0..n {
                // A zero sleep still goes through the kernel's do_nanosleep.
                sleep(libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                });
            }
            sleep(libc::timespec {
                tv_sec: (ms / 1000) as libc::time_t,
                tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
            });
            n + 1
        }
        "sleep" => {
            let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).expect("seconds");
            std::thread::sleep(Duration::from_secs_f64(secs));
            0
        }
        "direct-read" => {
            use std::os::unix::fs::{FileExt, OpenOptionsExt};
            let path = args.get(1).expect("path").clone();
            let n = num(args.get(2), "count");
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(&path)
                .expect("open with O_DIRECT");
            let blocks = (f.metadata().expect("stat").len() / 4096).max(1);
            // O_DIRECT needs an aligned buffer: 4096 bytes at a 4096 boundary.
            let mut raw = vec![0u8; 2 * 4096];
            let off = raw.as_ptr().align_offset(4096);
            let buf = &mut raw[off..off + 4096];
            for i in 0..n {
                f.read_exact_at(buf, (i % blocks) * 4096)
                    .expect("direct read");
            }
            n
        }
        // iolatency and bitesize (block I/O of known sizes).
        "direct-io" => direct_io(&args),
        "nanosleep-timed" => {
            let n = num(args.get(1), "count");
            let ms = num(args.get(2), "milliseconds");
            let path = args.get(3).expect("path").clone();
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let t0 = Instant::now();
                std::thread::sleep(Duration::from_millis(ms));
                total += t0.elapsed();
            }
            std::fs::write(&path, total.as_nanos().to_string()).expect("write the total");
            n
        }
        "mix" => {
            let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).expect("seconds");
            let dir = std::path::PathBuf::from(args.get(2).expect("directory"));
            mix(secs, &dir)
        }
        "tcp-retrans" => {
            let addr = args.get(1).expect("address").clone();
            let port = num(args.get(2), "port") as u16;
            let n = num(args.get(3), "count");
            tcp_retrans(&addr, port, n)
        }
        "cache-prep" | "cache-read" => cache::run(&mode, &args),
        // funcslower: K nanosleeps of MS ms, each after N/K zero-length
        // ones (fast do_nanosleep calls); prints nothing, returns K + N.
        "nanosleep-slowfast" => {
            let k = num(args.get(1), "slow count");
            let ms = num(args.get(2), "milliseconds");
            let n = num(args.get(3), "fast count");
            let sleep = |ns: u64| {
                let ts = libc::timespec {
                    tv_sec: (ns / 1_000_000_000) as libc::time_t,
                    tv_nsec: (ns % 1_000_000_000) as libc::c_long,
                };
                // SAFETY: ts is a valid timespec; no remainder is asked for.
                unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
            };
            for i in 0..k.max(n) {
                if i < n {
                    sleep(0);
                }
                if i < k {
                    sleep(ms * 1_000_000);
                }
            }
            k + n
        }
        other => {
            eprintln!("ftt-workload: unknown mode '{other}'");
            std::process::exit(2);
        }
    };
    println!("done {done}");
}

/// `mix`: rounds of file, block, process, signal, timer, memory and
/// network activity, so that most subsystems' tracepoints fire.
fn mix(secs: f64, dir: &std::path::Path) -> u64 {
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    extern "C" fn on_usr1(_: libc::c_int) {}
    // SAFETY: installs a handler that does nothing.
    unsafe { libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t) };
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    let tcp_addr = tcp.local_addr().expect("address");
    let server = std::thread::spawn(move || {
        for s in tcp.incoming() {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 64];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp_addr = udp.local_addr().expect("address");
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut rounds = 0u64;
    // O_DIRECT needs an aligned buffer: 4096 bytes at a 4096 boundary.
    let mut raw = vec![0u8; 2 * 4096];
    let off = raw.as_ptr().align_offset(4096);
    while Instant::now() < end {
        let path = dir.join(format!("ftt-mix-{}-{rounds}", std::process::id()));
        let moved = path.with_extension("moved");
        if let Ok(mut f) = std::fs::File::create(&path) {
            let _ = f.write_all(&[b'x'; 8192]);
            let _ = f.sync_all();
        }
        let _ = std::fs::read(&path);
        let _ = std::fs::rename(&path, &moved);
        if let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&moved)
        {
            let buf = &mut raw[off..off + 4096];
            let _ = f.write_all_at(buf, 0);
            let _ = f.read_exact_at(buf, 0);
        }
        let _ = std::fs::remove_file(&moved);
        // A process that execs, one killed by a signal.
        let _ = std::process::Command::new("/bin/true").status();
        if let Ok(mut c) = std::process::Command::new("/bin/sleep").arg("10").spawn() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
        // SAFETY: a signal to ourselves, handled above.
        unsafe { libc::kill(std::process::id() as i32, libc::SIGUSR1) };
        // Timers: sleeps, an interval timer, a timerfd.
        std::thread::sleep(Duration::from_millis(2));
        // SAFETY: plain libc calls on valid arguments.
        unsafe {
            let fd = libc::timerfd_create(libc::CLOCK_MONOTONIC, 0);
            if fd >= 0 {
                let t = libc::itimerspec {
                    it_interval: libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                    it_value: libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 500_000,
                    },
                };
                libc::timerfd_settime(fd, 0, &t, std::ptr::null_mut());
                let mut n = 0u64;
                libc::read(fd, (&mut n as *mut u64).cast(), 8);
                libc::close(fd);
            }
        }
        // Memory: pages mapped, touched and unmapped; a large allocation.
        // SAFETY: an anonymous private mapping, written within its length.
        unsafe {
            let len = 64 * 4096;
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p != libc::MAP_FAILED {
                for i in (0..len).step_by(4096) {
                    *(p as *mut u8).add(i) = 1;
                }
                libc::munmap(p, len);
            }
        }
        std::hint::black_box(vec![1u8; 1 << 20]);
        // Loopback: a TCP round trip on a new connection, a UDP datagram.
        if let Ok(mut c) = std::net::TcpStream::connect(tcp_addr) {
            let _ = c.write_all(b"ping");
            let mut buf = [0u8; 4];
            let _ = c.read_exact(&mut buf);
        }
        let _ = udp.send_to(b"ping", udp_addr);
        let mut buf = [0u8; 16];
        let _ = udp.recv_from(&mut buf);
        rounds += 1;
    }
    drop(server);
    rounds
}

/// `tcp-retrans ADDR PORT N` (tcpretrans tests, run in a network namespace
/// that drops some packets to PORT): a server on ADDR:PORT reads until
/// the end; a client sends N messages of 64 bytes, each its own write with
/// Nagle off (one segment each: far below loopback's MSS), 2 ms apart,
/// then closes and waits for the server to have read all of them.
fn tcp_retrans(addr: &str, port: u16, n: u64) -> u64 {
    use std::io::{Read, Write};
    let ip: std::net::IpAddr = addr.parse().expect("an IP address");
    let sa = std::net::SocketAddr::new(ip, port);
    let listener = std::net::TcpListener::bind(sa).expect("listen");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut total = 0usize;
        let mut buf = [0u8; 4096];
        while let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            total += k;
        }
        total
    });
    let mut c = std::net::TcpStream::connect(sa).expect("connect");
    c.set_nodelay(true).expect("TCP_NODELAY");
    for _ in 0..n {
        c.write_all(&[b'r'; 64]).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let total = server.join().expect("server");
    assert_eq!(total as u64, n * 64, "the server read everything");
    n
}

/// `direct-io PATH R RKB W WKB` (iolatency, bitesize): R reads of RKB KiB,
/// then W writes of WKB KiB, O_DIRECT, one after another at offsets of
/// their own (no two can merge), on PATH.
fn direct_io(args: &[String]) -> u64 {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let path = args.get(1).expect("path").clone();
    let (r, rkb) = (num(args.get(2), "reads"), num(args.get(3), "read KiB"));
    let (w, wkb) = (num(args.get(4), "writes"), num(args.get(5), "write KiB"));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .expect("open with O_DIRECT");
    let most = rkb.max(wkb) as usize * 1024;
    let mut raw = vec![0x5au8; most + 4096];
    let off = raw.as_ptr().align_offset(4096);
    let buf = &mut raw[off..off + most];
    // A gap of one I/O between any two, so that none is adjacent to another.
    let mut at = 0u64;
    for _ in 0..r {
        let n = rkb as usize * 1024;
        f.read_exact_at(&mut buf[..n], at).expect("direct read");
        at += 2 * n as u64;
    }
    for _ in 0..w {
        let n = wkb as usize * 1024;
        f.write_all_at(&buf[..n], at).expect("direct write");
        at += 2 * n as u64;
    }
    r + w
}

/// cachestat's modes: a file dropped from the page cache, then read.
mod cache {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;

    const PAGE: usize = 4096;

    pub fn run(mode: &str, args: &[String]) -> u64 {
        let path = args.get(1).expect("path");
        match mode {
            "cache-prep" => prep(path, super::num(args.get(2), "pages")),
            _ => {
                let pages = read(path);
                if args.get(2).is_some_and(|a| a == "hold") {
                    println!("done {pages}");
                    let mut rest = Vec::new();
                    let _ = std::io::stdin().read_to_end(&mut rest);
                    std::process::exit(0);
                }
                pages
            }
        }
    }

    /// Written, synced, dropped, and checked to be out of the cache.
    fn prep(path: &str, n: u64) -> u64 {
        // Read and write: mincore's mapping needs read access.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .expect("create");
        let page = [0x5au8; PAGE];
        for _ in 0..n {
            f.write_all(&page).expect("write");
        }
        f.sync_all().expect("fsync");
        // SAFETY: a valid descriptor; the whole file.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
        let cached = resident(&f, n as usize * PAGE);
        assert_eq!(
            cached, 0,
            "{cached} pages of {path} still cached after DONTNEED"
        );
        n
    }

    /// Pages of the file's first `len` bytes in the page cache (mincore).
    fn resident(f: &std::fs::File, len: usize) -> usize {
        // SAFETY: a shared read-only mapping of the file, unmapped below;
        // mincore writes one byte per page into a vector that long.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            );
            assert_ne!(p, libc::MAP_FAILED, "mmap");
            let mut v = vec![0u8; len.div_ceil(PAGE)];
            let rc = libc::mincore(p, len, v.as_mut_ptr());
            libc::munmap(p, len);
            assert_eq!(rc, 0, "mincore");
            v.iter().filter(|b| *b & 1 == 1).count()
        }
    }

    /// Reads to the end in page-sized read()s; the pages read.
    fn read(path: &str) -> u64 {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(path)
            .expect("open");
        // Up to the size, never a read at the end of the file: on Debian 11's
        // 5.10 that read makes the kernel add a page past the end to the page
        // cache (257 pages added for 256; not in 6.1 and later).
        let size = f.metadata().expect("stat").len();
        let mut buf = [0u8; PAGE];
        let mut pages = 0;
        let mut at = 0;
        while at < size {
            match f.read(&mut buf).expect("read") {
                0 => break,
                n => {
                    at += n as u64;
                    pages += 1;
                }
            }
        }
        pages
    }
}
