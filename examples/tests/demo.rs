//! The demo binary runs end to end: two deals active, four verified retrievals.

use std::process::Command;

#[test]
fn demo_completes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args([
            "--online-size",
            "400000",
            "--offline-size",
            "250000",
            "--timeout",
            "120",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("online deal active on chain"), "{stdout}");
    assert!(stdout.contains("offline deal active on chain"), "{stdout}");
    assert_eq!(
        stdout.matches("exported file = original").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("demo complete"));
    // The retrieved files are the originals.
    for name in ["online", "offline"] {
        assert_eq!(
            std::fs::read(dir.path().join(format!("retrieved/{name}.bin"))).unwrap(),
            std::fs::read(dir.path().join(format!("data/{name}.bin"))).unwrap()
        );
    }
}
