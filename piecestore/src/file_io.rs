//! Positional file I/O on the hot paths without extra copies: reads into fresh buffers that
//! become the bytes sent ([`read_bytes_at`]), writes straight from network frames
//! ([`write_frames_at`]), and early writeback so that the fsync which makes received bytes
//! durable has little left to do ([`start_writeback`]).
//!
//! Without a hint the kernel keeps freshly written pages dirty until its background
//! threshold (10% of memory) or their 30 s expiry, so a 1 GiB transfer on a machine with
//! 24 GiB of memory reaches its final fsync with the whole gigabyte still to write, and the
//! disk sits idle while the network is busy. [`start_writeback`] hands each written range to
//! the disk at once, so writing overlaps receiving.

use std::fs::File;
use std::io::{self, IoSlice};

use bytes::Bytes;

/// `len` bytes at `offset`, read into a buffer that is not zeroed first (the caller then
/// owns it as [`Bytes`]). Fails with `UnexpectedEof` if the file ends before.
pub fn read_bytes_at(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let at = offset + data.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut data), at) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The spare capacity may have been larger than asked for.
    data.truncate(len);
    Ok(Bytes::from(data))
}

/// At most this many buffers per `pwritev` (Linux's `IOV_MAX` is 1024).
const MAX_SLICES: usize = 512;

/// Writes `frames` back to back at `offset`, without first copying them into one buffer.
pub fn write_frames_at(file: &File, frames: &[Bytes], mut offset: u64) -> io::Result<()> {
    let mut frames = frames;
    // Bytes of `frames[0]` already written by a short write.
    let mut skip = 0usize;
    while let Some(first) = frames.first() {
        if skip == first.len() {
            frames = &frames[1..];
            skip = 0;
            continue;
        }
        let slices: Vec<IoSlice<'_>> = std::iter::once(&first[skip..])
            .chain(frames[1..].iter().map(|b| &b[..]))
            .take(MAX_SLICES)
            .map(IoSlice::new)
            .collect();
        let mut n = match rustix::io::pwritev(file, &slices, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        offset += n as u64;
        // Step over what was written: whole frames, then part of the next.
        while n > 0 {
            let left = frames[0].len() - skip;
            if n >= left {
                n -= left;
                frames = &frames[1..];
                skip = 0;
            } else {
                skip += n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Asks the kernel to start writing `len` bytes at `offset` to disk now, without waiting
/// for them (`sync_file_range(SYNC_FILE_RANGE_WRITE)`). Only a hint: durability still
/// comes from fsync, and where the call is missing or fails nothing changes but the timing.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: the descriptor is borrowed from a `File` that outlives the call, and
        // sync_file_range reads no memory of ours.
        let _ = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn frames_land_back_to_back_at_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        // More frames than one pwritev takes, of uneven sizes, some empty.
        let frames: Vec<Bytes> = (0..1300u32)
            .map(|i| Bytes::from(vec![(i % 251) as u8; (i % 7) as usize * 3]))
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|b| b.iter().copied()).collect();
        write_frames_at(&file, &frames, 100).unwrap();
        start_writeback(&file, 100, expected.len() as u64);
        let mut got = vec![0u8; expected.len()];
        file.read_exact_at(&mut got, 100).unwrap();
        assert_eq!(got, expected);
        assert_eq!(file.metadata().unwrap().len(), 100 + expected.len() as u64);
    }

    #[test]
    fn reads_return_exactly_the_range_or_eof() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(read_bytes_at(&file, 0, 10_000).unwrap(), bytes[..]);
        assert_eq!(read_bytes_at(&file, 9_000, 1_000).unwrap(), bytes[9_000..]);
        assert!(read_bytes_at(&file, 1, 0).unwrap().is_empty());
        let eof = read_bytes_at(&file, 9_000, 1_001).unwrap_err();
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn no_frames_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("f")).unwrap();
        write_frames_at(&file, &[], 0).unwrap();
        write_frames_at(&file, &[Bytes::new()], 5).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 0);
    }
}
