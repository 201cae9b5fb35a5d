//! Round trips through our writer and reader, hand-made version 7 files
//! (plain, zlib, zstd), and damaged files that must give errors, never
//! panics.

use super::read::TraceDat;
use super::write::{Meta, Recorder};
use super::{option, MAGIC};
use crate::base::Flow;
use crate::buffer::reader::Item;
use crate::buffer::ringbuf::build::PageBuilder;
use crate::buffer::ringbuf::{Lost, PageLayout};
use proptest::prelude::*;
use std::path::Path;

const HEADER_PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;
";

const GETPPID: &str = "name: sys_enter_getppid
ID: 42
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;

print fmt: \"\"
";

const STACK: &str = "name: kernel_stack
ID: 4
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int size;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;

print fmt: \"\\t=> %ps\\n\"
";

/// A tracefs-like directory with what the writer reads.
fn fake_tracefs(dir: &Path) {
    let w = |p: &str, t: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    };
    w("events/header_page", HEADER_PAGE);
    w(
        "events/header_event",
        "# compressed entry header\n\ttype_len    :    5 bits\n",
    );
    w("events/ftrace/kernel_stack/format", STACK);
    w("events/syscalls/sys_enter_getppid/format", GETPPID);
    w("set_event", "syscalls:sys_enter_getppid\n");
    w("trace_clock", "local global [mono] boot\n");
    w(
        "per_cpu/cpu0/stats",
        "entries: 0\noverrun: 3\ncommit overrun: 0\n",
    );
    w("per_cpu/cpu1/stats", "entries: 0\noverrun: 0\n");
    w("saved_cmdlines", "77 getppid-loop\n");
    w("printk_formats", "");
    w("options/stacktrace", "0\n");
}

fn payload(id: u16, pid: i32, nr: i32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&id.to_ne_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&pid.to_ne_bytes());
    v.extend_from_slice(&nr.to_ne_bytes());
    v
}

/// Writes a file of `n` events on CPU 1 and 2 on CPU 0 (interleaved in
/// time), the first page of CPU 1 flagged with 3 lost events.
fn write_sample(dir: &Path, n: u32) -> std::path::PathBuf {
    fake_tracefs(dir);
    let out = dir.join("out.dat");
    let mut rec = Recorder::create(&out, &[0, 1], PageLayout::DEFAULT_64).unwrap();
    let mut left = n;
    let mut ts = 1_000;
    let mut first = true;
    while left > 0 {
        let mut b = PageBuilder::new(ts);
        let k = left.min(200);
        for _ in 0..k {
            b = b.event(10, &payload(42, 77, 110));
        }
        ts += 10 * u64::from(k) + 5;
        left -= k;
        let lost = if first { Lost::Count(3) } else { Lost::None };
        first = false;
        rec.add_page(1, &b.finish(lost)).unwrap();
    }
    let p = PageBuilder::new(1_005)
        .event(0, &payload(42, 78, 110))
        .event(1_000, &payload(42, 78, 110))
        .finish(Lost::None);
    rec.add_page(0, &p).unwrap();
    let w = rec
        .finish(&Meta {
            tracefs: dir.to_path_buf(),
            buffer: dir.to_path_buf(),
            kallsyms: false,
            writer: "test 0".into(),
        })
        .unwrap();
    assert_eq!(w.events, u64::from(n) + 2);
    out
}

#[test]
fn what_we_write_reads_back_in_time_order() {
    let d = tempfile::tempdir().unwrap();
    let out = write_sample(d.path(), 450);
    let t = TraceDat::open(&out).unwrap();
    assert_eq!(t.version, 6);
    assert_eq!(t.page_size, 4096);
    assert_eq!(t.clock.as_deref(), Some("mono"));
    assert_eq!(t.writer.as_deref(), Some("test 0"));
    assert!(t.date_offset_us.is_some());
    assert_eq!(t.cpustats.len(), 2);
    assert_eq!(t.lost_per_cpu(), vec![(0, 3), (1, 0)]);
    assert_eq!(t.format("syscalls", "sys_enter_getppid").unwrap().id, 42);
    assert_eq!(t.format("ftrace", "kernel_stack").unwrap().id, 4);
    assert!(t.kallsyms.is_empty());
    assert_eq!(
        t.cmdlines.get(&77).map(String::as_str),
        Some("getppid-loop")
    );
    let mut last = 0;
    let mut n = 0;
    let mut lost = Vec::new();
    let mut cpu0 = Vec::new();
    t.events(&mut |it| {
        match it {
            Item::Event(ev) => {
                assert!(ev.ts >= last, "out of order");
                last = ev.ts;
                n += 1;
                if ev.cpu == 0 {
                    cpu0.push(ev.ts);
                }
                assert_eq!(ev.id, 42);
            }
            Item::Lost(cpu, c) => lost.push((cpu, c)),
        }
        Flow::Continue
    })
    .unwrap();
    assert_eq!(n, 452);
    assert_eq!(lost, vec![(1, Some(3))]);
    assert_eq!(cpu0, vec![1_005, 2_005]);
    assert_eq!(t.count().unwrap(), (452, 3));
    // Stopping early stops.
    let mut seen = 0;
    let (_, flow) = t
        .events(&mut |_| {
            seen += 1;
            if seen == 5 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        })
        .unwrap();
    assert_eq!((seen, flow), (5, Flow::Stop));
}

#[test]
fn a_file_that_cannot_be_created_fails_before_tracing() {
    let e = Recorder::create(
        Path::new("/nonexistent-dir/x.dat"),
        &[0],
        PageLayout::DEFAULT_64,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("/nonexistent-dir/x.dat"), "{e}");
}

#[test]
fn truncated_files_name_the_section_and_offset() {
    let d = tempfile::tempdir().unwrap();
    let out = write_sample(d.path(), 450);
    let full = std::fs::read(&out).unwrap();
    for cut in [5, 12, 40, 200, full.len() - 4096] {
        let p = d.path().join("cut.dat");
        std::fs::write(&p, &full[..cut]).unwrap();
        let e = TraceDat::open(&p)
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} opened"));
        let m = e.to_string();
        assert!(m.contains("cut.dat") && m.contains("offset"), "{cut}: {m}");
        assert_eq!(e.exit_code(), 2, "{m}");
    }
    let p = d.path().join("not.dat");
    std::fs::write(&p, b"hello, this is not a trace").unwrap();
    assert!(TraceDat::open(&p)
        .unwrap_err()
        .to_string()
        .contains("magic"));
}

/// A version 7 file as trace-cmd 3.1 writes it: sections, options with a
/// BUFFER option (with the page size), `codec` for every section and the
/// trace data.
fn v7_file(codec: Option<&str>) -> Vec<u8> {
    let compress = |data: &[u8]| -> Vec<u8> {
        match codec {
            Some("zlib") => miniz_oxide::deflate::compress_to_vec_zlib(data, 6),
            Some("zstd") => {
                ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
            }
            _ => data.to_vec(),
        }
    };
    let mut f = Vec::new();
    f.extend_from_slice(&MAGIC);
    f.extend_from_slice(b"7\0");
    f.push(0);
    f.push(8);
    f.extend_from_slice(&4096u32.to_le_bytes());
    f.extend_from_slice(codec.unwrap_or("none").as_bytes());
    f.push(0);
    f.extend_from_slice(b"1\0");
    let opt_at = f.len();
    f.extend_from_slice(&0u64.to_le_bytes());
    // A section: header, then (compressed) data.
    let section = |f: &mut Vec<u8>, id: u16, data: &[u8]| -> u64 {
        let at = f.len() as u64;
        f.extend_from_slice(&id.to_le_bytes());
        f.extend_from_slice(&u16::from(codec.is_some()).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        let body = if codec.is_some() {
            let c = compress(data);
            let mut b = (c.len() as u32).to_le_bytes().to_vec();
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&c);
            b
        } else {
            data.to_vec()
        };
        f.extend_from_slice(&(body.len() as u64).to_le_bytes());
        f.extend_from_slice(&body);
        at
    };
    let mut hdr = b"header_page\0".to_vec();
    hdr.extend_from_slice(&(HEADER_PAGE.len() as u64).to_le_bytes());
    hdr.extend_from_slice(HEADER_PAGE.as_bytes());
    hdr.extend_from_slice(b"header_event\0");
    hdr.extend_from_slice(&0u64.to_le_bytes());
    let headers = section(&mut f, option::HEADER_INFO, &hdr);
    let mut ev = 1u32.to_le_bytes().to_vec();
    ev.extend_from_slice(b"syscalls\0");
    ev.extend_from_slice(&1u32.to_le_bytes());
    ev.extend_from_slice(&(GETPPID.len() as u64).to_le_bytes());
    ev.extend_from_slice(GETPPID.as_bytes());
    let events = section(&mut f, option::EVENT_FORMATS, &ev);
    let mut cl = Vec::new();
    let text = b"5 five\n";
    cl.extend_from_slice(&(text.len() as u64).to_le_bytes());
    cl.extend_from_slice(text);
    let cmdlines = section(&mut f, option::CMDLINES, &cl);
    // The trace data: one CPU (id 3), two pages.
    let mut pages = PageBuilder::new(10)
        .event(1, &payload(42, 5, 110))
        .event(1, &payload(42, 5, 110))
        .finish(Lost::None);
    pages.extend(
        PageBuilder::new(100)
            .event(1, &payload(42, 5, 110))
            .finish(Lost::Count(7)),
    );
    let buf_at = f.len() as u64;
    f.extend_from_slice(&option::BUFFER.to_le_bytes());
    f.extend_from_slice(&u16::from(codec.is_some()).to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes());
    while f.len() % 4096 != 0 {
        f.push(0);
    }
    let data_at = f.len() as u64;
    if codec.is_some() {
        // Two chunks of one page each.
        f.extend_from_slice(&2u32.to_le_bytes());
        for p in pages.chunks(4096) {
            let c = compress(p);
            f.extend_from_slice(&(c.len() as u32).to_le_bytes());
            f.extend_from_slice(&(p.len() as u32).to_le_bytes());
            f.extend_from_slice(&c);
        }
    } else {
        f.extend_from_slice(&pages);
    }
    // trace-cmd's size of compressed data leaves the chunk count out.
    let data_size = f.len() as u64 - data_at - if codec.is_some() { 4 } else { 0 };
    // The options: section offsets, the clock, the buffer.
    let mut o = Vec::new();
    let mut opt = |id: u16, data: &[u8]| {
        o.extend_from_slice(&id.to_le_bytes());
        o.extend_from_slice(&(data.len() as u32).to_le_bytes());
        o.extend_from_slice(data);
    };
    opt(option::HEADER_INFO, &headers.to_le_bytes());
    opt(option::EVENT_FORMATS, &events.to_le_bytes());
    opt(option::CMDLINES, &cmdlines.to_le_bytes());
    opt(option::TRACECLOCK, b"[local] global\n\0");
    let mut b = buf_at.to_le_bytes().to_vec();
    b.extend_from_slice(b"\0local\0");
    b.extend_from_slice(&4096u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&data_at.to_le_bytes());
    b.extend_from_slice(&data_size.to_le_bytes());
    opt(option::BUFFER, &b);
    opt(option::DONE, &0u64.to_le_bytes());
    let opts_at = f.len() as u64;
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&(o.len() as u64).to_le_bytes());
    f.extend_from_slice(&o);
    f[opt_at..opt_at + 8].copy_from_slice(&opts_at.to_le_bytes());
    f
}

#[test]
fn version_7_plain_zlib_and_zstd() {
    let d = tempfile::tempdir().unwrap();
    for codec in [None, Some("zlib"), Some("zstd")] {
        let p = d.path().join("v7.dat");
        std::fs::write(&p, v7_file(codec)).unwrap();
        let t = TraceDat::open(&p).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        assert_eq!(t.version, 7);
        assert_eq!(t.clock.as_deref(), Some("local"));
        assert_eq!(t.cmdlines.get(&5).map(String::as_str), Some("five"));
        assert_eq!(t.cpus.len(), 1);
        assert_eq!(t.cpus[0].cpu, 3);
        let mut got = Vec::new();
        t.events(&mut |it| {
            got.push(match it {
                Item::Event(e) => (e.cpu, e.ts, e.pid as i64),
                Item::Lost(c, n) => (c, 0, -(n.unwrap_or(0) as i64)),
            });
            Flow::Continue
        })
        .unwrap();
        assert_eq!(
            got,
            vec![(3, 11, 5), (3, 12, 5), (3, 0, -7), (3, 101, 5)],
            "{codec:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic(
        v7 in any::<bool>(),
        codec in 0u8..3,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = if v7 {
            v7_file([None, Some("zlib"), Some("zstd")][codec as usize])
        } else {
            let d = tempfile::tempdir().unwrap();
            std::fs::read(write_sample(d.path(), 300)).unwrap()
        };
        for (i, v) in flips {
            let i = i.index(f.len());
            f[i] = v;
        }
        if codec == 0 {
            let keep = cut.index(f.len() + 1);
            f.truncate(keep);
        }
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bad.dat");
        std::fs::write(&p, &f).unwrap();
        if let Ok(t) = TraceDat::open(&p) {
            let _ = t.events(&mut |_| Flow::Continue);
            let _ = t.formats();
        }
    }
}
