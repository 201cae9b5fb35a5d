//! The records of function_graph (`funcgraph_entry`, `funcgraph_exit`) and
//! the scheduler events funcgraph reads beside them, decoded by the field
//! offsets of this kernel's formats.

use crate::buffer::format::{EventFormat, Field};
use crate::buffer::reader::Event;
use crate::graph::tree::Rec;
use crate::Result;

/// Field offsets of the records.
pub struct Decoder {
    entry_id: u16,
    exit_id: u16,
    switch_id: Option<u16>,
    e_func: Field,
    e_depth: Field,
    x_func: Field,
    x_depth: Field,
    x_overrun: Field,
    x_calltime: Field,
    x_rettime: Field,
    x_retval: Option<Field>,
    s_prev: Option<Field>,
    s_next: Option<Field>,
    /// sched_process_exec: a task's new name.
    exec_id: Option<u16>,
    exec_filename: Option<Field>,
}

impl Decoder {
    /// A decoder for these formats of funcgraph_entry, funcgraph_exit
    /// and (for on-CPU time) sched_switch.
    pub fn new(
        entry: &EventFormat,
        exit: &EventFormat,
        switch: Option<&EventFormat>,
    ) -> Result<Decoder> {
        Ok(Decoder {
            entry_id: entry.id,
            exit_id: exit.id,
            switch_id: switch.map(|s| s.id),
            e_func: entry.require("func")?.clone(),
            e_depth: entry.require("depth")?.clone(),
            x_func: exit.require("func")?.clone(),
            x_depth: exit.require("depth")?.clone(),
            x_overrun: exit.require("overrun")?.clone(),
            x_calltime: exit.require("calltime")?.clone(),
            x_rettime: exit.require("rettime")?.clone(),
            x_retval: exit.field("retval").cloned(),
            s_prev: switch.map(|s| s.require("prev_pid").cloned()).transpose()?,
            s_next: switch.map(|s| s.require("next_pid").cloned()).transpose()?,
            exec_id: None,
            exec_filename: None,
        })
    }

    /// Also decode `sched_process_exec` (task names).
    pub fn with_exec(mut self, exec: Option<&EventFormat>) -> Decoder {
        if let Some(f) = exec.and_then(|e| e.field("filename").map(|fl| (e.id, fl.clone()))) {
            self.exec_id = Some(f.0);
            self.exec_filename = Some(f.1);
        }
        self
    }

    /// The name a task takes from an exec event: the file's last
    /// component, cut to 15 bytes as the kernel's comm is.
    pub fn exec_name(&self, ev: &Event) -> Option<String> {
        if Some(ev.id) != self.exec_id {
            return None;
        }
        let path = self.exec_filename.as_ref()?.str(ev.data)?;
        let base = path.rsplit('/').next().unwrap_or(&path);
        let mut end = base.len().min(15);
        while !base.is_char_boundary(end) {
            end -= 1;
        }
        Some(base[..end].to_string())
    }

    /// The record of an event, with its function address; `None` for
    /// anything else (or a record too short for its fields).
    pub fn decode(&self, ev: &Event, want_retval: bool) -> Option<(Rec, u64)> {
        let d = ev.data;
        if ev.id == self.entry_id {
            let func = self.e_func.u64(d)?;
            return Some((
                Rec::Entry {
                    cpu: ev.cpu,
                    ts: ev.ts,
                    pid: ev.pid,
                    func: 0,
                    depth: self.e_depth.i64(d)?,
                },
                func,
            ));
        }
        if ev.id == self.exit_id {
            let func = self.x_func.u64(d)?;
            let retval = if want_retval {
                self.x_retval.as_ref().and_then(|f| f.u64(d))
            } else {
                None
            };
            return Some((
                Rec::Exit {
                    cpu: ev.cpu,
                    ts: ev.ts,
                    pid: ev.pid,
                    func: 0,
                    depth: self.x_depth.i64(d)?,
                    overrun: self.x_overrun.u64(d)? as u32,
                    calltime: self.x_calltime.u64(d)?,
                    rettime: self.x_rettime.u64(d)?,
                    retval,
                },
                func,
            ));
        }
        if Some(ev.id) == self.switch_id {
            return Some((
                Rec::Switch {
                    cpu: ev.cpu,
                    ts: ev.ts,
                    prev: self.s_prev.as_ref()?.i64(d)? as i32,
                    next: self.s_next.as_ref()?.i64(d)? as i32,
                },
                0,
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_events_name_tasks() {
        let e = EventFormat::parse("name: funcgraph_entry\nID: 11\nformat:\n\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n").unwrap();
        let x = EventFormat::parse("name: funcgraph_exit\nID: 10\nformat:\n\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n\tfield:unsigned int overrun;\toffset:20;\tsize:4;\tsigned:0;\n\tfield:unsigned long long calltime;\toffset:24;\tsize:8;\tsigned:0;\n\tfield:unsigned long long rettime;\toffset:32;\tsize:8;\tsigned:0;\n").unwrap();
        let ex = EventFormat::parse("name: sched_process_exec\nID: 300\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n").unwrap();
        let d = Decoder::new(&e, &x, None).unwrap().with_exec(Some(&ex));
        let path = b"/usr/bin/a-very-long-program-name\0";
        let mut data = vec![0u8; 16];
        data[0..2].copy_from_slice(&300u16.to_ne_bytes());
        let loc = 16u32 | ((path.len() as u32) << 16);
        data[8..12].copy_from_slice(&loc.to_ne_bytes());
        data.extend_from_slice(path);
        let ev = Event::from_record(0, 1, &data).unwrap();
        assert!(d.decode(&ev, false).is_none());
        assert_eq!(d.exec_name(&ev).as_deref(), Some("a-very-long-pro"));
        data[0..2].copy_from_slice(&301u16.to_ne_bytes());
        let ev = Event::from_record(0, 1, &data).unwrap();
        assert!(d.exec_name(&ev).is_none());
    }

    #[test]
    fn records_decode_by_format() {
        let dir = env!("CARGO_MANIFEST_DIR");
        for k in ["debian-6.1", "debian-6.12", "host-6.18"] {
            let base = format!("{dir}/testdata/kernels/{k}/events/ftrace");
            let e = EventFormat::parse(
                &std::fs::read_to_string(format!("{base}/funcgraph_entry/format")).unwrap(),
            )
            .unwrap();
            let x = EventFormat::parse(
                &std::fs::read_to_string(format!("{base}/funcgraph_exit/format")).unwrap(),
            )
            .unwrap();
            let d = Decoder::new(&e, &x, None).unwrap();
            let mut data = vec![0u8; 40];
            data[0..2].copy_from_slice(&x.id.to_ne_bytes());
            data[4..8].copy_from_slice(&77i32.to_ne_bytes());
            data[8..16].copy_from_slice(&0xffff_ffff_8100_0000u64.to_ne_bytes());
            data[16..20].copy_from_slice(&3i32.to_ne_bytes());
            data[24..32].copy_from_slice(&100u64.to_ne_bytes());
            data[32..40].copy_from_slice(&250u64.to_ne_bytes());
            let ev = Event::from_record(1, 9, &data).unwrap();
            let (r, addr) = d.decode(&ev, true).unwrap();
            assert_eq!(addr, 0xffff_ffff_8100_0000);
            assert_eq!(
                r,
                Rec::Exit {
                    cpu: 1,
                    ts: 9,
                    pid: 77,
                    func: 0,
                    depth: 3,
                    overrun: 0,
                    calltime: 100,
                    rettime: 250,
                    retval: None
                },
                "{k}"
            );
            // A record cut short decodes to nothing.
            let ev = Event::from_record(1, 9, &data[..30]).unwrap();
            assert!(d.decode(&ev, true).is_none());
        }
        // A kernel with funcgraph-retval (6.5+): the field is read.
        let x = EventFormat::parse("name: funcgraph_exit\nID: 10\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned long retval;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:int depth;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:unsigned int overrun;\toffset:28;\tsize:4;\tsigned:0;\n\tfield:unsigned long long calltime;\toffset:32;\tsize:8;\tsigned:0;\n\tfield:unsigned long long rettime;\toffset:40;\tsize:8;\tsigned:0;\n\nprint fmt: \"\"\n").unwrap();
        let e = EventFormat::parse("name: funcgraph_entry\nID: 11\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned long func;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int depth;\toffset:16;\tsize:4;\tsigned:1;\n\nprint fmt: \"\"\n").unwrap();
        let d = Decoder::new(&e, &x, None).unwrap();
        let mut data = vec![0u8; 48];
        data[0..2].copy_from_slice(&10u16.to_ne_bytes());
        data[16..24].copy_from_slice(&(-2i64 as u64).to_ne_bytes());
        let ev = Event::from_record(0, 1, &data).unwrap();
        match d.decode(&ev, true).unwrap().0 {
            Rec::Exit { retval, .. } => assert_eq!(retval, Some(-2i64 as u64)),
            r => panic!("{r:?}"),
        }
    }
}
