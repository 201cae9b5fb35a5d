//! sslsniff - show the plaintext that programs read and write through
//! OpenSSL, GnuTLS and NSS, one block per call, as bcc's sslsniff does.
//!
//! USAGE: sslsniff [-lx] [-j] [-p PID|-L TID] [-u UID] [-c COMM] [-ogn]
//!                 [--hexdump] [--max-buffer-size N] [--handshake]
//!                 [--extra-lib TYPE:PATH]... [-d secs]
//!
//! Each traced function gets an entry probe that records the buffer
//! pointer and a return probe (uprobes), paired per thread
//! (`probes::pair`); at the return the tool reads the bytes the call moved
//! from the process with process_vm_readv(2). That read happens after the
//! call returned, when the event is read: the program may have reused the
//! buffer by then, and a process that has exited is reported as such.
//!
//! REQUIREMENTS: uprobe events (CONFIG_UPROBE_EVENTS), instances, root.
//! OVERHEAD: two breakpoint traps per call of each traced function (a few
//! microseconds each), in every process using the library, plus the read.

mod sniff;

use clap::Parser;
use ftrace_common::app::cli;
use ftrace_common::app::opts::{BufferOpt, DurationOpt, JsonOpt, TaskOpts};
use ftrace_common::app::output::Output;
use ftrace_common::app::printer::follow_execs;
use ftrace_common::app::stream::{self, StreamOpts};
use ftrace_common::app::{signals, status};
use ftrace_common::kernel::needs;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::kernel::tracefs::Tracefs;
use ftrace_common::lifecycle::dynevent::ProbeGroup;
use ftrace_common::lifecycle::instance::{Instance, InstanceOptions};
use ftrace_common::lifecycle::sweep;
use ftrace_common::probes::pair::PairOut;
use ftrace_common::probes::tls::{self, Lib, Show, TlsProbe};
use ftrace_common::{Error, Result};
use sniff::{Filters, Slot, Sniff};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  sslsniff                  # every read and write of OpenSSL, GnuTLS and NSS
  sslsniff -p 181           # process 181 only (and the libraries it maps)
  sslsniff -c curl          # commands named curl only
  sslsniff -x -l            # with UID, TID and each call's latency
  sslsniff --hexdump        # the data in hex
  sslsniff --max-buffer-size 256   # at most 256 bytes of each call
  sslsniff -l --handshake   # also OpenSSL handshakes, with their latency
  sslsniff -o -n            # GnuTLS only
  sslsniff --extra-lib openssl:/opt/app/lib/libssl.so.3
  sslsniff -j -d 10         # JSON lines for 10 seconds";

const LONG_ABOUT: &str = "\
Show the plaintext of TLS reads and writes: every call of OpenSSL's SSL_read, SSL_write, \
SSL_read_ex and SSL_write_ex, GnuTLS's gnutls_record_recv and gnutls_record_send, and \
NSS's PR_Read, PR_Write, PR_Recv and PR_Send, in every process that uses the libraries \
found on this system (libssl, libgnutls, libnspr4; with -p also the copies that process \
maps, bundled or in a container, and any file given with --extra-lib). A library that \
is not installed is skipped with a note.

Each call is shown when it returns, as bcc's sslsniff shows it: FUNC (READ/RECV, \
WRITE/SEND, HANDSHAKE), TIME(s) since the first call shown, COMM, PID and LEN, the \
bytes the call moved (the return value, or *readbytes and *written of the _ex forms, which the \
kernel copies at the return); \
with -x the thread's real UID and TID, with -l the call's latency LAT(ms). Then the \
data between ----- DATA ----- and ----- END DATA -----: printable text as it is, a \
carriage return as \\r, a backslash as \\\\, every other byte as \\xNN (or the whole in \
hex with --hexdump, 16 bytes a line), then a newline: data that ends in a newline \
shows an empty line before the end marker. A call that moved more than --max-buffer-size bytes ends with \
----- END DATA (TRUNCATED, N bytes lost) -----. Calls that moved nothing (errors, \
WANT_READ) are not shown.

The bytes are read from the process with process_vm_readv(2) after the call returned, \
when its return event is read (within milliseconds): a program that reuses the buffer \
at once may show newer bytes, and a process that has exited by then is shown as \
UNREADABLE, never as empty data. Lost events are always reported.

Requirements: root, tracefs (mounted if needed) with instances, uprobe events \
(CONFIG_UPROBE_EVENTS).

Overhead: two breakpoint traps per call of each traced function (a few microseconds \
each) in every process that uses the library, and one read of the data per call.";

/// Show the plaintext of TLS reads and writes (OpenSSL, GnuTLS, NSS).
#[derive(Debug, Parser)]
#[command(
    name = "sslsniff",
    version,
    about = "Show the plaintext of TLS reads and writes (OpenSSL, GnuTLS, NSS)",
    long_about = LONG_ABOUT,
    after_help = EXAMPLES
)]
struct Args {
    #[command(flatten)]
    task: TaskOpts,
    #[command(flatten)]
    duration: DurationOpt,
    #[command(flatten)]
    buffer: BufferOpt,
    #[command(flatten)]
    json: JsonOpt,
    /// Only calls of threads whose real UID is UID.
    #[arg(short = 'u', long = "uid", value_name = "UID")]
    uid: Option<u32>,
    /// UID and TID columns.
    #[arg(short = 'x', long = "extra")]
    extra: bool,
    /// Only calls of threads named exactly COMM.
    #[arg(short = 'c', long = "comm", value_name = "COMM")]
    comm: Option<String>,
    /// Skip OpenSSL.
    #[arg(short = 'o', long = "no-openssl")]
    no_openssl: bool,
    /// Skip GnuTLS.
    #[arg(short = 'g', long = "no-gnutls")]
    no_gnutls: bool,
    /// Skip NSS.
    #[arg(short = 'n', long = "no-nss")]
    no_nss: bool,
    /// The data in hex, 16 bytes a line.
    #[arg(long = "hexdump")]
    hexdump: bool,
    /// At most this many bytes of each call are read and shown (the rest is
    /// counted as lost).
    #[arg(long = "max-buffer-size", value_name = "SIZE", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    max_buffer_size: u32,
    /// A LAT(ms) column: each call's time from entry to return.
    #[arg(short = 'l', long = "latency")]
    latency: bool,
    /// Also OpenSSL's completed handshakes (SSL_do_handshake), with their
    /// latency (implies -l).
    #[arg(long = "handshake")]
    handshake: bool,
    /// Also trace this library file, of TYPE openssl, gnutls or nss (may be
    /// repeated).
    #[arg(long = "extra-lib", value_name = "TYPE:PATH", value_parser = tls::parse_extra)]
    extra_lib: Vec<(Lib, String)>,
}

ftrace_common::cli_tests!(Args);

pub fn main() -> ExitCode {
    cli::main("sslsniff", sslsniff)
}

ftrace_common::tool_command!(Args);

fn sslsniff(args: Args) -> Result<()> {
    let tfs = Tracefs::open()?;
    let probes = checks(&tfs, &args)?;
    let (group, events) = create(&tfs, &probes)?;
    signals::check()?;
    let (inst, sniff) = setup(&tfs, &args, &group, &events)?;
    trace(&inst, sniff, &args, &probes)?;
    drop(inst);
    drop(group);
    Ok(())
}

/// Each event of the run: its name, and the kind of function whose
/// returns it records (`None`: the entries).
type Events = Vec<(String, Option<TlsProbe>)>;

/// Creates the probes, the entries as locations of one event and the
/// returns of each kind as locations of another (see `tls::Hook::event`):
/// the group, and each event's name with its kind (`None`: the entries).
fn create(tfs: &Tracefs, probes: &[TlsProbe]) -> Result<(ProbeGroup, Events)> {
    sweep::sweep_dead(tfs);
    let mut group = ProbeGroup::new(tfs);
    let mut events: Events = Vec::new();
    for p in probes {
        for (def, kind) in [(&p.entry, None), (&p.ret, Some(p.clone()))] {
            if events.iter().any(|(n, _)| *n == def.name) {
                group.append(&def.name, def)?;
            } else {
                group.add(def)?;
                events.push((def.name.clone(), kind));
            }
            signals::check()?;
        }
    }
    Ok((group, events))
}

/// Checks: uprobes, the task, and the libraries with their functions.
fn checks(tfs: &Tracefs, args: &Args) -> Result<Vec<TlsProbe>> {
    needs::SSLSNIFF.require(tfs)?;
    let task = args.task.task();
    if let Some(t) = task {
        t.require_exists()?;
    }
    let libs: Vec<Lib> = [
        (Lib::OpenSsl, args.no_openssl),
        (Lib::GnuTls, args.no_gnutls),
        (Lib::Nss, args.no_nss),
    ]
    .into_iter()
    .filter(|(_, skip)| !skip)
    .map(|(l, _)| l)
    .collect();
    let found = tls::find(
        &libs,
        &args.extra_lib,
        task.map(|t| t.process()),
        args.handshake,
    );
    if found.found.is_empty() {
        return Err(Error::usage(format!(
            "no TLS library to trace: looked for {} ({})",
            found.searched.join(", "),
            found.notes.join("; ")
        )));
    }
    for n in &found.notes {
        eprintln!("sslsniff: note: {n}");
    }
    tls::plan(&found.found)
}

/// Setup: the instance with both probes of each function (ours kept out by
/// a filter), the task, exec renames; the sink.
fn setup(
    tfs: &Tracefs,
    args: &Args,
    group: &ProbeGroup,
    events: &[(String, Option<TlsProbe>)],
) -> Result<(Instance, Sniff)> {
    let mut inst = Instance::create_with(
        tfs,
        "sslsniff",
        &InstanceOptions {
            buffer_kb: args.buffer.buffer_kb,
            kernel_buffer: true,
            trace_self: true,
            ..InstanceOptions::default()
        },
    )?;
    let mut filter = format!("common_pid != {}", std::process::id());
    if let Some(tid) = args.task.tid {
        filter.push_str(&format!(" && common_pid == {tid}"));
    }
    let mut sniff = Sniff::new(
        CommCache::new(Some(tfs.path("saved_cmdlines"))),
        Filters {
            uid: args.uid,
            comm: args.comm.clone(),
        },
        Show {
            extra: args.extra,
            latency: args.latency || args.handshake,
            hexdump: args.hexdump,
        },
        args.max_buffer_size as usize,
        args.json.json,
        Output::new(),
    );
    let efmt = inst.event_format(group.group(), tls::ENTRY_EVENT)?;
    for (name, kind) in events {
        inst.set_filter(group.group(), name, &filter)?;
        let Some(p) = kind else { continue };
        let rfmt = inst.event_format(group.group(), name)?;
        sniff.add(
            Slot {
                hook: p.hook,
                ret: rfmt.require(tls::RET_FIELD)?.clone(),
                frame: match (rfmt.field(tls::SP_FIELD), rfmt.field(tls::FRAME_FIELD)) {
                    (Some(sp), Some(fr)) => Some((sp.clone(), fr.clone())),
                    _ => None,
                },
            },
            (efmt.id, rfmt.id),
            PairOut::new(&p.plan, &efmt, &rfmt)?,
        );
    }
    if let Some(pid) = args.task.pid {
        inst.follow(ftrace_common::kernel::proc::Task::Process(pid), false)?;
    }
    signals::check()?;
    for (name, _) in events {
        inst.enable_event(group.group(), name)?;
    }
    sniff.execs = follow_execs(&mut inst);
    // The process of each thread made while tracing, for reading its
    // memory once the thread has gone.
    if let Ok(f) = inst.event_format("task", "task_newtask") {
        if let (Some(pid), Some(flags)) = (f.field("pid"), f.field("clone_flags")) {
            if inst.enable_event("task", "task_newtask").is_ok() {
                sniff.tasks.newtask = Some((f.id, pid.clone(), flags.clone()));
            }
        }
    }
    Ok((inst, sniff))
}

/// Stream, then what was lost or unpaired.
fn trace(inst: &Instance, mut sniff: Sniff, args: &Args, probes: &[TlsProbe]) -> Result<()> {
    let mut reader = inst.reader()?;
    signals::check()?;
    inst.start()?;
    let mut files: Vec<String> = Vec::new();
    for p in probes {
        let f = format!("{} ({})", p.file.display(), p.lib.name());
        if !files.contains(&f) {
            files.push(f);
        }
    }
    status::TracingLine::new(format!(
        "{} functions of {}",
        probes.len(),
        files.join(", ")
    ))
    .task(args.task.task())
    .duration(args.duration.duration)
    .print();
    if !args.json.json {
        sniff.header();
    }
    let summary = stream::run(
        Some(&mut reader),
        &mut sniff,
        StreamOpts {
            duration: args.duration.duration,
            ordered: true,
            task: args.task.task(),
            ..StreamOpts::default()
        },
    )?;
    if let Some(note) = sniff.pair_note() {
        eprintln!("sslsniff: {note}");
    }
    status::finish(
        "sslsniff",
        &mut sniff.out,
        &summary,
        " (their calls are not shown)",
    )
}
