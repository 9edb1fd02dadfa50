//! Test support shared by the crates' own tests (feature `testing`): things a test needs
//! from the machine, done one way.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted at a directory, unmounted on drop: a real filesystem
/// that fills up, for the full-disk tests. Mounting needs root (as CI runs); without it
/// [`SmallFs::mount`] panics with the reason, so the test fails loudly instead of skipping.
#[derive(Debug)]
pub struct SmallFs(PathBuf);

impl SmallFs {
    /// Creates `dir` if needed and mounts a tmpfs of `size` (`mount -o size=`, as `8m`) on it.
    pub fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test fills a small tmpfs and needs root to mount it: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
