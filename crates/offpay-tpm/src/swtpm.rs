//! Start a software TPM (`swtpm`) for tests and the demo: a temporary state
//! directory, free ports, killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Whether the `swtpm` binary runs here.
#[must_use]
pub fn installed() -> bool {
    Command::new("swtpm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `OFFPAY_REQUIRE_TPM=1`.
#[must_use]
pub fn required() -> bool {
    std::env::var("OFFPAY_REQUIRE_TPM").is_ok_and(|v| v == "1")
}

/// A running swtpm (`swtpm socket --tpm2`, MS simulator framing).
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    state_dir: PathBuf,
    port: u16,
}

/// A port `p` with `p + 1` free too (command and control sockets).
fn free_port_pair() -> Option<u16> {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").ok()?;
        let p = a.local_addr().ok()?.port();
        let Some(q) = p.checked_add(1) else { continue };
        if TcpListener::bind(("127.0.0.1", q)).is_ok() {
            return Some(p);
        }
    }
    None
}

impl Swtpm {
    /// Start swtpm keeping its state in `state_dir` (created if missing),
    /// on free ports.
    ///
    /// # Errors
    /// A description when swtpm cannot be started or does not answer.
    pub fn start(state_dir: &Path) -> Result<Self, String> {
        let port = free_port_pair().ok_or("no free port pair")?;
        Self::start_on(state_dir, port)
    }

    /// Start swtpm on command port `port` (control `port + 1`).
    ///
    /// # Errors
    /// As [`Swtpm::start`].
    pub fn start_on(state_dir: &Path, port: u16) -> Result<Self, String> {
        std::fs::create_dir_all(state_dir).map_err(|e| format!("state dir: {e}"))?;
        let ctrl = port.checked_add(1).ok_or("port out of range")?;
        let mut child = Command::new("swtpm")
            .arg("socket")
            .arg("--tpm2")
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .arg("--flags")
            .arg("not-need-init,startup-clear")
            .arg("--tpmstate")
            .arg(format!("dir={}", state_dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run swtpm: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("swtpm exited at start: {status}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("swtpm did not open its port within 10 s".into());
            }
            sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            state_dir: state_dir.to_path_buf(),
            port,
        })
    }

    /// The endpoint string, `tpm:127.0.0.1:PORT`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("tpm:127.0.0.1:{}", self.port)
    }

    /// The command port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The state directory.
    #[must_use]
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Stop the process (the state stays in the directory).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}
