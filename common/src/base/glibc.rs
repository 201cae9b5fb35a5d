//! What a build linked against an old glibc (2.17, tests/dist) lacks
//! (feature `old-glibc` of this crate; every tool links it).

/// copy_file_range(2) for builds linked against glibc older than 2.27,
/// which lacks the wrapper Rust's standard library links to: the bare
/// system call, as glibc's wrapper is. A kernel older than 4.5 says ENOSYS
/// and the standard library falls back to read and write.
///
/// # Safety
/// As copy_file_range(2): valid descriptors, and offsets null or valid.
#[no_mangle]
pub unsafe extern "C" fn copy_file_range(
    fd_in: libc::c_int,
    off_in: *mut libc::loff_t,
    fd_out: libc::c_int,
    off_out: *mut libc::loff_t,
    len: libc::size_t,
    flags: libc::c_uint,
) -> libc::ssize_t {
    libc::syscall(
        libc::SYS_copy_file_range,
        fd_in,
        off_in,
        fd_out,
        off_out,
        len,
        flags,
    ) as libc::ssize_t
}
