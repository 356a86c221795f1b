//! The machine: cores, the process's memory, the clock, and the cost of one
//! durable atomic file write.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::stats::median;

/// Bytes of the file written by [`atomic_write_us`].
pub const ATOMIC_WRITE_BYTES: usize = 4096;
/// Repetitions of [`atomic_write_us`].
pub const ATOMIC_WRITE_REPS: usize = 50;

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The system clock in whole seconds: the HTTP server's own clock, so the
/// wallets' times and the server's agree.
pub use offpay_server::api::now;

/// Resident memory of this process: `(VmRSS, VmHWM)` in MiB, from
/// `/proc/self/status` (`None` where there is no such file).
pub fn rss_mib() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// One atomic durable write of `data` to `dir/name`, as the sealed vault
/// does it: write `name.tmp`, fsync it, rename it over `name`, fsync the directory.
pub fn atomic_write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Times [`atomic_write`]s of [`ATOMIC_WRITE_BYTES`] in a directory one at a
/// time, so that the samples can be spread over a period of other work.
#[derive(Debug)]
pub struct AtomicWriteProbe {
    dir: PathBuf,
    data: Vec<u8>,
    samples: Vec<f64>,
}

impl AtomicWriteProbe {
    /// File name of the probe in its directory.
    pub const FILE: &'static str = "bench-atomic";

    /// A probe writing in `dir` (one untimed write first).
    pub fn new(dir: &Path) -> std::io::Result<AtomicWriteProbe> {
        let data = vec![0x5au8; ATOMIC_WRITE_BYTES];
        atomic_write(dir, Self::FILE, &data)?;
        Ok(AtomicWriteProbe {
            dir: dir.to_path_buf(),
            data,
            samples: Vec::with_capacity(ATOMIC_WRITE_REPS),
        })
    }

    /// Time one write.
    pub fn sample(&mut self) -> std::io::Result<()> {
        let t = Instant::now();
        atomic_write(&self.dir, Self::FILE, &self.data)?;
        self.samples.push(t.elapsed().as_secs_f64() * 1e6);
        Ok(())
    }

    /// Writes timed so far.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// Remove the file; the median write in microseconds.
    pub fn finish(self) -> std::io::Result<f64> {
        std::fs::remove_file(self.dir.join(Self::FILE))?;
        Ok(median(&self.samples).unwrap_or(f64::NAN))
    }
}

/// Median cost of one [`atomic_write`] of [`ATOMIC_WRITE_BYTES`] in `dir`,
/// over [`ATOMIC_WRITE_REPS`] writes in a row, in microseconds.
pub fn atomic_write_us(dir: &Path) -> std::io::Result<f64> {
    let mut p = AtomicWriteProbe::new(dir)?;
    for _ in 0..ATOMIC_WRITE_REPS {
        p.sample()?;
    }
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_atomic_writes() {
        if cfg!(target_os = "linux") {
            let (rss, hwm) = rss_mib().unwrap();
            assert!(rss > 0.0 && hwm >= rss * 0.5, "{rss} {hwm}");
        }
        let d = tempfile::tempdir().unwrap();
        assert!(atomic_write_us(d.path()).unwrap() > 0.0);
        assert!(!d.path().join("bench-atomic").exists());
        assert!(!d.path().join("bench-atomic.tmp").exists());
    }
}
