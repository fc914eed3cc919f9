//! The real `sotto-relay` binary as a child process on a fixed loopback port, a small
//! deterministic PRNG, and readings from /proc.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sotto_proto::RelayAddress;

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running `sotto-relay`.
pub struct RelayProcess {
    pub child: Child,
    pub address: RelayAddress,
}

impl RelayProcess {
    /// Starts the relay on `127.0.0.1:port` with `args`, its log appended to `log`.
    /// Retries for a few seconds while the port cannot be bound yet (e.g. TIME_WAIT) or
    /// the previous instance's database lock is still held.
    pub fn start(cwd: &Path, port: u16, args: &[&str], log: &Path) -> Self {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listen = format!("127.0.0.1:{port}");
        loop {
            let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_sotto-relay"))
                .args(["--listen", &listen])
                .args(args)
                .current_dir(cwd)
                .env("HOME", cwd)
                .env("TMPDIR", cwd)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log_file))
                .spawn()
                .unwrap();
            let mut line = String::new();
            let n = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap_or(0);
            if n > 0 {
                let address = line.trim().parse().unwrap_or_else(|e| panic!("bad address line {line:?}: {e}"));
                return Self { child, address };
            }
            // No address line: it exited before listening.
            let status = child.wait().unwrap();
            assert!(Instant::now() < deadline, "the relay would not start ({status}); see {}", log.display());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "relay exited with {status}");
    }
}

/// xorshift64: a deterministic sequence from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Resident memory of a process in KiB, from /proc/PID/status.
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// This process's soft limit on open files.
pub fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let soft = line.split_whitespace().nth(3).unwrap();
    soft.parse().unwrap_or(u64::MAX)
}

/// The first 27 bytes of a TLS ClientHello that announces 512 bytes: a handshake that
/// never finishes.
pub const PARTIAL_CLIENT_HELLO: &[u8] =
    &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7];
