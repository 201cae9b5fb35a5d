//! The retransmit events as tcpretrans shows them: the fields of
//! `tcp:tcp_retransmit_skb` decoded by this kernel's format (which fields
//! it has changed from 4.15 to 6.x), one row per retransmit, its kernel
//! stack (`-s`), or counts per connection (`-c`).

use ftrace_common::app::output::{Output, TimeColumn};
use ftrace_common::app::stacks::tracing_frame;
use ftrace_common::app::stream::Sink;
use ftrace_common::buffer::format::{EventFormat, Field};
use ftrace_common::buffer::reader::Event;
use ftrace_common::sym::kallsyms::KernelSyms;
use ftrace_common::{Flow, Result};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `AF_INET` and `AF_INET6` as the event's `family` holds them.
pub const AF_INET: u64 = 2;
/// See [`AF_INET`].
pub const AF_INET6: u64 = 10;

pub use ftrace_common::kernel::tcp::state_name;

/// The fields of `tcp:tcp_retransmit_skb` this kernel has. `state` came in
/// 4.16, `family` later (without it, an IPv4 connection is told by its
/// v4-mapped IPv6 addresses, which the kernel fills in for it), `err` in
/// 6.x.
#[derive(Debug, Clone)]
pub struct Fields {
    /// The event's id.
    pub id: u16,
    sport: Field,
    dport: Field,
    saddr: Field,
    daddr: Field,
    saddr_v6: Option<Field>,
    daddr_v6: Option<Field>,
    family: Option<Field>,
    state: Option<Field>,
    err: Option<Field>,
}

/// One retransmit, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Conn {
    /// Local address and port.
    pub local: (IpAddr, u16),
    /// Remote address and port.
    pub remote: (IpAddr, u16),
}

impl Conn {
    /// 4 or 6.
    pub fn ip(&self) -> u8 {
        if self.local.0.is_ipv4() {
            4
        } else {
            6
        }
    }
}

/// `127.0.0.1:80`, `[::1]:80`.
pub fn endpoint(a: &(IpAddr, u16)) -> String {
    match a.0 {
        IpAddr::V4(v) => format!("{v}:{}", a.1),
        IpAddr::V6(v) => format!("[{v}]:{}", a.1),
    }
}

/// What a retransmit event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrans {
    /// The connection.
    pub conn: Conn,
    /// Its TCP state, where the kernel records it.
    pub state: Option<i64>,
    /// The transmit's error (6.x kernels record failed retransmits too).
    pub err: Option<i64>,
}

impl Fields {
    /// From the event's format.
    pub fn new(f: &EventFormat) -> Result<Fields> {
        Ok(Fields {
            id: f.id,
            sport: f.require("sport")?.clone(),
            dport: f.require("dport")?.clone(),
            saddr: f.require("saddr")?.clone(),
            daddr: f.require("daddr")?.clone(),
            saddr_v6: f.field("saddr_v6").cloned(),
            daddr_v6: f.field("daddr_v6").cloned(),
            family: f.field("family").cloned(),
            state: f.field("state").cloned(),
            err: f.field("err").cloned(),
        })
    }

    /// Whether the kernel can filter on the family.
    pub fn has_family(&self) -> bool {
        self.family.is_some()
    }

    /// Decodes an event; `None` if it is too short for its format.
    pub fn decode(&self, data: &[u8]) -> Option<Retrans> {
        let v6 = |f: &Option<Field>| -> Option<Ipv6Addr> {
            let b: [u8; 16] = f.as_ref()?.bytes(data)?.get(..16)?.try_into().ok()?;
            Some(Ipv6Addr::from(b))
        };
        let v4 = |f: &Field| -> Option<Ipv4Addr> {
            let b: [u8; 4] = f.bytes(data)?.get(..4)?.try_into().ok()?;
            Some(Ipv4Addr::from(b))
        };
        let (s6, d6) = (v6(&self.saddr_v6), v6(&self.daddr_v6));
        let is_v4 = match self.family.as_ref().and_then(|f| f.u64(data)) {
            Some(fam) => fam != AF_INET6,
            None => match s6 {
                Some(a) => a.to_ipv4_mapped().is_some() || a.is_unspecified(),
                None => true,
            },
        };
        let (src, dst): (IpAddr, IpAddr) = if is_v4 {
            (v4(&self.saddr)?.into(), v4(&self.daddr)?.into())
        } else {
            (s6?.into(), d6?.into())
        };
        let port = |f: &Field| f.u64(data).map(|p| p as u16);
        Some(Retrans {
            conn: Conn {
                local: (src, port(&self.sport)?),
                remote: (dst, port(&self.dport)?),
            },
            state: self.state.as_ref().and_then(|f| f.i64(data)),
            err: self.err.as_ref().and_then(|f| f.i64(data)),
        })
    }
}

/// `R` a retransmit, `L` one sent by a tail loss probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A retransmit (RTO, fast retransmit, ...).
    Retransmit,
    /// A retransmit a tail loss probe sent.
    LossProbe,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Retransmit => 'R',
            Kind::LossProbe => 'L',
        }
    }
}

/// What is kept from the run's options.
pub struct Show {
    /// Only IPv4 (4) or IPv6 (6), where the kernel could not filter.
    pub only_ip: Option<u8>,
    /// JSON lines.
    pub json: bool,
    /// Count per connection instead of printing rows (`-c`).
    pub count: bool,
    /// The TIME column.
    pub time: TimeColumn,
    /// The ids of the kernel_stack records (`-s`).
    pub stacks: Option<EventFormat>,
    /// The ids of the kprobe and kretprobe on tcp_send_loss_probe (`-l`).
    pub probes: Option<(u16, u16)>,
}

/// The sink: rows (each held until its stack, with `-s`) or counts.
pub struct Retransmits {
    fields: Fields,
    show: Show,
    /// The output.
    pub out: Output,
    held: HashMap<u32, (String, serde_json::Value)>,
    in_probe: HashMap<(u32, i32), u64>,
    syms: KernelSyms,
    /// Counts per connection: retransmits and tail loss probes.
    pub counts: HashMap<Conn, [u64; 2]>,
    /// Retransmits shown or counted.
    pub total: u64,
}

impl Retransmits {
    /// A sink of `fields`' events.
    pub fn new(fields: Fields, show: Show) -> Retransmits {
        Retransmits {
            fields,
            show,
            out: Output::new(),
            held: HashMap::new(),
            in_probe: HashMap::new(),
            syms: KernelSyms::on_demand(),
            counts: HashMap::new(),
            total: 0,
        }
    }

    /// The column headers (none in JSON or count mode).
    pub fn header(&mut self) -> Flow {
        if self.show.json || self.show.count {
            return Flow::Continue;
        }
        let h = format!(
            "{} {:<7} {:<2} {:<24} {:<2} {:<24} {}",
            self.show.time.header(),
            "PID",
            "IP",
            "LADDR:LPORT",
            "T>",
            "RADDR:RPORT",
            "STATE"
        );
        self.out.line(h.trim_end())
    }

    fn retransmit(&mut self, ev: &Event) -> Flow {
        let Some(r) = self.fields.decode(ev.data) else {
            return Flow::Continue;
        };
        if self.show.only_ip.is_some_and(|ip| ip != r.conn.ip()) {
            return Flow::Continue;
        }
        let kind = if self.in_probe.contains_key(&(ev.cpu, ev.pid)) {
            Kind::LossProbe
        } else {
            Kind::Retransmit
        };
        self.total += 1;
        if self.show.count {
            let c = self.counts.entry(r.conn).or_default();
            c[(kind == Kind::LossProbe) as usize] += 1;
            return Flow::Continue;
        }
        let state = r.state.map(state_name);
        let json = serde_json::json!({
            "ts": ev.ts,
            "pid": ev.pid,
            "ip": r.conn.ip(),
            "laddr": r.conn.local.0.to_string(),
            "lport": r.conn.local.1,
            "raddr": r.conn.remote.0.to_string(),
            "rport": r.conn.remote.1,
            "type": kind.letter().to_string(),
            "state": state,
            "err": r.err,
        });
        let text = format!(
            "{} {:<7} {:<2} {:<24} {}> {:<24} {}",
            self.show.time.cell(ev.ts),
            ev.pid,
            r.conn.ip(),
            endpoint(&r.conn.local),
            kind.letter(),
            endpoint(&r.conn.remote),
            state.as_deref().unwrap_or("-"),
        );
        let flow = self.release(ev.cpu);
        if self.show.stacks.is_some() {
            self.held.insert(ev.cpu, (text, json));
            return flow;
        }
        if flow == Flow::Stop {
            return flow;
        }
        self.emit(text, json, None)
    }

    fn emit(
        &mut self,
        text: String,
        mut json: serde_json::Value,
        stack: Option<Vec<String>>,
    ) -> Flow {
        if self.show.json {
            if let Some(s) = stack {
                json["kernel_stack"] = s.into();
            }
            return self.out.json(&json);
        }
        if self.out.line(text.trim_end()) == Flow::Stop {
            return Flow::Stop;
        }
        for f in stack.unwrap_or_default() {
            if self.out.line(&format!(" => {f}")) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Prints the row held on `cpu` (waiting for its stack), if any.
    fn release(&mut self, cpu: u32) -> Flow {
        match self.held.remove(&cpu) {
            Some((t, j)) => self.emit(t, j, None),
            None => Flow::Continue,
        }
    }

    /// Prints every held row (at the end of the run).
    pub fn release_all(&mut self) -> Flow {
        let mut cpus: Vec<u32> = self.held.keys().copied().collect();
        cpus.sort_unstable();
        for c in cpus {
            if self.release(c) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn stack(&mut self, fmt: &EventFormat, ev: &Event) -> Flow {
        let Some((text, json)) = self.held.remove(&ev.cpu) else {
            return Flow::Continue;
        };
        // The tracepoint's own frames are left out: the stack starts in
        // __tcp_retransmit_skb.
        let mut frames = Vec::new();
        for a in ftrace_common::buffer::stack::kernel_stack(fmt, ev.data) {
            if frames.is_empty() && tracing_frame(self.syms.get(a, false)) {
                continue;
            }
            frames.push(self.syms.short(a));
        }
        self.emit(text, json, Some(frames))
    }

    /// The counts (`-c`), the most retransmitted last; JSON: one object.
    pub fn print_counts(&mut self, probes: bool) -> Flow {
        let mut v: Vec<(&Conn, &[u64; 2])> = self.counts.iter().collect();
        v.sort_by(|a, b| (a.1[0] + a.1[1], a.0).cmp(&(b.1[0] + b.1[1], b.0)));
        if self.show.json {
            let flows: Vec<serde_json::Value> = v
                .iter()
                .map(|(c, n)| {
                    serde_json::json!({
                        "ip": c.ip(),
                        "laddr": c.local.0.to_string(), "lport": c.local.1,
                        "raddr": c.remote.0.to_string(), "rport": c.remote.1,
                        "retransmits": n[0] + n[1], "lossprobes": n[1],
                    })
                })
                .collect();
            let all = serde_json::json!({ "retransmits": self.total, "connections": flows });
            return self.out.json(&all);
        }
        let mut lines = vec![format!(
            "{:<26} {:<26} {:>11}{}",
            "LADDR:LPORT",
            "RADDR:RPORT",
            "RETRANSMITS",
            if probes { "  LOSSPROBES" } else { "" }
        )];
        for (c, n) in v {
            let mut l = format!(
                "{:<26} {:<26} {:>11}",
                endpoint(&c.local),
                endpoint(&c.remote),
                n[0] + n[1]
            );
            if probes {
                l.push_str(&format!("  {:>10}", n[1]));
            }
            lines.push(l);
        }
        for l in lines {
            if self.out.line(&l) == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

impl Sink for Retransmits {
    fn event(&mut self, ev: &Event) -> Flow {
        if ev.id == self.fields.id {
            return self.retransmit(ev);
        }
        if let Some(fmt) = self.show.stacks.as_ref().filter(|f| f.id == ev.id) {
            let fmt = fmt.clone();
            return self.stack(&fmt, ev);
        }
        if let Some((entry, ret)) = self.show.probes {
            // A tail loss probe: what it retransmits, on this CPU in this
            // task until it returns, is typed L.
            if ev.id == entry {
                *self.in_probe.entry((ev.cpu, ev.pid)).or_default() += 1;
            } else if ev.id == ret {
                if let Some(n) = self.in_probe.get_mut(&(ev.cpu, ev.pid)) {
                    *n -= 1;
                    if *n == 0 {
                        self.in_probe.remove(&(ev.cpu, ev.pid));
                    }
                }
            }
        }
        Flow::Continue
    }

    fn lost(&mut self, cpu: u32, count: Option<u64>) -> Flow {
        self.in_probe.clear();
        if self.show.count {
            return Flow::Continue;
        }
        if self.release(cpu) == Flow::Stop {
            return Flow::Stop;
        }
        self.out.lost_marker(cpu, count, self.show.json)
    }

    fn round_end(&mut self) -> Flow {
        // Retransmits may not come for a long time: a closed output
        // (`| head -1` after the header) must still end the run.
        if self.out.reader_gone() {
            return Flow::Stop;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// This format as Linux 6.18 has it (with `family`, `state`, `err`).
    const FORMAT_618: &str = "name: tcp_retransmit_skb
ID: 2281
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:32;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:34;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:38;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:42;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:58;\tsize:16;\tsigned:0;
\tfield:int err;\toffset:76;\tsize:4;\tsigned:1;

print fmt: \"skbaddr=%p\"
";

    /// As Linux 4.15 had it: no `state`, no `family`.
    const FORMAT_415: &str = "name: tcp_retransmit_skb
ID: 900
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:28;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:36;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:52;\tsize:16;\tsigned:0;

print fmt: \"skbaddr=%p\"
";

    fn record618(fam: u16, s4: [u8; 4], d6: Ipv6Addr, state: i32) -> Vec<u8> {
        let mut d = vec![0u8; 80];
        d[24..28].copy_from_slice(&state.to_ne_bytes());
        d[28..30].copy_from_slice(&5000u16.to_ne_bytes());
        d[30..32].copy_from_slice(&40000u16.to_ne_bytes());
        d[32..34].copy_from_slice(&fam.to_ne_bytes());
        d[34..38].copy_from_slice(&s4);
        d[38..42].copy_from_slice(&[127, 0, 0, 2]);
        d[42..58].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        d[58..74].copy_from_slice(&d6.octets());
        d
    }

    #[test]
    fn ipv4_and_ipv6_with_state() {
        let f = Fields::new(&EventFormat::parse(FORMAT_618).unwrap()).unwrap();
        assert!(f.has_family() && f.state.is_some());
        let r = f
            .decode(&record618(2, [127, 0, 0, 1], Ipv6Addr::LOCALHOST, 1))
            .unwrap();
        assert_eq!(endpoint(&r.conn.local), "127.0.0.1:5000");
        assert_eq!(endpoint(&r.conn.remote), "127.0.0.2:40000");
        assert_eq!(r.state.map(state_name).as_deref(), Some("ESTABLISHED"));
        assert_eq!(r.err, Some(0));
        let r = f
            .decode(&record618(10, [0; 4], "fe80::1".parse().unwrap(), 2))
            .unwrap();
        assert_eq!(r.conn.ip(), 6);
        assert_eq!(endpoint(&r.conn.local), "[::1]:5000");
        assert_eq!(endpoint(&r.conn.remote), "[fe80::1]:40000");
        assert_eq!(state_name(r.state.unwrap()), "SYN_SENT");
        assert_eq!(state_name(99), "STATE99");
        assert_eq!(state_name(-1), "STATE-1");
    }

    #[test]
    fn linux_6_1_has_no_err() {
        // 6.1's format is 6.18's without `err`.
        let text = FORMAT_618.replace("\tfield:int err;\toffset:76;\tsize:4;\tsigned:1;\n", "");
        let f = Fields::new(&EventFormat::parse(&text).unwrap()).unwrap();
        assert!(f.err.is_none() && f.has_family());
        let r = f
            .decode(&record618(2, [127, 0, 0, 1], Ipv6Addr::LOCALHOST, 4))
            .unwrap();
        assert_eq!(
            (r.err, state_name(r.state.unwrap()).as_str()),
            (None, "FIN_WAIT1")
        );
    }

    #[test]
    fn without_family_ipv4_is_told_by_mapped_addresses() {
        let f = Fields::new(&EventFormat::parse(FORMAT_415).unwrap()).unwrap();
        assert!(!f.has_family() && f.state.is_none());
        let mut d = vec![0u8; 68];
        d[24..26].copy_from_slice(&80u16.to_ne_bytes());
        d[28..32].copy_from_slice(&[10, 0, 0, 1]);
        d[32..36].copy_from_slice(&[10, 0, 0, 2]);
        let mapped = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped();
        d[36..52].copy_from_slice(&mapped.octets());
        let r = f.decode(&d).unwrap();
        assert_eq!(endpoint(&r.conn.local), "10.0.0.1:80");
        assert_eq!(r.state, None);
        d[36..52].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        d[52..68].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let r = f.decode(&d).unwrap();
        assert_eq!(endpoint(&r.conn.remote), "[::1]:0");
    }

    proptest! {
        #[test]
        fn decoding_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            for fmt in [FORMAT_618, FORMAT_415] {
                let f = Fields::new(&EventFormat::parse(fmt).unwrap()).unwrap();
                let _ = f.decode(&data);
            }
        }
    }
}
