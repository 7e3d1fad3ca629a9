//! I/O that bypasses the page cache, so a monitor sees the device and not a cached copy:
//! an O_DIRECT read of a device's first block, and an O_DIRECT write + fsync + read-back of a
//! status file. O_DIRECT needs buffers, offsets and lengths aligned to the logical block size;
//! 4 KiB suits every block size Linux supports (512 B to 4 KiB).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const BLOCK: usize = 4096;

/// A 4 KiB-aligned block inside a larger vector (no unsafe allocation needed).
struct AlignedBlock {
    buf: Vec<u8>,
    offset: usize,
}

impl AlignedBlock {
    fn new() -> Self {
        let buf = vec![0u8; BLOCK * 2];
        let offset = buf.as_ptr().align_offset(BLOCK);
        AlignedBlock { buf, offset }
    }
    fn get(&mut self) -> &mut [u8] {
        &mut self.buf[self.offset..self.offset + BLOCK]
    }
}

/// Reads the first 4 KiB of `device` with O_DIRECT.
pub fn read_first_block(device: &Path) -> io::Result<()> {
    let mut file = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(device)?;
    let mut block = AlignedBlock::new();
    let n = file.read(block.get())?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the device is empty"));
    }
    Ok(())
}

/// Writes `content` (padded to one block) to `path` with O_DIRECT, fsyncs it, reads it back
/// with O_DIRECT and compares. Filesystems without O_DIRECT (tmpfs) get a synchronous
/// buffered write instead. Returns whether O_DIRECT was used.
pub fn write_and_verify(path: &Path, content: &[u8]) -> io::Result<bool> {
    let mut block = AlignedBlock::new();
    let len = content.len().min(BLOCK);
    block.get()[..len].copy_from_slice(&content[..len]);
    let open_write = |direct: bool| {
        let flags = if direct { libc::O_DIRECT | libc::O_DSYNC } else { libc::O_DSYNC };
        OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).custom_flags(flags).open(path)
    };
    let (mut file, direct) = match open_write(true) {
        Ok(f) => (f, true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (open_write(false)?, false),
        Err(e) => return Err(e),
    };
    let written = file.write(block.get())?;
    if written != BLOCK {
        return Err(io::Error::new(io::ErrorKind::WriteZero, format!("short write: {written} of {BLOCK} bytes")));
    }
    file.sync_all()?;
    drop(file);

    let mut reader =
        if direct { OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path)? } else { File::open(path)? };
    let mut back = AlignedBlock::new();
    let n = reader.read(back.get())?;
    let expected = block.get().to_vec();
    if n != BLOCK || back.get() != expected.as_slice() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the status file read back differs from what was written",
        ));
    }
    Ok(direct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned() {
        let mut b = AlignedBlock::new();
        assert_eq!(b.get().as_ptr() as usize % BLOCK, 0);
        assert_eq!(b.get().len(), BLOCK);
    }

    #[test]
    fn writes_and_reads_back_a_status_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status");
        write_and_verify(&path, b"resource-1 node-a\n").unwrap();
        let text = std::fs::read(&path).unwrap();
        assert!(text.starts_with(b"resource-1 node-a\n"));
        assert_eq!(text.len(), BLOCK);
        assert!(write_and_verify(&dir.path().join("no/such/dir/status"), b"x").is_err());
    }
}
