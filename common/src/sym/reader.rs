//! A `ReadRef` over a file that reads only the ranges asked for, with `pread`.
//!
//! Symbol lookup needs the headers, the symbol tables and their string tables:
//! a few hundred kilobytes of libc's 2 MB, and of a debug build's 100 MB. Reading
//! whole files would cost milliseconds we do not have (start-up target: 5 ms);
//! `mmap` would, but a file truncated under us (a rebuild, `cp` over it) would
//! raise SIGBUS and kill the tool with its probes still armed. `pread` into
//! owned buffers fails with an error instead.

use std::cell::RefCell;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use object::ReadRef;

/// Bytes read from one place in the file. Boxes never move once pushed, so
/// slices into them stay valid for the life of the reader.
struct Chunk {
    offset: u64,
    data: Box<[u8]>,
}

/// Longest string we look for outside of a preloaded range.
const STRING_PROBE: u64 = 4096;

/// A real file needs a few dozen reads; a damaged one (section headers that
/// all claim the whole file, names pointing anywhere) could ask for millions
/// and exhaust memory or time. Past these limits reads fail, and parsing
/// reports a malformed file.
const MAX_CHUNKS: usize = 4096;

pub(crate) struct FileReader {
    file: File,
    len: u64,
    chunks: RefCell<Vec<Chunk>>,
    /// Bytes that may still be read: a few times the file's size.
    budget: std::cell::Cell<u64>,
}

impl FileReader {
    pub(crate) fn new(file: File, len: u64) -> FileReader {
        FileReader {
            file,
            len,
            chunks: RefCell::new(Vec::new()),
            budget: std::cell::Cell::new(len.saturating_mul(3).saturating_add(1 << 20)),
        }
    }

    /// Reads `offset..offset+size` now, so that the many small reads that
    /// follow (string table entries) are served from memory. Clamped to the
    /// file; errors are left for the real reads to report.
    pub(crate) fn preload(&self, offset: u64, size: u64) {
        if offset >= self.len || size == 0 {
            return;
        }
        let size = size.min(self.len - offset);
        let _ = self.bytes_at(offset, size);
    }

    fn find(&self, offset: u64, size: u64) -> Option<&[u8]> {
        let chunks = self.chunks.borrow();
        for chunk in chunks.iter().rev() {
            let start = match offset.checked_sub(chunk.offset) {
                Some(s) => s,
                None => continue,
            };
            let end = match start.checked_add(size) {
                Some(e) => e,
                None => continue,
            };
            if end <= chunk.data.len() as u64 {
                let slice = &chunk.data[start as usize..end as usize];
                // SAFETY: the box behind `slice` is never dropped or moved
                // while `self` lives (chunks are only ever pushed), so the
                // borrow may outlive the `RefCell` guard.
                return Some(unsafe { std::mem::transmute::<&[u8], &[u8]>(slice) });
            }
        }
        None
    }

    /// The chunk that contains `offset`, from `offset` to the chunk's end.
    fn tail_at(&self, offset: u64) -> Option<&[u8]> {
        let chunks = self.chunks.borrow();
        for chunk in chunks.iter().rev() {
            if offset >= chunk.offset && offset - chunk.offset < chunk.data.len() as u64 {
                let slice = &chunk.data[(offset - chunk.offset) as usize..];
                // SAFETY: as in `find`.
                return Some(unsafe { std::mem::transmute::<&[u8], &[u8]>(slice) });
            }
        }
        None
    }

    fn bytes_at(&self, offset: u64, size: u64) -> Result<&[u8], ()> {
        if size == 0 {
            return Ok(&[]);
        }
        let end = offset.checked_add(size).ok_or(())?;
        if end > self.len {
            return Err(());
        }
        if let Some(s) = self.find(offset, size) {
            return Ok(s);
        }
        if size > self.budget.get() || self.chunks.borrow().len() >= MAX_CHUNKS {
            return Err(());
        }
        self.budget.set(self.budget.get() - size);
        let size_usize = usize::try_from(size).map_err(|_| ())?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(size_usize).map_err(|_| ())?;
        buf.resize(size_usize, 0);
        self.file.read_exact_at(&mut buf, offset).map_err(|_| ())?;
        self.chunks.borrow_mut().push(Chunk {
            offset,
            data: buf.into_boxed_slice(),
        });
        self.find(offset, size).ok_or(())
    }
}

impl<'a> ReadRef<'a> for &'a FileReader {
    fn len(self) -> Result<u64, ()> {
        Ok(self.len)
    }

    fn read_bytes_at(self, offset: u64, size: u64) -> Result<&'a [u8], ()> {
        self.bytes_at(offset, size)
    }

    fn read_bytes_at_until(self, range: Range<u64>, delimiter: u8) -> Result<&'a [u8], ()> {
        if range.start > range.end || range.end > self.len {
            return Err(());
        }
        let want = range.end - range.start;
        if let Some(tail) = self.tail_at(range.start) {
            let limit = (tail.len() as u64).min(want) as usize;
            if let Some(pos) = tail[..limit].iter().position(|&b| b == delimiter) {
                return Ok(&tail[..pos]);
            }
            if tail.len() as u64 >= want {
                return Err(());
            }
        }
        let size = want.min(STRING_PROBE);
        let bytes = self.bytes_at(range.start, size)?;
        match bytes.iter().position(|&b| b == delimiter) {
            Some(pos) => Ok(&bytes[..pos]),
            None => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_ranges_and_strings() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello\0world\0tail").unwrap();
        let r = FileReader::new(f, 16);
        let r = &r;
        assert_eq!(r.read_bytes_at(6, 5).unwrap(), b"world");
        assert_eq!(r.read_bytes_at_until(0..16, 0).unwrap(), b"hello");
        r.preload(6, 100);
        assert_eq!(r.read_bytes_at_until(6..16, 0).unwrap(), b"world");
        assert_eq!(r.read_bytes_at_until(12..16, 0), Err(()));
        assert_eq!(r.read_bytes_at(10, 7), Err(()));
        assert_eq!(r.read_bytes_at(u64::MAX, 2), Err(()));
        assert_eq!(r.read_bytes_at(3, 0).unwrap(), b"");
    }

    #[test]
    fn reads_are_bounded() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 1000]).unwrap();
        let r = FileReader::new(f, 1000);
        let r = &r;
        // Distinct ranges until the chunk limit: then reads fail.
        let mut ok = 0;
        for i in 0..MAX_CHUNKS as u64 + 10 {
            if r.read_bytes_at(i % 900, 1 + i / 900).is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, MAX_CHUNKS);
        // Already-read ranges are still served.
        assert_eq!(r.read_bytes_at(0, 1).unwrap(), &[7]);
        // The byte budget: a few times the file.
        let f = tempfile::tempfile().unwrap();
        f.set_len(1 << 20).unwrap();
        let r = FileReader::new(f, 1 << 20);
        let r = &r;
        let mut read = 0u64;
        for i in (0..10).rev() {
            // Each starts before the last, so none is served from memory.
            if r.read_bytes_at(i, (1 << 20) - i).is_ok() {
                read += 1;
            }
        }
        assert_eq!(read, 4);
    }
}
