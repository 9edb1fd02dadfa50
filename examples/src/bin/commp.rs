//! `commp`: piece commitment of a file or of standard input.
//!
//! Prints piece CID v1 and v2, payload size and padded size, then the throughput. Shows a
//! progress bar when standard error is a terminal and the input is large.
//!
//! ```text
//! cargo run --release -p examples --bin commp -- path/to/file.car
//! cat file.car | cargo run --release -p examples --bin commp
//! ```

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use commp::{Backend, CommP, PaddedPieceSize, ShortPayload};
use indicatif::{ProgressBar, ProgressStyle};

/// Computes the Filecoin piece commitment (commP) of a file or of standard input.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    log: examples::cli::LogArgs,
    /// File to hash; standard input when absent or "-".
    file: Option<PathBuf>,
    /// Pad the piece up to this padded size (bytes, a power of two) instead of the
    /// smallest that fits, as a deal proposing a larger piece requires.
    #[arg(long, value_name = "BYTES")]
    padded_size: Option<u64>,
    /// Accept payloads shorter than 65 bytes (FRC-0069 zero padding) instead of refusing
    /// them as go-fil-commp-hashhash does.
    #[arg(long)]
    allow_short: bool,
    /// Hashing backend; `auto` picks the fastest this CPU supports.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// Threads to hash on; 0 (the default) uses every core. Any count gives the same commP.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    Auto,
    Portable,
    Shani,
    Avx512,
}

/// Inputs at least this large get a progress bar on a terminal.
const PROGRESS_THRESHOLD: u64 = 64 << 20;
const READ_CHUNK: usize = 4 << 20;

fn main() -> ExitCode {
    market_core::process::limit_malloc_arenas();
    let args = Args::parse();
    examples::cli::init_tracing("error", args.log.log_format);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("commp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let target = args.padded_size.map(PaddedPieceSize::new).transpose()?;
    let mut hasher = CommP::new().with_threads(args.threads);
    hasher = match args.backend {
        BackendArg::Auto => hasher,
        BackendArg::Portable => hasher.with_backend(Backend::Portable)?,
        BackendArg::Shani => hasher.with_backend(Backend::ShaNi)?,
        BackendArg::Avx512 => hasher.with_backend(Backend::Avx512)?,
    };
    if args.allow_short {
        hasher = hasher.with_short_payload(ShortPayload::ZeroPad);
    }
    tracing::debug!(backend = ?hasher.backend(), threads = hasher.threads(), "hashing");

    let (mut input, len): (Box<dyn Read>, Option<u64>) = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let len = file.metadata()?.len();
            (Box::new(file), Some(len))
        }
        _ => (Box::new(io::stdin().lock()), None),
    };
    let show = !args.no_progress
        && io::stderr().is_terminal()
        && len.is_none_or(|l| l >= PROGRESS_THRESHOLD);
    let bar = show.then(|| progress_bar(len));

    let start = Instant::now();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        hasher.update(&buf[..n]);
        if let Some(bar) = &bar {
            bar.inc(n as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let threads = hasher.threads();
    let piece = match target {
        Some(size) => hasher.finish_padded_to(size)?,
        None => hasher.finish()?,
    };
    let elapsed = start.elapsed().max(Duration::from_micros(1));

    println!("piece CID v1:  {}", piece.cid_v1());
    println!("piece CID v2:  {}", piece.cid_v2());
    println!("payload size:  {} bytes", piece.payload_size);
    println!("padded size:   {} bytes", piece.padded_size.get());
    eprintln!(
        "hashed {} bytes on {} thread(s) in {:.3} s ({:.1} MB/s)",
        piece.payload_size,
        threads,
        elapsed.as_secs_f64(),
        piece.payload_size as f64 / elapsed.as_secs_f64() / 1e6
    );
    if let Some(kib) = peak_rss_kib() {
        eprintln!("peak memory:   {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}

fn progress_bar(len: Option<u64>) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{bar:40.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Peak resident set size of this process (Linux), for the memory bound of streaming.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
