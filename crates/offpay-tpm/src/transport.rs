//! How command bytes reach the TPM: the swtpm / Microsoft simulator TCP
//! socket, or a character device (`/dev/tpmrm0`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use offpay_wallet::vault::VaultError;

/// Largest response accepted (the TPM's `MAX_RESPONSE_SIZE` is 4096).
pub const RESPONSE_MAX: usize = 4096;
/// MS simulator framing: `TPM_SEND_COMMAND`.
const TPM_SEND_COMMAND: u32 = 8;
/// How long one command may take.
const TIMEOUT: Duration = Duration::from_secs(10);

fn err(op: &'static str, reason: &'static str) -> VaultError {
    VaultError::CounterDevice { op, reason, rc: 0 }
}

/// Where the TPM is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// swtpm or the Microsoft simulator: `host:port` of the command socket.
    Tcp(String),
    /// A TPM character device, normally `/dev/tpmrm0`.
    Device(PathBuf),
}

impl Endpoint {
    /// Parse `tpm:HOST:PORT` or `tpm:/dev/...` (the `tpm:` prefix optional).
    ///
    /// # Errors
    /// [`VaultError::CounterDevice`] if it is neither.
    pub fn parse(s: &str) -> Result<Self, VaultError> {
        let s = s.strip_prefix("tpm:").unwrap_or(s);
        if s.starts_with('/') {
            return Ok(Self::Device(PathBuf::from(s)));
        }
        let bad = err(
            "parse endpoint",
            "expected tpm:HOST:PORT or tpm:/dev/tpmrm0",
        );
        let (host, port) = s.rsplit_once(':').ok_or(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad);
        }
        Ok(Self::Tcp(s.to_owned()))
    }
}

impl core::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "tpm:{a}"),
            Self::Device(p) => write!(f, "tpm:{}", p.display()),
        }
    }
}

/// An open connection to a TPM.
#[derive(Debug)]
pub enum Transport {
    /// MS simulator framing over TCP.
    Tcp(TcpStream),
    /// Raw commands on a device.
    Device(File),
}

impl Transport {
    /// Connect to `endpoint`.
    ///
    /// # Errors
    /// [`VaultError::CounterDevice`] when nothing answers there.
    pub fn connect(endpoint: &Endpoint) -> Result<Self, VaultError> {
        match endpoint {
            Endpoint::Tcp(addr) => {
                let addrs = addr
                    .to_socket_addrs()
                    .map_err(|_| err("connect", "TPM address does not resolve"))?;
                let mut last = err("connect", "TPM address does not resolve");
                for a in addrs {
                    match TcpStream::connect_timeout(&a, TIMEOUT) {
                        Ok(s) => {
                            s.set_read_timeout(Some(TIMEOUT))
                                .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
                                .map_err(|_| err("connect", "cannot set socket timeouts"))?;
                            let _ = s.set_nodelay(true);
                            return Ok(Self::Tcp(s));
                        }
                        Err(_) => last = err("connect", "no TPM answers (connection refused)"),
                    }
                }
                Err(last)
            }
            Endpoint::Device(p) => Self::open_device(p),
        }
    }

    fn open_device(p: &Path) -> Result<Self, VaultError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .map(Self::Device)
            .map_err(|_| {
                err(
                    "connect",
                    "TPM device cannot be opened (absent or no permission)",
                )
            })
    }

    /// Send one command, return the response bytes (length not yet checked
    /// against the header: [`crate::command`] does that).
    ///
    /// # Errors
    /// [`VaultError::CounterDevice`] on I/O failure or malformed framing.
    pub fn transact(&mut self, cmd: &[u8]) -> Result<Vec<u8>, VaultError> {
        match self {
            Self::Tcp(s) => {
                let len = u32::try_from(cmd.len()).map_err(|_| err("send", "command too long"))?;
                let mut frame = Vec::with_capacity(cmd.len() + 9);
                frame.extend_from_slice(&TPM_SEND_COMMAND.to_be_bytes());
                frame.push(0); // locality
                frame.extend_from_slice(&len.to_be_bytes());
                frame.extend_from_slice(cmd);
                s.write_all(&frame)
                    .map_err(|_| err("send", "connection to the TPM lost"))?;
                let mut n = [0u8; 4];
                s.read_exact(&mut n)
                    .map_err(|_| err("receive", "connection to the TPM lost"))?;
                let n = u32::from_be_bytes(n) as usize;
                if n > RESPONSE_MAX {
                    return Err(err("receive", "response longer than MAX_RESPONSE_SIZE"));
                }
                let mut resp = vec![0u8; n];
                s.read_exact(&mut resp)
                    .map_err(|_| err("receive", "response cut short"))?;
                let mut ack = [0u8; 4];
                s.read_exact(&mut ack)
                    .map_err(|_| err("receive", "simulator trailer missing"))?;
                if ack != [0; 4] {
                    return Err(err("receive", "simulator reported a transport error"));
                }
                Ok(resp)
            }
            Self::Device(f) => {
                f.write_all(cmd)
                    .map_err(|_| err("send", "write to the TPM device failed"))?;
                let mut resp = vec![0u8; RESPONSE_MAX];
                let n = f
                    .read(&mut resp)
                    .map_err(|_| err("receive", "read from the TPM device failed"))?;
                resp.truncate(n);
                Ok(resp)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm_endpoint_parse() {
        assert_eq!(
            Endpoint::parse("tpm:127.0.0.1:2321"),
            Ok(Endpoint::Tcp("127.0.0.1:2321".into()))
        );
        assert_eq!(
            Endpoint::parse("tpm:/dev/tpmrm0"),
            Ok(Endpoint::Device("/dev/tpmrm0".into()))
        );
        for bad in ["tpm:", "tpm:host", "tpm::1", "tpm:h:99999", "tpm:h:x"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
