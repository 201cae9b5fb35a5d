//! `funcgraph --read FILE`: the graphs of a trace.dat file's function_graph
//! records (ours from -w, or trace-cmd record -p function_graph's), built
//! as a run builds them, with the file's symbols and task names, never
//! this machine's.

use crate::cli::Args;
use ftrace_common::app::stream::replay;
use ftrace_common::buffer::tracedat::read::TraceDat;
use ftrace_common::graph::decode::Decoder;
use ftrace_common::graph::funcs::Funcs;
use ftrace_common::graph::render::Columns;
use ftrace_common::graph::sink::NameTable;
use ftrace_common::kernel::functions::FunctionList;
use ftrace_common::kernel::proc::CommCache;
use ftrace_common::sym::kallsyms::KernelSymbols;
use ftrace_common::{Error, Result};

/// Clocks that one can compare across CPUs (not `local`, trace-cmd's
/// default, nor the counters).
const GLOBAL_CLOCKS: [&str; 5] = ["mono", "mono_raw", "boot", "global", "tai"];

/// `--read FILE [FUNC...]`: the file's graphs, printed as a run prints
/// them; with no function given every call at a task's outermost level
/// starts one.
pub fn read(args: &Args, cols: Columns, file: &TraceDat) -> Result<()> {
    if args.task.task().is_some()
        || args.duration.duration.is_some()
        || args.buffer.buffer_kb.is_some()
        || args.force
    {
        return Err(Error::usage(
            "-p, -L, -d, -b and -F set up tracing: not with --read",
        ));
    }
    let name = file.path().display();
    let (Some(entry), Some(exit)) = (
        file.format("ftrace", "funcgraph_entry"),
        file.format("ftrace", "funcgraph_exit"),
    ) else {
        return Err(Error::usage(format!(
            "{name} has no function_graph formats (record it with funcgraph -w, or trace-cmd record -p function_graph)"
        )));
    };
    if args.retval && exit.field("retval").is_none() {
        return Err(Error::usage(format!(
            "the kernel that recorded {name} kept no return values (its funcgraph_exit has no retval field)"
        )));
    }
    let switch = if args.on_cpu {
        Some(file.format("sched", "sched_switch").ok_or_else(|| {
            Error::usage(format!(
                "-C needs the sched_switch events of the recording, and {name} has none (funcgraph -w records them; trace-cmd record -e sched:sched_switch)"
            ))
        })?)
    } else {
        None
    };
    let exec = file.format("sched", "sched_process_exec");
    let dec = Decoder::new(&entry, &exit, switch.as_ref())?.with_exec(exec.as_ref());
    let syms = KernelSymbols::parse(&file.kallsyms);
    let list = FunctionList::parse(&syms.names().collect::<Vec<_>>().join("\n"));
    let at = Some(file.path());
    let roots = crate::match_functions(&list, &args.funcs, "the function", at)?;
    let excluded = crate::match_functions(&list, &args.exclude, "the exclusion", at)?;
    let mut funcs = Funcs::new(syms, roots, excluded);
    if args.funcs.is_empty() {
        funcs = funcs.every_root();
    }
    let names = NameTable {
        funcs,
        comms: CommCache::offline(file.cmdlines.clone()),
    };
    let global_ts = file
        .clock
        .as_deref()
        .is_some_and(|c| GLOBAL_CLOCKS.contains(&c));
    let ncpus = file.cpus.iter().map(|c| c.cpu as usize + 1).max();
    let mut sink = ftrace_common::graph::graph_sink(
        &crate::show_opts(args, cols),
        dec,
        (switch.is_some(), global_ts),
        names,
        ncpus.unwrap_or(1),
    );
    let summary = replay(file, &mut sink, None)?;
    crate::finish(&mut sink, &summary, args)
}
