//! Test support (feature `testing`): a real S3 server for the S3 piece store's tests, and
//! the conformance suite every [`PieceIndex`](crate::PieceIndex) backend runs.

mod index_conformance;

pub use index_conformance::{car_piece, piece_index_conformance, raw_cid};

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::S3Config;

/// The s3s-fs binary: `S3S_FS` if set, else where `scripts/s3/install` puts it.
pub fn s3s_fs_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("S3S_FS") {
        return p.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/s3s/bin/s3s-fs")
}

/// An s3s-fs server on a loopback port, storing under a directory, killed on drop. It checks
/// SigV4 signatures against one key pair, so a wrong key is refused as by any S3 service.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    root: PathBuf,
    endpoint: String,
}

/// The key pair the server accepts.
pub const ACCESS_KEY: &str = "fil-market-test";
/// The secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "fil-market-test-secret";

impl S3Server {
    /// Starts a server storing under `root` (created if needed). Without the binary it panics
    /// with the command that installs it: the test fails loudly, it never skips.
    pub fn start(root: &Path) -> Self {
        let bin = s3s_fs_binary();
        assert!(
            bin.exists(),
            "the S3 tests need s3s-fs at {}: run scripts/s3/install (scripts/test does)",
            bin.display()
        );
        std::fs::create_dir_all(root).expect("create the S3 root");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(root.with_extension("log")).expect("create the S3 log");
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut server = Self {
            child,
            root: root.to_path_buf(),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "s3s-fs exited at start ({status}); see {}",
                    root.with_extension("log").display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The service URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates a bucket (s3s-fs keeps each bucket as a directory under its root).
    pub fn bucket(&self, name: &str) -> S3Config {
        std::fs::create_dir_all(self.root.join(name)).expect("create the bucket");
        S3Config::new(name)
            .with_endpoint(&self.endpoint)
            .with_region("us-east-1")
            .with_credentials(ACCESS_KEY, SECRET_KEY)
    }

    /// A plain S3 client of `bucket` on this server, to look under a store (list what is
    /// really there, plant objects a crash would leave).
    pub fn raw_client(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("an S3 client of the test server")
    }

    /// The directory objects are stored under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Kills the server (as a crash would) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
