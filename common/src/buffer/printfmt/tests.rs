//! The renderer on formats captured from real kernels
//! (common/testdata/kernels/*), with records built field by field, against
//! the text those kernels print; and on any text and any bytes, without a
//! panic. (tests/printfmt.rs checks it live against the running kernel.)

use super::*;
use crate::buffer::format::EventFormat;
use crate::sym::kallsyms::KernelSymbols;
use proptest::prelude::*;

const K61: Kernel = Kernel {
    version: (6, 1),
    hz: Some(250),
};
const K612: Kernel = Kernel {
    version: (6, 12),
    hz: Some(250),
};
const K618: Kernel = Kernel {
    version: (6, 18),
    hz: Some(250),
};

fn testdata() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kernels")
}

/// A captured format, `None` where that kernel did not have the event.
fn format(kernel: &str, event: &str) -> Option<EventFormat> {
    let p = testdata()
        .join(kernel)
        .join("events")
        .join(event)
        .join("format");
    let text = std::fs::read_to_string(p).ok()?;
    Some(EventFormat::parse(&text).unwrap())
}

/// A record of an event, built field by field.
struct Rec<'f> {
    fmt: &'f EventFormat,
    data: Vec<u8>,
}

impl<'f> Rec<'f> {
    fn new(fmt: &'f EventFormat) -> Rec<'f> {
        let end = fmt
            .fields
            .iter()
            .chain(&fmt.common)
            .map(|f| f.offset + f.size)
            .max()
            .unwrap_or(8);
        let mut data = vec![0u8; end.next_multiple_of(4)];
        data[..2].copy_from_slice(&fmt.id.to_ne_bytes());
        Rec { fmt, data }
    }

    fn int(mut self, name: &str, v: i64) -> Rec<'f> {
        let f = self.fmt.field(name).unwrap_or_else(|| panic!("no {name}"));
        let b = (v as u64).to_ne_bytes();
        self.data[f.offset..f.offset + f.size].copy_from_slice(&b[..f.size]);
        self
    }

    fn str(self, name: &str, s: &str) -> Rec<'f> {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.bytes(name, &b)
    }

    fn bytes(mut self, name: &str, b: &[u8]) -> Rec<'f> {
        let f = self.fmt.field(name).unwrap_or_else(|| panic!("no {name}"));
        match f.kind {
            FieldKind::DataLoc | FieldKind::RelLoc => {
                let at = self.data.len();
                self.data.extend_from_slice(b);
                let off = if f.kind == FieldKind::RelLoc {
                    at - (f.offset + 4)
                } else {
                    at
                };
                let loc = ((b.len() as u32) << 16) | off as u32;
                self.data[f.offset..f.offset + 4].copy_from_slice(&loc.to_ne_bytes());
            }
            _ => self.data[f.offset..f.offset + b.len()].copy_from_slice(b),
        }
        self
    }
}

fn syms() -> KernelSyms {
    KernelSyms::from_table(KernelSymbols::parse(
        "ffffffff81000000 T _stext\n\
         ffffffff81100000 T tick_nohz_handler\n\
         ffffffff81100100 T hrtimer_wakeup\n\
         ffffffff81200000 T process_timeout\n\
         ffffffff81200080 T vfs_fstatat\n\
         ffffffffc0400000 t p9_fcall_init\t[9pnet]\n\
         ffffffffc0400080 t p9_client_rpc\t[9pnet]\n",
    ))
}

fn render(system: &str, fmt: &EventFormat, data: &[u8], kernel: Kernel) -> String {
    let t = EventText::new(system, fmt, kernel);
    assert_eq!(t.fallback(), None, "{}", fmt.name);
    let mut out = String::new();
    let mut s = syms();
    let mut strings = KernelStrings::parse("");
    let faults = t.write_event(
        data,
        Lookups {
            syms: &mut s,
            strings: &mut strings,
        },
        &mut out,
    );
    assert_eq!(faults, 0, "{out}");
    out
}

#[test]
fn every_captured_format_compiles() {
    let mut n = 0;
    for kernel in ["host-6.18", "debian-6.1", "debian-6.12"] {
        let events = testdata().join(kernel).join("events");
        for sys in std::fs::read_dir(&events).unwrap().flatten() {
            if !sys.path().is_dir() {
                continue;
            }
            let system = sys.file_name().to_string_lossy().into_owned();
            for ev in std::fs::read_dir(sys.path()).unwrap().flatten() {
                if !ev.path().join("format").is_file() {
                    continue;
                }
                let text = std::fs::read_to_string(ev.path().join("format")).unwrap();
                let fmt = EventFormat::parse(&text).unwrap();
                let t = EventText::new(&system, &fmt, K618);
                // The ftrace system's own events are printed by the
                // kernel's code, never from their formats (and never traced
                // as events).
                if system != "ftrace" {
                    assert_eq!(t.fallback(), None, "{kernel} {system}:{}", fmt.name);
                }
                n += 1;
            }
        }
    }
    assert!(n > 90, "{n} formats");
}

#[test]
fn sched_switch_on_three_kernels() {
    for k in ["host-6.18", "debian-6.1", "debian-6.12"] {
        let f = format(k, "sched/sched_switch").unwrap();
        let rec = |state: i64| {
            Rec::new(&f)
                .str("prev_comm", "ls")
                .int("prev_pid", 4021)
                .int("prev_prio", 120)
                .int("prev_state", state)
                .str("next_comm", "swapper/1")
                .int("next_pid", 0)
                .int("next_prio", 120)
                .data
        };
        let text = |state| render("sched", &f, &rec(state), K618);
        assert_eq!(
            text(2),
            "sched_switch: prev_comm=ls prev_pid=4021 prev_prio=120 prev_state=D ==> next_comm=swapper/1 next_pid=0 next_prio=120",
            "{k}"
        );
        assert!(text(0).contains("prev_state=R ==>"), "{k}");
        assert!(text(1 | 2).contains("prev_state=S|D ==>"), "{k}");
        assert!(text(0x80).contains("prev_state=I ==>"), "{k}");
        // Preempted: the bit above the states, shown as '+'.
        assert!(
            text(0x100).contains("prev_state=R+ ==>"),
            "{k}: {}",
            text(0x100)
        );
    }
}

#[test]
fn kmalloc_with_symbols_and_gfp_flags() {
    for k in ["host-6.18", "debian-6.1", "debian-6.12"] {
        let f = format(k, "kmem/kmalloc").unwrap();
        let mut r = Rec::new(&f)
            .int("call_site", 0xffffffffc040002f_u64 as i64)
            .int("ptr", 0xffff888006f75000_u64 as i64)
            .int("bytes_req", 64)
            .int("bytes_alloc", 64)
            .int("gfp_flags", 0xc40)
            .int("node", -1);
        if f.field("accounted").is_some() {
            r = r.int("accounted", 0);
        }
        let t = render("kmem", &f, &r.data, K618);
        assert!(
            t.starts_with("kmalloc: call_site=p9_fcall_init+0x2f/0x80 [9pnet] ptr=ffff888006f75000 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_NOFS node=-1"),
            "{k}: {t}"
        );
        assert!(t.ends_with("node=-1 accounted=false"), "{k}: {t}");
        let r = Rec::new(&f).int("gfp_flags", 0).int("node", 0);
        assert!(render("kmem", &f, &r.data, K618).contains("gfp_flags=none"));
    }
}

#[test]
fn timers_as_the_kernel_prints_them() {
    // timer_start masks its flags: none of them set prints nothing.
    let f = format("debian-6.1", "timer/timer_start").unwrap();
    let r = Rec::new(&f)
        .int("timer", 0xffffc9000007fde8_u64 as i64)
        .int("function", 0xffffffff81200000_u64 as i64)
        .int("expires", 4294896910)
        .int("now", 4294896909)
        .int("flags", 1 | (15 << 22));
    assert_eq!(
        render("timer", &f, &r.data, K61),
        "timer_start: timer=ffffc9000007fde8 function=process_timeout expires=4294896910 [timeout=1] cpu=1 idx=15 flags="
    );
    let r = r.int("flags", 0x00200000 | 0x00040000);
    assert!(render("timer", &f, &r.data, K61).ends_with("flags=M|I"));
    // hrtimer modes name their bits, and was_armed is there where the
    // kernel has it.
    for (k, ev) in [
        ("debian-6.1", "timer/hrtimer_init"),
        ("debian-6.12", "timer/hrtimer_init"),
        ("host-6.18", "timer/hrtimer_setup"),
    ] {
        let f = format(k, ev).unwrap();
        let r = Rec::new(&f)
            .int("hrtimer", 0xffff888627c206f8_u64 as i64)
            .int("clockid", 1)
            .int("mode", 9);
        let t = render("timer", &f, &r.data, K618);
        assert!(
            t.ends_with("clockid=CLOCK_MONOTONIC mode=REL|HARD"),
            "{k}: {t}"
        );
        let f = format(k, "timer/hrtimer_start").unwrap();
        let mut r = Rec::new(&f)
            .int("hrtimer", 0xffff888627c206f8_u64 as i64)
            .int("function", 0xffffffff81100000_u64 as i64)
            .int("expires", 15240000000)
            .int("softexpires", 15240000000)
            .int("mode", 0x0a);
        if f.field("was_armed").is_some() {
            r = r.int("was_armed", 1);
        }
        let t = render("timer", &f, &r.data, K618);
        assert!(
            t.starts_with("hrtimer_start: hrtimer=ffff888627c206f8 function=tick_nohz_handler expires=15240000000 softexpires=15240000000 mode=ABS|PINNED|HARD"),
            "{k}: {t}"
        );
    }
}

#[test]
fn softirq_names_and_unknown_values() {
    let f = format("debian-6.1", "irq/softirq_entry").unwrap();
    let r = Rec::new(&f).int("vec", 9);
    assert_eq!(
        render("irq", &f, &r.data, K61),
        "softirq_entry: vec=9 [action=RCU]"
    );
    let r = Rec::new(&f).int("vec", 12);
    assert_eq!(
        render("irq", &f, &r.data, K61),
        "softirq_entry: vec=12 [action=0xc]"
    );
}

#[test]
fn system_calls_in_each_kernels_shape() {
    let f = format("host-6.18", "syscalls/sys_enter_openat").unwrap();
    let r = Rec::new(&f)
        .int("__syscall_nr", 257)
        .int("dfd", 0xffffff9c)
        .int("filename", 0x55ca5f82d260)
        .int("flags", 0x241)
        .int("mode", 0);
    assert_eq!(
        render("syscalls", &f, &r.data, K618),
        "sys_openat(dfd: 0xffffff9c, filename: 0x55ca5f82d260, flags: 0x241, mode: 0)"
    );
    for k in [K61, K612] {
        assert_eq!(
            render("syscalls", &f, &r.data, k),
            "sys_openat(dfd: ffffff9c, filename: 55ca5f82d260, flags: 241, mode: 0)"
        );
    }
    let f = format("host-6.18", "syscalls/sys_exit_getppid").unwrap();
    let r = Rec::new(&f).int("__syscall_nr", 110).int("ret", 3);
    assert_eq!(render("syscalls", &f, &r.data, K61), "sys_getppid -> 0x3");
    let r = Rec::new(&f).int("__syscall_nr", 110).int("ret", -2);
    assert_eq!(
        render("syscalls", &f, &r.data, K618),
        "sys_getppid -> 0xfffffffffffffffe"
    );
    let f = format("host-6.18", "syscalls/sys_enter_getppid").unwrap();
    let r = Rec::new(&f).int("__syscall_nr", 110);
    assert_eq!(render("syscalls", &f, &r.data, K618), "sys_getppid()");
}

#[test]
fn addresses_masks_min_and_arrays() {
    let f = format("host-6.18", "sock/inet_sock_set_state").unwrap();
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    let r = Rec::new(&f)
        .int("family", 2)
        .int("protocol", 6)
        .int("sport", 40000)
        .int("dport", 22)
        .bytes("saddr", &[127, 0, 0, 1])
        .bytes("daddr", &[10, 1, 2, 3])
        .bytes("saddr_v6", &v6)
        .bytes("daddr_v6", &[0; 16])
        .int("oldstate", 7)
        .int("newstate", 2);
    assert_eq!(
        render("sock", &f, &r.data, K618),
        "inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=40000 dport=22 saddr=127.0.0.1 daddr=10.1.2.3 saddrv6=::1 daddrv6=:: oldstate=TCP_CLOSE newstate=TCP_SYN_SENT"
    );
    let f = format("host-6.18", "ipi/ipi_send_cpumask").unwrap();
    let r = Rec::new(&f)
        .bytes("cpumask", &[0x05, 0, 0, 0, 0, 0, 0, 0])
        .int("callsite", 0xffffffff81200081_u64 as i64)
        .int("callback", 0);
    assert_eq!(
        render("ipi", &f, &r.data, K618),
        "ipi_send_cpumask: cpumask=00000000,00000005 callsite=vfs_fstatat+0x1/0x3f1fff80 callback=0x0"
    );
    let Some(f) = format("host-6.18", "dma/dma_map_sg") else {
        return;
    };
    let mut lens = Vec::new();
    for l in [4096u32, 512] {
        lens.extend_from_slice(&l.to_ne_bytes());
    }
    let r = Rec::new(&f)
        .str("device", "0000:00:04.0")
        .int("full_nents", 200)
        .int("full_ents", 2)
        .int("truncated", 1)
        .bytes("phys_addrs", &0x1000u64.to_ne_bytes())
        .bytes("dma_addrs", &0xfffff000u64.to_ne_bytes())
        .bytes("lengths", &lens)
        .int("dir", 1)
        .int("attrs", 2 | 0x400);
    assert_eq!(
        render("dma", &f, &r.data, K618),
        "dma_map_sg: 0000:00:04.0 dir=TO_DEVICE nents=128/200 ents=2/2 [TRUNCATED] dma_addrs={0xfffff000} sizes={0x1000,0x200} phys_addrs={0x1000} attrs=WEAK_ORDERING|MMIO"
    );
}

#[test]
fn the_flags_column() {
    let c = irq_info;
    assert_eq!(c(0, 0, K618), ".....");
    assert_eq!(c(0x01, 2, K618), "d..2.");
    assert_eq!(c(0x01 | 0x04 | 0x20 | 0x08, 3, K618), "dNh3.");
    assert_eq!(c(0x04 | 0x20 | 0x10, 1, K618), ".Ns1.");
    assert_eq!(c(0x01 | 0x80, 0x21, K618), "D..12");
    assert_eq!(c(0x80, 0, K618), "b....");
    assert_eq!(c(0x40 | 0x08, 0, K618), "..Z..");
    assert_eq!(c(0x40, 0, K618), "..z..");
    assert_eq!(c(0x18, 0, K618), "..H..");
    assert_eq!(c(0x04, 0xff, K618), ".n.ff");
    // Bit 0x02: lazy need-resched from 6.13, "irqs-off not supported"
    // before.
    assert_eq!(c(0x02, 0, K618), ".l...");
    assert_eq!(c(0x02 | 0x04, 0, K618), ".b...");
    assert_eq!(c(0x02 | 0x20, 0, K618), ".L...");
    assert_eq!(c(0x02 | 0x04 | 0x20, 0, K618), ".B...");
    assert_eq!(c(0x02, 0, K612), "X....");
    assert_eq!(c(0x20, 0, K61), ".p...");
    // Before 5.13: four columns, the whole byte the preempt depth.
    let k510 = Kernel {
        version: (5, 10),
        hz: None,
    };
    assert_eq!(c(0x01, 0, k510), "d...");
    assert_eq!(c(0x01 | 0x04 | 0x20, 2, k510), "dN.2");
    assert_eq!(c(0, 0x21, k510), "...21");
}

#[test]
fn probe_arguments_without_their_addresses() {
    let f = format("debian-6.1", "ftrace_tools_capture/getname_string").unwrap();
    let t = EventText::probe_args(&f, K61);
    assert_eq!(t.fallback(), None);
    let name = f
        .fields
        .iter()
        .find(|x| x.kind == FieldKind::DataLoc)
        .unwrap()
        .name
        .clone();
    let mut s = syms();
    let mut strings = KernelStrings::parse("");
    let write = |data: &[u8], s: &mut KernelSyms, strings: &mut KernelStrings| {
        let mut out = String::new();
        t.write(data, Lookups { syms: s, strings }, &mut out);
        out
    };
    let r = Rec::new(&f).str(&name, "/etc/passwd");
    assert_eq!(
        write(&r.data, &mut s, &mut strings),
        format!(" {name}=\"/etc/passwd\"")
    );
    // A string the kernel could not read: recorded with length 0.
    let r = Rec::new(&f).bytes(&name, &[]);
    assert_eq!(
        write(&r.data, &mut s, &mut strings),
        format!(" {name}=(fault)")
    );
}

#[test]
fn strings_from_records_stay_on_one_line() {
    let f = format("host-6.18", "sched/sched_wakeup").unwrap();
    let r = Rec::new(&f)
        .str("comm", "a\nb\u{1b}[31m\u{e9}")
        .int("pid", 1)
        .int("prio", 120)
        .int("target_cpu", 1);
    let t = render("sched", &f, &r.data, K618);
    assert!(t.contains("comm=a\\nb\\x1b[31m\u{e9} pid=1"), "{t}");
}

#[test]
fn the_kernel_of_a_trace_dat_file() {
    let k = Kernel::from_uname("Linux box 6.12.95+deb12-amd64 x86_64");
    assert_eq!(k.version, (6, 12));
    assert_eq!(Kernel::from_uname("").version, (0, 0));
    assert_eq!(Kernel::parse_release("6.18.0-rc3"), (6, 18));
}

#[test]
fn kernel_strings_by_address() {
    let mut k = KernelStrings::parse(
        "0xffffffff82a5c1f0 : \"Start context switch\"\n0xffffffff82a5c200 : \"a\\tb\\n\"\nnonsense\n",
    );
    assert_eq!(k.get(0xffffffff82a5c1f0), Some("Start context switch"));
    assert_eq!(k.get(0xffffffff82a5c200), Some("a\tb\n"));
    assert_eq!(k.get(1), None);
}

/// A format whose fields every kind of expression can use.
const FIELDS: &str = "name: t\nID: 9\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:int a;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:unsigned long b;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:char c[8];\toffset:24;\tsize:8;\tsigned:1;\n\tfield:__data_loc char[] d;\toffset:32;\tsize:4;\tsigned:0;\n\tfield:void * p;\toffset:40;\tsize:8;\tsigned:0;\n\tfield:__rel_loc u8[] r;\toffset:48;\tsize:4;\tsigned:0;\n\nprint fmt: ";

fn with_print_fmt(pf: &str) -> Option<EventFormat> {
    EventFormat::parse(&format!("{FIELDS}{pf}\n")).ok()
}

#[test]
fn c_semantics() {
    for (pf, want) in [
        (r#""%u %d", (unsigned char)300, (signed char)200"#, "44 -56"),
        (r#""%d", -1 < 0u"#, "0"),
        (r#""%ld", -1L < 0u"#, "1"),
        (r#""%x", ~0u >> 28"#, "f"),
        (r#""%d", -8 >> 1"#, "-4"),
        (r#""%lu", sizeof(u64) * 2"#, "16"),
        (
            r#""%d", ({ int x = (5); int y = (3); x < y ? x : y; })"#,
            "3",
        ),
        (r#""%s", 0 ? "a" : "b""#, "b"),
        (r#""%c%c", 'o', 107"#, "ok"),
        (r#""%s", NULL"#, "(null)"),
        (r#""%d", "abc"[1]"#, "98"),
        (r#""%d %d", 7 % -3, -7 / 2"#, "1 -3"),
        (r#""%d", !!(REC->b & 4) && 1 || 0"#, "0"),
        (r#""%s", __print_flags(0x3, "", {1, "a"}, {2, "b"})"#, "ab"),
        (
            r#""%s", __print_flags(0x5, "|", {1, "a"}, {2, "b"})"#,
            "a|0x4",
        ),
        (r#""%s", __print_symbolic(5, {1, "a"})"#, "0x5"),
        (r#""%s", __print_hex("\x01\x02\x03", 3)"#, "01 02 03"),
        (r#""%s", __print_hex_str("\x01\x02", 2)"#, "0102"),
        (r#""[%-4s|%4s|%.1s]", "ab", "cd", "ef""#, "[ab  |  cd|e]"),
        (r#""%*d|%-*d|%.*s", 4, 1, 3, 2, 2, "xyz""#, "   1|2  |xy"),
        (
            r#""%p %px", REC->p, REC->p"#,
            "0000000000000000 0000000000000000",
        ),
        (r#""%d %%", MAJOR(0x1400001), MINOR(0x1400001)"#, "20 %"),
        (r#""a %q b", 1"#, "a "),
    ] {
        let fmt = with_print_fmt(pf).unwrap();
        let data = vec![0u8; 56];
        assert_eq!(
            render("t", &fmt, &data, K618).strip_prefix("t: ").unwrap(),
            want,
            "{pf}"
        );
    }
    // A division by zero (the kernel would trap) prints 0 and is counted
    // as a fault, like a load outside the record.
    let t = EventText::new("t", &with_print_fmt(r#""%d", REC->a / 0"#).unwrap(), K618);
    let mut out = String::new();
    let (mut s, mut k) = (syms(), KernelStrings::parse(""));
    let faults = t.write(
        &[0u8; 56],
        Lookups {
            syms: &mut s,
            strings: &mut k,
        },
        &mut out,
    );
    assert_eq!((out.as_str(), faults), ("0", 1));
    for (pf, why) in [
        (r#""%d", jiffies"#, "'jiffies'"),
        (r#""%d", f(1)"#, "f()"),
        (r#""%pd", REC->p"#, "%pd"),
    ] {
        let t = EventText::new("t", &with_print_fmt(pf).unwrap(), K618);
        assert!(
            t.fallback().unwrap().contains(why),
            "{pf}: {:?}",
            t.fallback()
        );
        // A fallback prints every field by name.
        let mut out = String::new();
        let mut s = syms();
        let mut k = KernelStrings::parse("");
        t.write(
            &[0u8; 56],
            Lookups {
                syms: &mut s,
                strings: &mut k,
            },
            &mut out,
        );
        assert!(out.starts_with("a=0 b=0 c=\"\""), "{out}");
    }
}

proptest! {
    #[test]
    fn any_print_fmt_text_is_safe(pf in "\\PC{0,200}", data in proptest::collection::vec(any::<u8>(), 0..96)) {
        if let Some(fmt) = with_print_fmt(&pf) {
            for t in [EventText::new("t", &fmt, K618), EventText::probe_args(&fmt, K61)] {
                let mut out = String::new();
                let mut s = syms();
                let mut k = KernelStrings::parse("");
                t.write_event(&data, Lookups { syms: &mut s, strings: &mut k }, &mut out);
            }
        }
    }

    #[test]
    fn format_like_text_is_safe(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("\"%d %s %p %pS %pI4 %*ph %.*s %lu %c %x\""),
                Just(", "), Just("REC->a"), Just("REC->b"), Just("REC->c"), Just("__get_str(d)"),
                Just("REC->p"), Just("__get_dynamic_array(r)"), Just("__get_rel_dynamic_array_len(r)"),
                Just("__print_flags("), Just("__print_symbolic("), Just("__print_hex("),
                Just("__print_array("), Just("__get_bitmask(d)"), Just("{ 1, \"x\" }"),
                Just("("), Just(")"), Just("?"), Just(":"), Just("["), Just("]"), Just("-"),
                Just("<<"), Just(">>"), Just("/"), Just("%"), Just("*"), Just("&"), Just("!"),
                Just("(unsigned char)"), Just("(void *)"), Just("sizeof(int)"), Just("0"),
                Just("4294967295"), Just("-1"), Just("64"), Just("'a'"), Just("\"s\""),
                Just("({ int x = 1; x; })"), Just("({"), Just("})"), Just(";"), Just("{"), Just("}"),
            ],
            0..40,
        ),
        data in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let pf: String = parts.concat();
        if let Some(fmt) = with_print_fmt(&pf) {
            let t = EventText::new("t", &fmt, K618);
            let mut out = String::new();
            let mut s = syms();
            let mut k = KernelStrings::parse("");
            t.write_event(&data, Lookups { syms: &mut s, strings: &mut k }, &mut out);
            prop_assert!(out.len() < 100_000);
        }
    }

    #[test]
    fn real_formats_on_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..160), which in 0usize..64) {
        let mut all = Vec::new();
        for k in ["host-6.18", "debian-6.1", "debian-6.12"] {
            for ev in [
                "sched/sched_switch", "kmem/kmalloc", "timer/timer_start", "timer/hrtimer_start",
                "sock/inet_sock_set_state", "ipi/ipi_send_cpumask", "dma/dma_map_sg",
                "block/block_rq_issue", "syscalls/sys_enter_openat", "signal/signal_generate",
            ] {
                if let Some(f) = format(k, ev) {
                    all.push((ev.split('/').next().unwrap_or(""), f));
                }
            }
        }
        let (sys, fmt) = &all[which % all.len()];
        let t = EventText::new(sys, fmt, K618);
        let mut out = String::new();
        let mut s = syms();
        let mut k = KernelStrings::parse("");
        t.write_event(&data, Lookups { syms: &mut s, strings: &mut k }, &mut out);
    }

    #[test]
    fn truncated_real_formats_are_safe(cut in 0usize..4000, data in proptest::collection::vec(any::<u8>(), 0..96)) {
        let f = format("host-6.18", "kmem/kmalloc").unwrap();
        let mut pf = f.print_fmt.clone();
        let mut at = cut.min(pf.len());
        while !pf.is_char_boundary(at) {
            at -= 1;
        }
        pf.truncate(at);
        let fmt = EventFormat { print_fmt: pf, ..f };
        let t = EventText::new("kmem", &fmt, K618);
        let mut out = String::new();
        let mut s = syms();
        let mut k = KernelStrings::parse("");
        t.write_event(&data, Lookups { syms: &mut s, strings: &mut k }, &mut out);
    }
}
