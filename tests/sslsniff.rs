//! Black-box tests of `sslsniff` against the real kernel: openssl's s_server
//! and s_client, and a small C program on libssl (SSL_read/SSL_write and
//! the _ex forms, binary payloads, a 100 kB write, twenty connections at
//! once) and on GnuTLS, with exact bytes and lengths.
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{cc, has_command, require_cc, ToolRun};

/// One call as sslsniff showed it.
#[derive(Debug, Clone)]
struct Block {
    func: String,
    comm: String,
    pid: u32,
    len: u64,
    tid: Option<u32>,
    /// The data, unescaped; `None` for a line without data.
    data: Option<Vec<u8>>,
    end: String,
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'\\' => out.push(b'\\'),
                b'r' => out.push(b'\r'),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 2;
                }
                c => panic!("unknown escape \\{}", c as char),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn blocks(out: &str, extra: bool) -> Vec<Block> {
    let lines: Vec<&str> = out.lines().collect();
    let mut v = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        if !["READ/RECV", "WRITE/SEND", "HANDSHAKE"]
            .iter()
            .any(|f| l.starts_with(f))
        {
            continue;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        let mut b = Block {
            func: w[0].to_string(),
            comm: w[2].to_string(),
            pid: w[3].parse().unwrap(),
            len: w[4].parse().unwrap(),
            tid: extra.then(|| w[6].parse().unwrap()),
            data: None,
            end: String::new(),
        };
        if lines.get(i) == Some(&"----- DATA -----") {
            i += 1;
            let mut d = Vec::new();
            while !lines[i].starts_with("----- END DATA") {
                d.push(lines[i]);
                i += 1;
            }
            b.end = lines[i].to_string();
            i += 1;
            if !d.is_empty() {
                b.data = Some(unescape(&d.join("\n")));
            }
        }
        v.push(b);
    }
    v
}

/// A child killed and reaped when the test ends, a failed one too.
struct Reap(std::process::Child);

impl std::ops::Deref for Reap {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reap {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn clean(f: &support::Finished) {
    support::assert_nothing_left(f.pid);
    let ue = std::fs::read_to_string(support::tracefs_root().join("uprobe_events")).unwrap();
    assert!(
        !ue.contains(&format!("ftrace_tools_{}_", f.pid)),
        "left in uprobe_events: {ue}"
    );
}

fn cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req failed");
    (cert, key)
}

#[test]
fn s_server_and_s_client_exact_bytes_both_ways() {
    require_tracing!(UprobeEvents, Instances);
    if !has_command("openssl") {
        support::skip("needs the openssl command");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let up = format!("client-to-server {} \\ \t{port}\n", std::process::id());
    let down = format!("server-to-client {port} é\n");
    let mut t = ToolRun::start(
        "sslsniff",
        &["-x", "-o", "-g", "-n", "--extra-lib", "openssl:libssl"],
    );
    t.wait_ready();
    let mut server = Reap(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-naccept",
                "1",
            ])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let watch = |r: Box<dyn std::io::Read + Send>| {
        let seen = Arc::new(Mutex::new(String::new()));
        let s2 = Arc::clone(&seen);
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(|l| l.ok()) {
                s2.lock().unwrap().push_str(&format!("{l}\n"));
            }
        });
        seen
    };
    let sseen = watch(Box::new(server.stdout.take().unwrap()));
    let wait_for = |seen: &Arc<Mutex<String>>, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !seen.lock().unwrap().contains(what) {
            assert!(Instant::now() < deadline, "never saw {what:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(&sseen, "ACCEPT");
    let mut client = Reap(
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-quiet",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let cseen = watch(Box::new(client.stdout.take().unwrap()));
    // One way, then the other, each after the last: neither program
    // reuses the buffer of a call before sslsniff has read it.
    std::thread::sleep(Duration::from_millis(500));
    client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(up.as_bytes())
        .unwrap();
    wait_for(&sseen, up.trim_end());
    std::thread::sleep(Duration::from_millis(300));
    server
        .stdin
        .as_mut()
        .unwrap()
        .write_all(down.as_bytes())
        .unwrap();
    wait_for(&cseen, down.trim_end());
    std::thread::sleep(Duration::from_millis(1000));
    let (cpid, spid) = (client.id(), server.id());
    for c in [&mut client, &mut server] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let b = blocks(&f.stdout, true);
    let find = |func: &str, pid: u32, data: &str| {
        b.iter()
            .filter(|x| {
                x.func == func && x.pid == pid && x.data.as_deref() == Some(data.as_bytes())
            })
            .filter(|x| x.len == data.len() as u64 && x.end == "----- END DATA -----")
            .count()
    };
    assert_eq!(find("WRITE/SEND", cpid, &up), 1, "{}", f.stdout);
    assert_eq!(find("READ/RECV", spid, &up), 1, "{}", f.stdout);
    assert_eq!(find("WRITE/SEND", spid, &down), 1, "{}", f.stdout);
    assert_eq!(find("READ/RECV", cpid, &down), 1, "{}", f.stdout);
    assert!(
        b.iter()
            .filter(|x| x.pid == cpid || x.pid == spid)
            .all(|x| x.comm == "openssl"),
        "{}",
        f.stdout
    );
    clean(&f);
}

/// Connections over socketpairs in one process, client and server each a
/// thread: each message in a buffer of its own, never reused or freed.
const TLS_C: &str = r#"
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static SSL_CTX *sctx, *cctx;
static int use_ex, nmsg, big, binary, handshake;

static int wr(SSL *s, const void *b, int n) {
    if (use_ex) { size_t w = 0; return SSL_write_ex(s, b, n, &w) == 1 ? (int)w : -1; }
    return SSL_write(s, b, n);
}
static int rd(SSL *s, void *b, int n) {
    if (use_ex) { size_t r = 0; return SSL_read_ex(s, b, n, &r) == 1 ? (int)r : -1; }
    return SSL_read(s, b, n);
}
static void rd_all(SSL *s, int want) {
    while (want > 0) {
        char *b = malloc(16384);
        int n = rd(s, b, 16384);
        if (n <= 0) { fprintf(stderr, "read failed\n"); exit(1); }
        want -= n;
    }
}
static char *msg(int c, int i, int up, int *len) {
    char *m = malloc(300);
    if (binary) {
        for (int k = 0; k < 256; k++) m[k] = (char)(k + c + i);
        *len = 256;
    } else {
        *len = sprintf(m, "conn%d msg%d %s", c, i, up ? "client-to-server" : "server-to-client");
    }
    return m;
}
struct side { int fd, conn, server; };
static void *run(void *p) {
    struct side *sd = p;
    SSL *s = SSL_new(sd->server ? sctx : cctx);
    SSL_set_fd(s, sd->fd);
    if (sd->server) SSL_set_accept_state(s); else SSL_set_connect_state(s);
    if (SSL_do_handshake(s) != 1) { fprintf(stderr, "handshake failed\n"); exit(1); }
    if (big) {
        if (sd->server) { rd_all(s, big); } else {
            char *m = malloc(big);
            for (int k = 0; k < big; k++) m[k] = 'a' + k % 26;
            if (wr(s, m, big) != big) { fprintf(stderr, "big write failed\n"); exit(1); }
        }
        return 0;
    }
    for (int i = 0; i < nmsg; i++) {
        int len;
        if (sd->server) {
            msg(sd->conn, i, 1, &len);
            rd_all(s, len);
            char *m = msg(sd->conn, i, 0, &len);
            if (wr(s, m, len) != len) exit(1);
        } else {
            char *m = msg(sd->conn, i, 1, &len);
            if (wr(s, m, len) != len) exit(1);
            msg(sd->conn, i, 0, &len);
            rd_all(s, len);
        }
    }
    return 0;
}
int main(int argc, char **argv) {
    /* CERT KEY CONNS MSGS ex|plain text|binary BIG [wait] */
    if (argc > 8 && !strcmp(argv[8], "wait")) {
        char go[8];
        if (!fgets(go, sizeof go, stdin)) return 1;
    }
    int conns = atoi(argv[3]);
    nmsg = atoi(argv[4]);
    use_ex = !strcmp(argv[5], "ex");
    binary = !strcmp(argv[6], "binary");
    big = atoi(argv[7]);
    sctx = SSL_CTX_new(TLS_server_method());
    cctx = SSL_CTX_new(TLS_client_method());
    if (SSL_CTX_use_certificate_file(sctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) return 2;
    pthread_t *t = calloc(2 * conns, sizeof *t);
    for (int c = 0; c < conns; c++) {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        struct side *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        *a = (struct side){ sv[0], c, 1 };
        *b = (struct side){ sv[1], c, 0 };
        pthread_create(&t[2 * c], 0, run, a);
        pthread_create(&t[2 * c + 1], 0, run, b);
    }
    for (int k = 0; k < 2 * conns; k++) pthread_join(t[k], 0);
    printf("done\n");
    fflush(stdout);
    /* Stay until told, so that the last buffers can still be read. */
    char line[8];
    while (fgets(line, sizeof line, stdin)) {}
    return 0;
}
"#;

/// Builds the libssl program, or skips.
fn tls_prog(dir: &Path) -> Option<PathBuf> {
    if !require_cc() {
        return None;
    }
    if !Path::new("/usr/include/openssl/ssl.h").exists() || !has_command("openssl") {
        support::skip("needs OpenSSL's headers and the openssl command");
        return None;
    }
    Some(cc(
        dir,
        "ftt-tls",
        TLS_C,
        &["-lssl", "-lcrypto", "-lpthread"],
    ))
}

/// Runs sslsniff ARGS around the program with its arguments; the
/// program's PID and sslsniff's output.
fn sniff_prog(prog: &Path, dir: &Path, pargs: &[&str], args: &[&str]) -> (u32, support::Finished) {
    let (cert, key) = cert(dir);
    let mut t = ToolRun::start("sslsniff", args);
    t.wait_ready();
    let mut p = Reap(
        Command::new(prog)
            .arg(&cert)
            .arg(&key)
            .args(pargs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(p.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "done\n");
    // sslsniff reads each call's bytes when it reads the return event.
    std::thread::sleep(Duration::from_millis(1500));
    drop(p.stdin.take());
    let pid = p.id();
    assert!(p.wait().unwrap().success());
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    (pid, f)
}

fn text_msg(c: u32, i: u32, up: bool) -> Vec<u8> {
    format!(
        "conn{c} msg{i} {}",
        if up {
            "client-to-server"
        } else {
            "server-to-client"
        }
    )
    .into_bytes()
}

/// Every message of `conns` x `msgs`, each way, exactly once as a write
/// and once as a read, with its exact length; nothing else.
fn check_messages(f: &support::Finished, pid: u32, conns: u32, msgs: u32, binary: bool) {
    let b: Vec<Block> = blocks(&f.stdout, true)
        .into_iter()
        .filter(|x| x.pid == pid && x.func != "HANDSHAKE")
        .collect();
    let mut want = Vec::new();
    for c in 0..conns {
        for i in 0..msgs {
            for up in [true, false] {
                let m = if binary {
                    (0..256u32).map(|k| (k + c + i) as u8).collect()
                } else {
                    text_msg(c, i, up)
                };
                if !binary || up {
                    want.push(m);
                }
            }
        }
    }
    for func in ["WRITE/SEND", "READ/RECV"] {
        let mut got: Vec<Vec<u8>> = b
            .iter()
            .filter(|x| x.func == func)
            .map(|x| {
                assert_eq!(
                    x.len,
                    x.data.as_ref().map_or(0, |d| d.len() as u64),
                    "{x:?}"
                );
                assert_eq!(x.end, "----- END DATA -----");
                x.data.clone().unwrap()
            })
            .collect();
        let mut w = want.clone();
        if binary {
            // Both ways carry the same bytes.
            w.extend(want.clone());
        }
        got.sort();
        w.sort();
        assert_eq!(got.len(), w.len(), "{func}: {}\n{}", f.stdout, f.stderr);
        assert!(got == w, "{func}: the bytes differ:\n{}", f.stdout);
        let total: u64 = b.iter().filter(|x| x.func == func).map(|x| x.len).sum();
        assert_eq!(total, w.iter().map(|m| m.len() as u64).sum::<u64>());
    }
}

#[test]
fn ssl_read_and_write_exact_bytes_and_lengths() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["1", "5", "plain", "text", "0"],
        &["-x", "-c", "ftt-tls"],
    );
    check_messages(&f, pid, 1, 5, false);
    clean(&f);
}

#[test]
fn ssl_read_ex_and_write_ex_take_their_length_from_the_pointer() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["1", "5", "ex", "text", "0"],
        &["-x", "-l"],
    );
    check_messages(&f, pid, 1, 5, false);
    assert!(f.stdout.contains("LAT(ms)"));
    clean(&f);
}

#[test]
fn binary_payloads_with_nul_bytes_are_exact() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["1", "3", "plain", "binary", "0"],
        &["-x"],
    );
    check_messages(&f, pid, 1, 3, true);
    assert!(f.stdout.contains("\\x00\\x01\\x02"), "{}", f.stdout);
    // --hexdump: 16 bytes a line.
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["1", "1", "plain", "binary", "0"],
        &["-x", "--hexdump"],
    );
    let b: Vec<&str> = f.stdout.lines().collect();
    let at = b
        .iter()
        .position(|l| l.starts_with("WRITE/SEND") && l.contains(&pid.to_string()))
        .unwrap();
    assert_eq!(
        b[at + 2],
        "000102030405060708090a0b0c0d0e0f",
        "{}",
        f.stdout
    );
    assert_eq!(
        b[at + 17],
        "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        "{}",
        f.stdout
    );
    clean(&f);
}

#[test]
fn a_100_kb_write_is_truncated_to_the_buffer_size() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["1", "0", "plain", "text", "102400"],
        &["-x", "--max-buffer-size", "1000"],
    );
    let b: Vec<Block> = blocks(&f.stdout, true)
        .into_iter()
        .filter(|x| x.pid == pid)
        .collect();
    let pattern: Vec<u8> = (0..102400).map(|k| b'a' + (k % 26) as u8).collect();
    let w: Vec<&Block> = b.iter().filter(|x| x.func == "WRITE/SEND").collect();
    assert_eq!(w.len(), 1, "{}", f.stdout);
    assert_eq!(w[0].len, 102400);
    assert_eq!(w[0].data.as_deref(), Some(&pattern[..1000]));
    assert_eq!(
        w[0].end,
        "----- END DATA (TRUNCATED, 101400 bytes lost) -----"
    );
    // The reads add up to the write, each at most a 16 kB record.
    let r: Vec<&Block> = b.iter().filter(|x| x.func == "READ/RECV").collect();
    assert_eq!(r.iter().map(|x| x.len).sum::<u64>(), 102400, "{}", f.stdout);
    for x in &r {
        assert!(x.len <= 16384);
        let shown = x.len.min(1000) as usize;
        assert_eq!(x.data.as_ref().unwrap().len(), shown);
    }
    assert_eq!(r[0].data.as_deref(), Some(&pattern[..1000]));
    clean(&f);
}

#[test]
fn twenty_connections_at_once_pair_per_thread() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["20", "10", "plain", "text", "0"],
        &["-x"],
    );
    check_messages(&f, pid, 20, 10, false);
    // Each thread's calls are its own: a client thread writes only
    // client-to-server messages.
    let all = blocks(&f.stdout, true);
    for x in all.iter().filter(|x| x.pid == pid) {
        let d = String::from_utf8_lossy(x.data.as_deref().unwrap_or_default()).to_string();
        let same = all
            .iter()
            .filter(|y| y.tid == x.tid && y.func == x.func)
            .all(|y| {
                String::from_utf8_lossy(y.data.as_deref().unwrap_or_default())
                    .ends_with(&d[d.len() - 16..])
            });
        assert!(same, "thread {:?} mixes directions", x.tid);
    }
    clean(&f);
}

#[test]
fn handshakes_are_shown_with_their_latency() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["3", "1", "plain", "text", "0"],
        &["-x", "--handshake", "-o", "--extra-lib", "openssl:libssl"],
    );
    let b: Vec<Block> = blocks(&f.stdout, true)
        .into_iter()
        .filter(|x| x.pid == pid)
        .collect();
    assert_eq!(
        b.iter()
            .filter(|x| x.func == "HANDSHAKE" && x.len == 1 && x.data.is_none())
            .count(),
        6,
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("LAT(ms)"));
    clean(&f);
}

#[test]
fn json_lines_carry_the_exact_bytes() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    let (pid, f) = sniff_prog(
        &prog,
        dir.path(),
        &["1", "2", "plain", "binary", "0"],
        &["-j"],
    );
    let v: Vec<serde_json::Value> = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["pid"] == pid)
        .collect();
    assert_eq!(v.len(), 8, "{}", f.stdout);
    for x in &v {
        assert_eq!(x["len"], 256);
        assert_eq!(x["lost"], 0);
        assert_eq!(x["read"], "ok");
        let d = x["data_hex"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                x["data"]
                    .as_str()
                    .unwrap()
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            });
        assert_eq!(d.len(), 512);
    }
    clean(&f);
}

#[test]
fn a_pid_without_libraries_and_nothing_found_exit_2() {
    require_tracing!(UprobeEvents, Instances);
    let f = support::run("sslsniff", &["-o", "-g", "-n"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(f.stderr.contains("no TLS library to trace"), "{}", f.stderr);
    let f = support::run(
        "sslsniff",
        &[
            "--extra-lib",
            "openssl:/nonexistent/libssl.so",
            "-o",
            "-g",
            "-n",
        ],
    );
    assert_eq!(f.code(), 2, "{}", f.stderr);
    assert!(
        f.stderr.contains("openssl:/nonexistent/libssl.so"),
        "{}",
        f.stderr
    );
    let f = support::run("sslsniff", &["--extra-lib", "tls:/x"]);
    assert_eq!(f.code(), 2, "{}", f.stderr);
    clean(&f);
}

/// GnuTLS over a socketpair, client and server threads: N messages each
/// way through gnutls_record_send and gnutls_record_recv.
const GNUTLS_C: &str = r#"
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static gnutls_certificate_credentials_t scred, ccred;
static int nmsg;
struct side { int fd, server; };
static void *run(void *p) {
    struct side *sd = p;
    gnutls_session_t s;
    gnutls_init(&s, sd->server ? GNUTLS_SERVER : GNUTLS_CLIENT);
    gnutls_set_default_priority(s);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, sd->server ? scred : ccred);
    gnutls_transport_set_int(s, sd->fd);
    int r;
    do { r = gnutls_handshake(s); } while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0) { fprintf(stderr, "handshake: %s\n", gnutls_strerror(r)); exit(1); }
    for (int i = 0; i < nmsg; i++) {
        char *m = malloc(64), *b = malloc(16384);
        int up = !sd->server;
        int len = sprintf(m, "gnutls msg%d %s", i, up ? "client-to-server" : "server-to-client");
        if (sd->server) {
            if (gnutls_record_recv(s, b, 16384) <= 0) exit(1);
            len = sprintf(m, "gnutls msg%d server-to-client", i);
            if (gnutls_record_send(s, m, len) != len) exit(1);
        } else {
            if (gnutls_record_send(s, m, len) != len) exit(1);
            if (gnutls_record_recv(s, b, 16384) <= 0) exit(1);
        }
    }
    return 0;
}
int main(int argc, char **argv) {
    nmsg = atoi(argv[3]);
    gnutls_global_init();
    gnutls_certificate_allocate_credentials(&scred);
    gnutls_certificate_allocate_credentials(&ccred);
    if (gnutls_certificate_set_x509_key_file(scred, argv[1], argv[2], GNUTLS_X509_FMT_PEM) < 0) return 2;
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct side a = { sv[0], 1 }, b = { sv[1], 0 };
    pthread_t t[2];
    pthread_create(&t[0], 0, run, &a);
    pthread_create(&t[1], 0, run, &b);
    pthread_join(t[0], 0);
    pthread_join(t[1], 0);
    printf("done\n");
    fflush(stdout);
    char line[8];
    while (fgets(line, sizeof line, stdin)) {}
    return 0;
}
"#;

#[test]
fn gnutls_record_send_and_recv_exact_bytes() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    if !require_cc() {
        return;
    }
    if !Path::new("/usr/include/gnutls/gnutls.h").exists() || !has_command("openssl") {
        support::skip("needs GnuTLS's headers and the openssl command (for a certificate)");
        return;
    }
    let prog = cc(
        dir.path(),
        "ftt-gnutls",
        GNUTLS_C,
        &["-lgnutls", "-lpthread"],
    );
    let (pid, f) = sniff_prog(&prog, dir.path(), &["4"], &["-x", "-o", "-n"]);
    let b: Vec<Block> = blocks(&f.stdout, true)
        .into_iter()
        .filter(|x| x.pid == pid)
        .collect();
    for func in ["WRITE/SEND", "READ/RECV"] {
        let mut got: Vec<Vec<u8>> = b
            .iter()
            .filter(|x| x.func == func)
            .map(|x| {
                assert_eq!(Some(x.len as usize), x.data.as_ref().map(Vec::len), "{x:?}");
                x.data.clone().unwrap()
            })
            .collect();
        let mut want: Vec<Vec<u8>> = (0..4)
            .flat_map(|i| {
                [
                    format!("gnutls msg{i} client-to-server").into_bytes(),
                    format!("gnutls msg{i} server-to-client").into_bytes(),
                ]
            })
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{func}:\n{}\n{}", f.stdout, f.stderr);
    }
    clean(&f);
}

#[test]
fn with_pid_a_copy_of_openssl_linked_into_the_program_is_found_and_traced() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    if tls_prog(dir.path()).is_none() {
        return;
    }
    if !Path::new("/usr/lib/x86_64-linux-gnu/libssl.a").exists() {
        support::skip("needs OpenSSL's static libraries (libssl.a) to link a bundled copy");
        return;
    }
    let prog = cc(
        dir.path(),
        "ftt-tls-static",
        TLS_C,
        &[
            "-Wl,-Bstatic",
            "-lssl",
            "-lcrypto",
            "-Wl,-Bdynamic",
            "-lpthread",
            "-ldl",
        ],
    );
    let (cert, key) = cert(dir.path());
    let mut p = Reap(
        Command::new(&prog)
            .arg(&cert)
            .arg(&key)
            .args(["1", "3", "plain", "text", "0", "wait"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = p.id().to_string();
    let mut t = ToolRun::start("sslsniff", &["-x", "-p", &pid, "-g", "-n"]);
    t.wait_ready();
    p.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut line = String::new();
    BufReader::new(p.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "done\n");
    std::thread::sleep(Duration::from_millis(1500));
    drop(p.stdin.take());
    assert!(p.wait().unwrap().success());
    // -p: the run ends when the process exits.
    let f = t.finish(Duration::from_secs(60));
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(
        f.stderr.contains("ftt-tls-static (openssl)"),
        "{}",
        f.stderr
    );
    check_messages(&f, p.id(), 1, 3, false);
    clean(&f);
}

#[test]
fn pythons_ssl_module_through_ssl_write_ex_and_ssl_read_ex() {
    require_tracing!(UprobeEvents, Instances);
    let py = "/usr/bin/python3";
    if !Path::new(py).exists() || !has_command("openssl") {
        support::skip("needs /usr/bin/python3 and the openssl command");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut t = ToolRun::start("sslsniff", &["-x", "-g", "-n"]);
    t.wait_ready();
    let mut server = Reap(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-naccept",
                "1",
            ])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut sout = BufReader::new(server.stdout.take().unwrap());
    let mut l = String::new();
    while !l.contains("ACCEPT") {
        l.clear();
        assert!(sout.read_line(&mut l).unwrap() > 0, "s_server ended");
    }
    // The client sends binary bytes, then waits for one line and keeps
    // its buffer (a bytearray) until the end.
    let script = format!(
        "import socket, ssl, sys, time\n\
         c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE\n\
         s = c.wrap_socket(socket.create_connection(('127.0.0.1', {port})))\n\
         s.sendall(b'python \\x00\\x01\\xff up\\n')\n\
         b = bytearray(4096); n = s.recv_into(b)\n\
         print(n, flush=True); time.sleep(1.5)\n"
    );
    let mut client = Reap(
        Command::new(py)
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // What the server printed holds the client's \xff: bytes, not text.
    let mut raw = Vec::new();
    while !raw.windows(6).any(|w| w == b"python") {
        raw.clear();
        assert!(
            sout.read_until(b'\n', &mut raw).unwrap() > 0,
            "s_server ended"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    server
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"down to python\n")
        .unwrap();
    let mut got = String::new();
    BufReader::new(client.stdout.as_mut().unwrap())
        .read_line(&mut got)
        .unwrap();
    assert_eq!(got, "15\n");
    let cpid = client.id();
    assert!(client.wait().unwrap().success());
    let _ = server.kill();
    let _ = server.wait();
    let f = t.stop();
    assert_eq!(f.code(), 0, "{}", f.stderr);
    let mine: Vec<Block> = blocks(&f.stdout, true)
        .into_iter()
        .filter(|x| x.pid == cpid)
        .collect();
    let one = |func: &str, data: &[u8]| {
        mine.iter()
            .filter(|x| x.func == func && x.len == data.len() as u64)
            .filter(|x| x.data.as_deref() == Some(data))
            .count()
    };
    assert_eq!(
        one("WRITE/SEND", b"python \x00\x01\xff up\n"),
        1,
        "{}",
        f.stdout
    );
    assert_eq!(one("READ/RECV", b"down to python\n"), 1, "{}", f.stdout);
    clean(&f);
}

#[test]
fn uid_and_comm_filters() {
    require_tracing!(UprobeEvents, Instances);
    let dir = tempfile::tempdir().unwrap();
    let Some(prog) = tls_prog(dir.path()) else {
        return;
    };
    // SAFETY: no preconditions.
    let uid = unsafe { libc::getuid() }.to_string();
    let args = ["1", "2", "plain", "text", "0"];
    let (pid, f) = sniff_prog(&prog, dir.path(), &args, &["-x", "-u", &uid]);
    check_messages(&f, pid, 1, 2, false);
    let (pid, f) = sniff_prog(&prog, dir.path(), &args, &["-x", "-u", "4294967294"]);
    assert!(
        blocks(&f.stdout, true).iter().all(|x| x.pid != pid),
        "{}",
        f.stdout
    );
    let (pid, f) = sniff_prog(&prog, dir.path(), &args, &["-x", "-c", "ftt-tl"]);
    assert!(
        blocks(&f.stdout, true).iter().all(|x| x.pid != pid),
        "{}",
        f.stdout
    );
    clean(&f);
}
