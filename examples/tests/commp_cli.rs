//! The `commp` binary on files and standard input, including the constant-memory bound on
//! a 4 GiB stream.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_commp");

/// FRC-0069's worked example: 127 bytes each of 0, 1, 2, 3.
fn quads() -> Vec<u8> {
    (0u8..4).flat_map(|b| [b; 127]).collect()
}

fn run_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that rejects its arguments exits without reading; its pipe then breaks.
    if let Err(e) = child.stdin.take().unwrap().write_all(input) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

#[test]
fn file_and_stdin_print_both_cids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quads.bin");
    std::fs::write(&path, quads()).unwrap();
    let from_file = Command::new(BIN).arg(&path).output().unwrap();
    assert!(from_file.status.success(), "{from_file:?}");
    let out = String::from_utf8(from_file.stdout).unwrap();
    assert!(
        out.contains(
            "piece CID v1:  baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "piece CID v2:  bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"
        ),
        "{out}"
    );
    assert!(out.contains("payload size:  508 bytes"));
    assert!(out.contains("padded size:   512 bytes"));
    let from_stdin = run_stdin(&[], &quads());
    assert_eq!(String::from_utf8(from_stdin.stdout).unwrap(), out);
}

#[test]
fn short_payload_and_bad_size_fail_clearly() {
    let short = run_stdin(&[], b"tiny");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("below the 65-byte minimum"));
    let allowed = run_stdin(&["--allow-short"], b"tiny");
    assert!(allowed.status.success());
    let bad = run_stdin(&["--padded-size", "1000"], &quads());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a power of two"));
    let grown = run_stdin(&["--padded-size", "2048"], &quads());
    assert!(String::from_utf8_lossy(&grown.stdout).contains("padded size:   2048 bytes"));
}

#[test]
fn four_gib_stream_stays_under_64_mib() {
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![0xA5u8; 1 << 20];
    for _ in 0..4096 {
        stdin.write_all(&chunk).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("padded size:   8589934592 bytes"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let peak: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak memory:"))
        .expect("peak memory reported on Linux")
        .trim()
        .trim_end_matches(" MiB")
        .parse()
        .unwrap();
    assert!(peak < 64.0, "peak RSS {peak} MiB");
}
