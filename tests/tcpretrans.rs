//! Black-box tests of `tcpretrans` against the real kernel: each test makes
//! a network namespace of its own (removed at the end, a failed test too),
//! where an nftables rule drops every 4th data packet (PSH set) sent to
//! one port on loopback, so that TCP retransmits them; a client and a
//! server of `ftt-workload tcp-retrans` talk over 127.0.0.1 or ::1 there.
//! Only that namespace's loopback is touched, never the machine's network.
//!
//! The oracle is the kernel's own count in the namespace: `RetransSegs` of
//! its /proc/net/snmp, read before and after. RetransSegs counts segments,
//! the tracepoint fires once per retransmitted packet (skb); the workload
//! writes 64-byte messages with Nagle off, far below loopback's MSS, so a
//! packet is one segment (even when the kernel collapses several small
//! ones into one on retransmit, that is one packet and one segment). Only
//! data packets are dropped, so no SYN-ACK is retransmitted (the kernel
//! counts those in RetransSegs too, without this tracepoint).
mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use support::{Finished, ToolRun};

/// Messages each client sends.
const N: &str = "60";

/// A network namespace of this test process; deleted on drop.
struct Netns {
    name: String,
    port: u16,
}

/// Runs `ip netns exec NS ARGS`; its stdout, or why it failed.
fn in_ns(ns: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Netns {
    /// A namespace with loopback up and the dropping rule on a port of
    /// its own, or why it cannot be made here.
    fn new() -> Result<Netns, String> {
        static SEQ: AtomicU16 = AtomicU16::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("ftt-tcpretrans-{}-{seq}", std::process::id());
        let port = 20000 + (std::process::id() % 2000) as u16 * 10 + seq % 10;
        for cmd in ["ip", "nft"] {
            if !support::has_command(cmd) {
                return Err(format!("needs {cmd} (iproute2, nftables)"));
            }
        }
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("ip: {e}"))?;
        if !st.status.success() {
            return Err(format!(
                "cannot make a network namespace: {}",
                String::from_utf8_lossy(&st.stderr).trim()
            ));
        }
        let ns = Netns { name, port };
        in_ns(&ns.name, &["ip", "link", "set", "lo", "up"])?;
        let p = port.to_string();
        let rule = [
            "nft",
            "add table inet ftt ; add chain inet ftt in { type filter hook input priority 0 ; } ; \
             add rule inet ftt in tcp dport PORT tcp flags & psh == psh numgen inc mod 4 == 0 drop",
        ];
        let rule = rule[1].replace("PORT", &p);
        in_ns(&ns.name, &["nft", &rule]).map_err(|e| {
            let why = e.rsplit(": ").next().unwrap_or_default().to_string();
            format!("nftables does not work here (a kernel without nf_tables?): {why}")
        })?;
        Ok(ns)
    }

    /// The namespace's RetransSegs (/proc/net/snmp).
    fn retrans_segs(&self) -> u64 {
        let snmp = in_ns(&self.name, &["cat", "/proc/net/snmp"]).expect("snmp");
        let tcp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Tcp:")).collect();
        let names: Vec<&str> = tcp[0].split_whitespace().collect();
        let vals: Vec<&str> = tcp[1].split_whitespace().collect();
        let i = names.iter().position(|n| *n == "RetransSegs").unwrap();
        vals[i].parse().unwrap()
    }

    /// Runs the workload over `addr` (127.0.0.1 or ::1); the
    /// retransmits the kernel counted meanwhile.
    fn talk(&self, addr: &str) -> u64 {
        let before = self.retrans_segs();
        let wl = support::workload_bin();
        let out = in_ns(
            &self.name,
            &[
                wl.to_str().unwrap(),
                "tcp-retrans",
                addr,
                &self.port.to_string(),
                N,
            ],
        )
        .expect("workload");
        assert_eq!(out.trim(), format!("done {N}"));
        self.retrans_segs() - before
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A namespace, or a skip saying why not.
macro_rules! netns {
    () => {{
        require_tracing!(Instances);
        let t = support::tracefs().unwrap();
        require!(
            t.exists("events/tcp/tcp_retransmit_skb"),
            "this kernel has no tcp:tcp_retransmit_skb tracepoint"
        );
        match Netns::new() {
            Ok(ns) => ns,
            Err(why) => {
                support::skip(&why);
                return;
            }
        }
    }};
}

/// Runs tcpretrans ARGS --port P around the workload over each address;
/// the tool's output and the kernel's counts per address.
fn traced(ns: &Netns, args: &[&str], addrs: &[&str]) -> (Finished, Vec<u64>) {
    let p = ns.port.to_string();
    let mut a = args.to_vec();
    a.extend(["--port", &p]);
    let mut t = ToolRun::start("tcpretrans", &a);
    t.wait_ready();
    let counts = addrs.iter().map(|addr| ns.talk(addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let f = t.stop();
    eprintln!("tcpretrans {a:?}: RetransSegs in the namespace per address: {counts:?}");
    assert_eq!(f.code(), 0, "{}", f.stderr);
    assert!(!f.stderr.contains("lost"), "{}", f.stderr);
    support::assert_nothing_left(f.pid);
    (f, counts)
}

/// The rows: `[TIME, PID, IP, LADDR:LPORT, T>, RADDR:RPORT, STATE]`.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.starts_with("TIME") && !l.starts_with(" =>"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn every_retransmit_the_kernel_counted_ipv4_and_ipv6() {
    let ns = netns!();
    let (f, counts) = traced(&ns, &[], &["127.0.0.1", "::1"]);
    assert!(counts[0] > 0 && counts[1] > 0, "no retransmits: {counts:?}");
    let rows = rows(&f.stdout);
    let port = format!(":{}", ns.port);
    let v4: Vec<_> = rows.iter().filter(|r| r[2] == "4").collect();
    let v6: Vec<_> = rows.iter().filter(|r| r[2] == "6").collect();
    assert_eq!(v4.len() as u64, counts[0], "{}", f.stdout);
    assert_eq!(v6.len() as u64, counts[1], "{}", f.stdout);
    assert_eq!(rows.len(), v4.len() + v6.len(), "{}", f.stdout);
    for r in &v4 {
        assert_eq!(r.len(), 7, "{r:?}");
        assert!(r[3].starts_with("127.0.0.1:"), "{r:?}");
        assert_eq!(r[5], format!("127.0.0.1{port}"), "{r:?}");
    }
    for r in &v6 {
        assert!(r[3].starts_with("[::1]:"), "{r:?}");
        assert_eq!(r[5], format!("[::1]{port}"), "{r:?}");
    }
    // The client retransmits while the connection is up (and, for the
    // last messages, after it sent its FIN).
    let states = ["ESTABLISHED", "FIN_WAIT1", "CLOSING", "LAST_ACK"];
    assert!(rows.iter().all(|r| r[4] == "R>"), "{}", f.stdout);
    assert!(
        rows.iter().all(|r| states.contains(&r[6].as_str())),
        "{}",
        f.stdout
    );
    assert!(rows.iter().any(|r| r[6] == "ESTABLISHED"), "{}", f.stdout);
}

#[test]
fn family_filters_counts_and_json() {
    let ns = netns!();
    let (f, counts) = traced(&ns, &["-6"], &["127.0.0.1", "::1"]);
    let rows = rows(&f.stdout);
    assert_eq!(rows.len() as u64, counts[1], "{}", f.stdout);
    assert!(rows.iter().all(|r| r[2] == "6"), "{}", f.stdout);
    let (f, counts) = traced(&ns, &["-4", "-c", "-j"], &["127.0.0.1", "::1"]);
    let lines: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", f.stdout);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["retransmits"].as_u64(), Some(counts[0]), "{v}");
    let conns = v["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{v}");
    assert_eq!(conns[0]["rport"].as_u64(), Some(ns.port as u64), "{v}");
    assert_eq!(conns[0]["ip"].as_u64(), Some(4), "{v}");
    let (f, counts) = traced(&ns, &["-j"], &["::1"]);
    let n = f
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["raddr"] == "::1" && v["type"] == "R" && v["err"].as_i64().unwrap_or(0) == 0)
        .count();
    assert_eq!(n as u64, counts[0], "{}", f.stdout);
    let (f, counts) = traced(&ns, &["-c"], &["127.0.0.1", "::1"]);
    let total: u64 = f
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, counts[0] + counts[1], "{}", f.stdout);
    assert!(f.stdout.starts_with("LADDR:LPORT"), "{}", f.stdout);
}

#[test]
fn stacks_start_at_the_retransmit() {
    let ns = netns!();
    require_tracing!(KernelStacks);
    let (f, counts) = traced(&ns, &["-s"], &["127.0.0.1"]);
    let rows = rows(&f.stdout);
    assert_eq!(rows.len() as u64, counts[0], "{}", f.stdout);
    // Each row is followed by its stack, whose first frame is the
    // retransmit (the tracepoint's own frames are left out).
    let lines: Vec<&str> = f.stdout.lines().skip(1).collect();
    let mut firsts = 0;
    for w in lines.windows(2) {
        if !w[0].starts_with(" =>") && w[1].starts_with(" =>") {
            assert!(w[1].contains("tcp_retransmit_skb"), "{}", f.stdout);
            firsts += 1;
        }
    }
    assert_eq!(firsts, rows.len(), "{}", f.stdout);
    assert!(!f.stdout.contains("trace_event_raw_event"), "{}", f.stdout);
}

#[test]
fn loss_probes_need_kprobes() {
    require_tracing!(Instances);
    if support::has(ftrace_common::kernel::caps::Feature::KprobeEvents) {
        // The kprobe pair is made, enabled and removed (also where no
        // namespace can be made).
        let f = support::run("tcpretrans", &["-l", "-d", "1"]);
        assert_eq!(f.code(), 0, "{}", f.stderr);
        assert!(f.stderr.contains("tail loss probes"), "{}", f.stderr);
        support::assert_nothing_left(f.pid);
        let ns = netns!();
        let (f, counts) = traced(&ns, &["-l"], &["127.0.0.1"]);
        let rows = rows(&f.stdout);
        assert_eq!(rows.len() as u64, counts[0], "{}", f.stdout);
        assert!(
            rows.iter().all(|r| r[4] == "R>" || r[4] == "L>"),
            "{}",
            f.stdout
        );
    } else {
        let f = support::run("tcpretrans", &["-l", "-d", "1"]);
        assert_eq!(f.code(), 2, "{}", f.stderr);
        assert!(f.stderr.contains("tcp_send_loss_probe"), "{}", f.stderr);
        assert_eq!(f.stderr.trim().lines().count(), 1, "{}", f.stderr);
        support::assert_nothing_left(f.pid);
    }
}

#[test]
fn conflicting_options_are_refused() {
    for a in [&["-4", "-6"][..], &["-s", "-c"], &["--port", "70000"]] {
        let f = support::run("tcpretrans", a);
        assert_eq!(f.code(), 2, "{a:?}: {}", f.stderr);
    }
}
