//! Test support (feature `testing`): a real Postgres server from the machine's binaries
//! (Debian's `postgresql` package, installed by `scripts/postgres/install`), one per test,
//! in a directory of its own, on a loopback port, killed on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory holding `initdb` and `postgres`: `PG_BIN` if set, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn pg_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PG_BIN") {
        return p.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| p.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).unwrap_or_else(|| {
        panic!("no Postgres server under /usr/lib/postgresql: run scripts/postgres/install (scripts/test does)")
    })
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The uid and gid of the `postgres` user (Debian's package creates it).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .expect("a postgres user: run scripts/postgres/install")
}

/// Runs a Postgres program, as the `postgres` user when we are root (the server refuses to
/// run as root). The uid is switched in the child itself, so the child is the program and
/// killing it kills the server.
fn pg_command(bin: &Path, program: &str) -> Command {
    let mut c = Command::new(bin.join(program));
    if is_root() {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = postgres_user();
        c.uid(uid).gid(gid);
    }
    c
}

/// A running Postgres server with trust authentication for the user `market`.
#[derive(Debug)]
pub struct PgServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PgServer {
    /// initdb and start a server under `dir` (created; made traversable for the `postgres`
    /// user when we are root). Panics, with the reason, when the binaries are missing: the
    /// test fails loudly, it never skips.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, false)
    }

    /// [`start`](Self::start); `durable` keeps `fsync` on (as production runs), for
    /// benchmarks; tests run without it, since they kill processes, not machines.
    pub fn start_with(dir: &Path, durable: bool) -> Self {
        let bin = pg_bin();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("create the data directory");
        if is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .expect("run chown");
            assert!(chown.success(), "chown the Postgres directory");
            // Every ancestor must be traversable by the postgres user.
            let mut p = Some(dir);
            while let Some(d) = p {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(m) = std::fs::metadata(d) {
                    let mode = m.permissions().mode();
                    if mode & 0o001 == 0 {
                        let _ = std::fs::set_permissions(
                            d,
                            std::fs::Permissions::from_mode(mode | 0o011),
                        );
                    }
                }
                p = d.parent();
            }
        }
        let out = pg_command(&bin, "initdb")
            .args([
                "-U",
                "market",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::launch(dir, port, durable)
    }

    /// Starts a server again on the data a killed one left under `dir`, on the same port.
    pub fn restart(dir: &Path, port: u16) -> Self {
        Self::launch(dir, port, false)
    }

    fn launch(dir: &Path, port: u16, durable: bool) -> Self {
        let bin = pg_bin();
        let data = dir.join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("postgres.log"))
            .expect("open the log");
        let child = pg_command(&bin, "postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "max_connections=200", "-c"])
            .arg(if durable { "fsync=on" } else { "fsync=off" })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let mut server = Self {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let ready = pg_command(&bin, "pg_isready")
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "market"])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ready {
                    break;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "postgres exited at start ({status}): {}",
                    std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Creates a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let out = pg_command(&pg_bin(), "createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "market",
                name,
            ])
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://market@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's directory (data and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server and its backends, as a crash of its machine would: a killed
    /// postmaster alone leaves its backends (each in a session of its own) serving open
    /// connections until they notice.
    pub fn kill(&mut self) {
        // Children first, while they are still the postmaster's (a dead parent's children
        // are handed to init); then the postmaster, so it forks no more; then them.
        let children = children_of(self.child.id());
        let _ = self.child.kill();
        for pid in children {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// The processes whose parent is `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces, so read after the last ')'.
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
    }
}
