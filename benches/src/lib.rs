//! Shared input generators and baselines for the workspace's criterion benchmarks.
//!
//! The benchmarks themselves live in `benches/`; run them with
//! `cargo bench -p benches --bench commp`.

pub mod baseline;

/// SplitMix64 bytes (the generator of the spec's benchmark vectors), `len` bytes from `seed`.
pub fn splitmix64_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut s = seed;
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `len` SplitMix64 bytes to `path`, 8 MiB at a time (seeds `seed`, `seed + 1`, …),
/// so a benchmark payload of any size never sits in memory whole.
pub fn write_splitmix64_file(path: &std::path::Path, len: u64, seed: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let (mut left, mut seed) = (len, seed);
    while left > 0 {
        let n = left.min(8 << 20);
        f.write_all(&splitmix64_bytes(seed, n as usize))?;
        left -= n;
        seed += 1;
    }
    f.flush()
}

/// The process's peak resident set (VmHWM) in MiB; 0 where `/proc` is unavailable.
pub fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// The median time (ns) criterion recorded for `group/id/param` in this run, read from its
/// `estimates.json` under `target/criterion` (or `CRITERION_HOME`); `None` if absent.
pub fn median_ns(group: &str, id: &str, param: &str) -> Option<f64> {
    let home = match std::env::var_os("CRITERION_HOME") {
        Some(h) => std::path::PathBuf::from(h),
        None => target_dir()?.join("criterion"),
    };
    let path = home
        .join(group)
        .join(id)
        .join(param)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The cargo target directory this benchmark binary was built in.
fn target_dir() -> Option<std::path::PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(t.into());
    }
    // target/<profile>/deps/<bench binary>
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.to_path_buf())
}

/// Builds the Go peer program `benches/go/<name>` (modules from the Go module proxy, pinned
/// by its go.mod and go.sum) into the target directory and returns the binary's path.
pub fn go_peer(name: &str) -> std::io::Result<std::path::PathBuf> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("go")
        .join(name);
    let out = target_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("go-peers")
        .join(name);
    let status = std::process::Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .status()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("running `go build` in {}: {e}", src.display()),
            )
        })?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "`go build` in {} failed ({status})",
            src.display()
        )));
    }
    Ok(out)
}
