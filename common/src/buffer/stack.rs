//! Decoding the stack-trace records that follow an event when the instance
//! option `stacktrace` (kernel) or `userstacktrace` (user) is set.
//!
//! `ftrace:kernel_stack` has `int size` (the number of entries) and
//! `unsigned long caller[]`; `ftrace:user_stack` has `unsigned int tgid` and
//! a fixed `caller[8]` ended early by a zero.

use crate::buffer::format::EventFormat;

fn callers(fmt: &EventFormat, data: &[u8], limit: Option<usize>) -> Vec<u64> {
    let Some(f) = fmt.field("caller") else {
        return Vec::new();
    };
    let elem = match f.kind {
        crate::buffer::format::FieldKind::Array { elem, .. } if elem == 4 || elem == 8 => elem,
        _ => 8,
    };
    let avail = data.len().saturating_sub(f.offset) / elem;
    let n = limit.map(|l| l.min(avail)).unwrap_or(avail);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let off = f.offset + i * elem;
        let Some(b) = data.get(off..off + elem) else {
            break;
        };
        let v = if elem == 8 {
            u64::from_ne_bytes(b.try_into().expect("8 bytes"))
        } else {
            u32::from_ne_bytes(b.try_into().expect("4 bytes")) as u64
        };
        out.push(v);
    }
    out
}

/// The return addresses of a `kernel_stack` record, innermost first.
pub fn kernel_stack(fmt: &EventFormat, data: &[u8]) -> Vec<u64> {
    let size = fmt
        .field("size")
        .and_then(|f| f.i64(data))
        .filter(|n| *n >= 0)
        .map(|n| n as usize);
    let mut v = callers(fmt, data, size);
    // Older kernels pad unused entries with ULONG_MAX or 0.
    while matches!(v.last(), Some(0) | Some(&u64::MAX)) {
        v.pop();
    }
    v
}

/// The process and return addresses of a `user_stack` record.
pub fn user_stack(fmt: &EventFormat, data: &[u8]) -> (u32, Vec<u64>) {
    let tgid = fmt.field("tgid").and_then(|f| f.u64(data)).unwrap_or(0) as u32;
    let mut v = callers(fmt, data, None);
    if let Some(end) = v.iter().position(|&a| a == 0 || a == u64::MAX) {
        v.truncate(end);
    }
    (tgid, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KSTACK: &str = "name: kernel_stack\nID: 4\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:int size;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;\n";
    const USTACK: &str = "name: user_stack\nID: 13\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned int tgid;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;\n";

    #[test]
    fn kernel_stacks_use_their_size_and_may_be_longer_than_eight() {
        let f = EventFormat::parse(KSTACK).unwrap();
        let mut data = vec![0u8; 16 + 10 * 8];
        data[8..12].copy_from_slice(&10i32.to_ne_bytes());
        for i in 0..10u64 {
            data[16 + i as usize * 8..24 + i as usize * 8]
                .copy_from_slice(&(0xffff_0000 + i).to_ne_bytes());
        }
        let s = kernel_stack(&f, &data);
        assert_eq!(s.len(), 10);
        assert_eq!(s[9], 0xffff_0009);
        // A size larger than the record is clamped.
        data[8..12].copy_from_slice(&1000i32.to_ne_bytes());
        assert_eq!(kernel_stack(&f, &data).len(), 10);
        data[8..12].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(kernel_stack(&f, &data[..20]).len(), 0);
    }

    #[test]
    fn user_stacks_end_at_zero() {
        let f = EventFormat::parse(USTACK).unwrap();
        let mut data = vec![0u8; 80];
        data[8..12].copy_from_slice(&77u32.to_ne_bytes());
        data[16..24].copy_from_slice(&0x401000u64.to_ne_bytes());
        data[24..32].copy_from_slice(&0x402000u64.to_ne_bytes());
        assert_eq!(user_stack(&f, &data), (77, vec![0x401000, 0x402000]));
    }
}
