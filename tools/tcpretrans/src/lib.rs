//! tcpretrans - trace TCP retransmits, one line each, IPv4 and IPv6, with
//! the connection's addresses and TCP state.
//!
//! USAGE: tcpretrans [-lsct46j] [--port PORT] [-d secs]
//!
//! The event is the kernel's own `tcp:tcp_retransmit_skb` tracepoint
//! (Linux 4.15), recorded in a private instance and decoded from the
//! binary buffer by the fields this kernel's format has. perf-tools'
//! tcpretrans put a kprobe on tcp_retransmit_skb and read IPv4 sockets
//! from /proc/net/tcp in Perl; bcc's adds IPv6, tail loss probes and
//! counts.
//!
//! REQUIREMENTS: the tcp:tcp_retransmit_skb tracepoint (4.15), instances,
//! root; kprobe events for -l.
//! OVERHEAD: one event per retransmitted packet: negligible unless the
//! network is losing much.

mod retrans;

use clap::Parser;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, JsonOpt};
use ftrace_common::app::output::TimeColumn;
use ftrace_common::app::stream::{self, StreamOpts};
use ftrace_common::app::{cli, signals, status};
use ftrace_common::kernel::caps::{Feature, Support};
use ftrace_common::kernel::needs::TCPRETRANS;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::{ProbeDef, ProbeGroup, ProbeKind};
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::{Error, ErrorKind, Result};
use retrans::{Fields, Retransmits, Show};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  tcpretrans                # trace TCP retransmits, until Ctrl-C
  tcpretrans -l             # also mark those sent by tail loss probes (L)
  tcpretrans -s             # the kernel stack of each retransmit
  tcpretrans -c -d 10       # count retransmits per connection for 10 seconds
  tcpretrans -6             # IPv6 connections only
  tcpretrans --port 443     # connections with local or remote port 443
  tcpretrans -j             # JSON lines";

const LONG_ABOUT: &str = "\
Trace TCP retransmits, IPv4 and IPv6, one line each, from the kernel's \
tcp:tcp_retransmit_skb tracepoint in a private instance. Lost events are always reported.

Fields: TIME: when the retransmit was sent, local time (TIMEs with -t: seconds of \
CLOCK_MONOTONIC). PID: the task on the CPU when it was sent: often 0 or another task, \
since most retransmits are sent from a timer, not by the connection's owner. IP: 4 or 6. \
LADDR:LPORT: the local end (IPv6 in brackets). T>: R> a retransmit, L> one sent by a \
tail loss probe (-l). RADDR:RPORT: the remote end. STATE: the connection's TCP state \
(ESTABLISHED, SYN_SENT, FIN_WAIT1, ...; - where the kernel does not record it, before \
4.16). JSON lines also give the transmit's error (err, on kernels that record failed \
retransmits: 0 when it was sent).

With -l, a retransmit sent while tcp_send_loss_probe runs (in the same task on the same \
CPU) is typed L; a tail loss probe that sends new data instead retransmits nothing and \
is not shown.

With -c, retransmits are counted per connection (in both directions of a connection \
apart) and printed at the end, the most retransmitted last. A retransmitted packet \
is one event even where the kernel counts several segments in it (TSO/GSO: \
/proc/net/snmp's RetransSegs counts segments).

Requirements: root, tracefs (mounted if needed) with instances, the tcp:tcp_retransmit_skb \
tracepoint (Linux 4.15); -l needs kprobe events (CONFIG_KPROBE_EVENTS: tail loss probes \
have no tracepoint); -s needs kernel stack traces on events.

Overhead: one event per retransmitted packet: negligible unless the network is losing \
much.";

/// Trace TCP retransmits, IPv4 and IPv6, with addresses and TCP state.
#[derive(Debug, Parser)]
#[command(
    name = "tcpretrans",
    version,
    about = "Trace TCP retransmits, IPv4 and IPv6, with addresses and TCP state",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    /// Also trace tail loss probes: retransmits they send are typed L
    /// (a kprobe on tcp_send_loss_probe).
    #[arg(short = 'l', long = "lossprobes")]
    lossprobes: bool,
    /// Print the kernel stack after each retransmit.
    #[arg(short = 's', long = "stacks", conflicts_with = "count")]
    stacks: bool,
    /// Count retransmits per connection; print the counts at the end.
    #[arg(short = 'c', long = "count")]
    count: bool,
    /// IPv4 connections only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    ipv4: bool,
    /// IPv6 connections only.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
    /// Only connections whose local or remote port is PORT.
    #[arg(long = "port", value_name = "PORT")]
    port: Option<u16>,
    /// TIMEs: seconds of CLOCK_MONOTONIC instead of the clock.
    #[arg(short = 't', long = "timestamps")]
    timestamps: bool,
    #[command(flatten)]
    duration: DurationOpt,
    #[command(flatten)]
    buffer: BufferOpt,
    #[command(flatten)]
    json: JsonOpt,
}

ftrace_common::cli_tests!(Args);

pub fn main() -> ExitCode {
    cli::main("tcpretrans", tcpretrans)
}

ftrace_common::tool_command!(Args);

fn tcpretrans(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    checks(&tfs, &args)?;
    sweep::sweep_dead(&tfs);
    let mut probes = ProbeGroup::new(&tfs);
    let (inst, sink) = setup(&tfs, &args, &mut probes)?;
    trace(&inst, sink, &args)
}

/// Checks: the kernel has the tracepoint, and what -l and -s need.
fn checks(tfs: &Tracefs, args: &Args) -> Result<()> {
    TCPRETRANS.require(tfs)?;
    if !tfs.exists("events/tcp/tcp_retransmit_skb") {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "this kernel has no tcp:tcp_retransmit_skb tracepoint (events/tcp/tcp_retransmit_skb \
             is missing; it came in Linux 4.15)",
        ));
    }
    if args.lossprobes {
        if let Support::No(why) = TCPRETRANS.has(tfs, Feature::KprobeEvents) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "-l needs a kprobe on tcp_send_loss_probe (tail loss probes have no \
                     tracepoint): {why}"
                ),
            ));
        }
    }
    if args.stacks {
        TCPRETRANS.require_optional(tfs, Feature::KernelStacks)?;
    }
    Ok(())
}

/// Setup: the instance with the tracepoint (filtered in the kernel by
/// port and family where it can), the stacks, the loss probe pair.
fn setup(tfs: &Tracefs, args: &Args, probes: &mut ProbeGroup) -> Result<(Instance, Retransmits)> {
    let mut inst = Instance::create_with(
        tfs,
        "tcpretrans",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            ..InstanceOptions::default()
        },
    )?;
    let fmt = inst.event_format("tcp", "tcp_retransmit_skb")?;
    let fields = Fields::new(&fmt)?;
    let only_ip = match (args.ipv4, args.ipv6) {
        (true, _) => Some(4),
        (_, true) => Some(6),
        _ => None,
    };
    let mut filter = Vec::new();
    if let Some(p) = args.port {
        filter.push(format!("(sport == {p} || dport == {p})"));
    }
    let mut user_ip = only_ip;
    if let (Some(ip), true) = (only_ip, fields.has_family()) {
        let fam = if ip == 4 {
            retrans::AF_INET
        } else {
            retrans::AF_INET6
        };
        filter.push(format!("family == {fam}"));
        user_ip = None;
    }
    if !filter.is_empty() {
        inst.set_filter("tcp", "tcp_retransmit_skb", &filter.join(" && "))?;
    }
    let loss = if args.lossprobes {
        Some(loss_probes(tfs, &mut inst, probes)?)
    } else {
        None
    };
    let stacks = if args.stacks {
        inst.set_option("stacktrace", true)?;
        Some(inst.event_format("ftrace", "kernel_stack")?)
    } else {
        None
    };
    inst.enable_event("tcp", "tcp_retransmit_skb")?;
    signals::check()?;
    let show = Show {
        only_ip: user_ip,
        json: args.json.json,
        count: args.count,
        time: TimeColumn {
            seconds: args.timestamps,
        },
        stacks,
        probes: loss,
    };
    Ok((inst, Retransmits::new(fields, show)))
}

/// `-l`: a kprobe and a kretprobe on tcp_send_loss_probe, enabled in the
/// instance; their event ids.
fn loss_probes(tfs: &Tracefs, inst: &mut Instance, probes: &mut ProbeGroup) -> Result<(u16, u16)> {
    let mut ids = [0u16; 2];
    for (i, (kind, name)) in [
        (ProbeKind::Kprobe, "tlp"),
        (ProbeKind::Kretprobe, "tlp_ret"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = probes
            .add(&ProbeDef {
                kind,
                name: name.into(),
                location: "tcp_send_loss_probe".into(),
                args: vec![],
            })
            .map_err(|e| e.context("-l: the probe on tcp_send_loss_probe"))?
            .clone();
        ids[i] = inst.event_format(&p.group, &p.name)?.id;
        inst.enable_event(&p.group, &p.name)?;
        signals::check()?;
    }
    let _ = tfs;
    Ok((ids[0], ids[1]))
}

/// Stream, then the counts (`-c`) and what was lost.
fn trace(inst: &Instance, mut sink: Retransmits, args: &Args) -> Result<()> {
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    let mut what = String::from("TCP retransmits");
    if args.lossprobes {
        what.push_str(" and tail loss probes");
    }
    let mut line = status::TracingLine::new(what).duration(args.duration.duration);
    if args.count {
        line = line.how("counting per connection");
    }
    line.print();
    sink.header();
    let summary = stream::run(
        Some(&mut reader),
        &mut sink,
        StreamOpts {
            duration: args.duration.duration,
            ordered: true,
            ..StreamOpts::default()
        },
    )?;
    drop(reader);
    sink.release_all();
    if args.count {
        sink.print_counts(args.lossprobes);
    }
    let note = if args.count {
        " (the counts above miss them)"
    } else {
        ""
    };
    status::finish("tcpretrans", &mut sink.out, &summary, note)
}
