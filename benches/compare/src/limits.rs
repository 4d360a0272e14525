//! The machine's limits, measured in the same process as the workloads so
//! the engines' figures can be read against them.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::engines::Result;
use crate::table::median;

/// What the machine can do at best.
#[derive(Debug)]
pub struct Limits {
    /// Median of 100 x (write 4 KiB + fdatasync) at one offset.
    pub fsync: Duration,
    /// Sequential write bandwidth in bytes/s, including the closing fsync.
    pub seq_write: f64,
    /// Bytes written for `seq_write`.
    pub seq_write_bytes: usize,
    /// memcpy bandwidth in bytes/s (best of 3 copies of 256 MiB).
    pub memcpy: f64,
    /// crc32fast throughput in bytes/s (best of 3 passes over 256 MiB).
    pub crc32: f64,
}

/// Size of the memcpy and CRC buffers.
const MEM_BYTES: usize = 256 << 20;

/// Measures everything in `dir` (a temporary directory on the disk under test).
pub fn measure(dir: &Path, scale: f64) -> Result<Limits> {
    let fsync = fsync_latency(dir)?;
    // 1 GiB at scale 1, never under 64 MiB so the page cache cannot hide it all.
    let seq_write_bytes = ((1u64 << 30) as f64 * scale).max((64u64 << 20) as f64) as usize;
    let seq_write = seq_write_bandwidth(dir, seq_write_bytes)?;
    let src = pattern(MEM_BYTES);
    let mut dst = vec![0u8; MEM_BYTES];
    let memcpy = best_of_3(MEM_BYTES, || {
        dst.copy_from_slice(&src);
        std::hint::black_box(&dst);
    });
    let crc32 = best_of_3(MEM_BYTES, || {
        std::hint::black_box(crc32fast::hash(&src));
    });
    Ok(Limits {
        fsync,
        seq_write,
        seq_write_bytes,
        memcpy,
        crc32,
    })
}

fn fsync_latency(dir: &Path) -> Result<Duration> {
    let mut file = File::create(dir.join("fsync.probe"))?;
    let block = [0x5au8; 4096];
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        let start = Instant::now();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(Duration::from_secs_f64(median(times).unwrap_or(0.0)))
}

fn seq_write_bandwidth(dir: &Path, bytes: usize) -> Result<f64> {
    let chunk = pattern(1 << 20);
    let path = dir.join("seq.probe");
    let mut file = File::create(&path)?;
    let start = Instant::now();
    let mut written = 0;
    while written < bytes {
        file.write_all(&chunk)?;
        written += chunk.len();
    }
    file.sync_all()?;
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(written as f64 / secs)
}

/// Bytes/s of the best of three runs of `f` over `bytes`.
fn best_of_3(bytes: usize, mut f: impl FnMut()) -> f64 {
    let best = (0..3)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    bytes as f64 / best
}

/// Non-constant bytes, so nothing downstream can shortcut them.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            // xorshift64: cheap and incompressible enough for LZ4.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

impl Limits {
    /// Prints the limits, one per line.
    pub fn print(&self) {
        println!("machine limits (same run):");
        println!(
            "  fsync latency (4 KiB write + fdatasync, median of 100): {:.0} us",
            self.fsync.as_secs_f64() * 1e6
        );
        println!(
            "  sequential write ({} MiB + fsync): {:.2} GB/s",
            self.seq_write_bytes >> 20,
            self.seq_write / 1e9
        );
        println!(
            "  memcpy (256 MiB, best of 3): {:.2} GB/s",
            self.memcpy / 1e9
        );
        println!(
            "  crc32fast (256 MiB, best of 3): {:.2} GB/s",
            self.crc32 / 1e9
        );
    }
}
