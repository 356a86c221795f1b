//! The TPM 2.0 commands a counter needs (TPM 2.0 Library spec, Part 3),
//! marshalled and parsed by hand. Every response is checked: its tag, its
//! size field against the bytes received, every inner length, and no bytes
//! left over; a response code is mapped to a specific error.

use offpay_wallet::vault::VaultError;

use crate::transport::Transport;

const ST_NO_SESSIONS: u16 = 0x8001;
const ST_SESSIONS: u16 = 0x8002;
const RH_OWNER: u32 = 0x4000_0001;
const RS_PW: u32 = 0x4000_0009;
const ALG_SHA256: u16 = 0x000B;

const CC_STARTUP: u32 = 0x144;
const CC_NV_DEFINE_SPACE: u32 = 0x12A;
const CC_NV_UNDEFINE_SPACE: u32 = 0x122;
const CC_NV_INCREMENT: u32 = 0x134;
const CC_NV_WRITE: u32 = 0x137;
const CC_NV_WRITE_LOCK: u32 = 0x138;
const CC_NV_READ: u32 = 0x14E;
const CC_NV_READ_PUBLIC: u32 = 0x169;

/// `TPMA_NV` bits used here.
pub mod attr {
    /// Writes need the index's auth value.
    pub const AUTHWRITE: u32 = 1 << 2;
    /// `TPM_NT_COUNTER` in the type field (bits 4..8).
    pub const NT_COUNTER: u32 = 1 << 4;
    /// The type field mask.
    pub const NT_MASK: u32 = 0xF << 4;
    /// Write-locked.
    pub const WRITELOCKED: u32 = 1 << 11;
    /// `TPM2_NV_WriteLock` locks until the index is undefined.
    pub const WRITEDEFINE: u32 = 1 << 13;
    /// Reads need the index's auth value.
    pub const AUTHREAD: u32 = 1 << 18;
    /// No dictionary-attack lockout on the index's auth.
    pub const NO_DA: u32 = 1 << 25;
    /// The index was written (a counter: incremented) at least once.
    pub const WRITTEN: u32 = 1 << 29;
}

/// `TPM_RC_INITIALIZE`: `TPM2_Startup` after the TPM already started.
pub const RC_INITIALIZE: u32 = 0x100;

fn malformed(op: &'static str) -> VaultError {
    VaultError::CounterDevice {
        op,
        reason: "malformed response from the TPM",
        rc: 0,
    }
}

/// A specific error for a TPM response code.
#[must_use]
pub fn rc_error(op: &'static str, rc: u32) -> VaultError {
    let reason = if rc & 0x80 != 0 {
        // Format 1: error number in bits 0..6, parameter/handle/session in 8..12.
        match rc & 0xBF {
            0x8B => "NV index not defined (handle unknown): the TPM was reset or the index removed",
            0x8E | 0xA2 => "authorization failed (wrong auth value)",
            0x84 => "value out of range",
            0x95 => "size wrong",
            0x81 => "asymmetric/algorithm error",
            _ => "the TPM refused the command (format-1 error)",
        }
    } else {
        match rc & 0xFFF {
            0x100 => "TPM already initialized",
            0x101 => "TPM not started (TPM2_Startup missing)",
            0x146 => "NV offset out of range",
            0x147 => "NV size wrong",
            0x148 => "NV index locked (write-locked)",
            0x149 => "NV authorization not allowed for this index",
            0x14A => "NV index not written yet (uninitialized)",
            0x14B => "TPM out of NV space",
            0x14C => "NV index already defined",
            0x14D..=0x14F => "NV error",
            0x921 => "TPM in dictionary-attack lockout",
            0x922 | 0x908 | 0x901 => "TPM busy, retry",
            0x923 => "NV temporarily unavailable",
            _ => "the TPM refused the command",
        }
    };
    VaultError::CounterDevice { op, reason, rc }
}

/// A reader over response bytes that never panics.
struct Cursor<'a> {
    bytes: &'a [u8],
    op: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], VaultError> {
        let (head, rest) = self.bytes.split_at_checked(n).ok_or(malformed(self.op))?;
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, VaultError> {
        Ok(*self.take(1)?.first().ok_or(malformed(self.op))?)
    }
    fn u16(&mut self) -> Result<u16, VaultError> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| malformed(self.op))?;
        Ok(u16::from_be_bytes(b))
    }
    fn u32(&mut self) -> Result<u32, VaultError> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| malformed(self.op))?;
        Ok(u32::from_be_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, VaultError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| malformed(self.op))?;
        Ok(u64::from_be_bytes(b))
    }
    fn tpm2b(&mut self) -> Result<&'a [u8], VaultError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn end(&self) -> Result<(), VaultError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(malformed(self.op))
        }
    }
}

/// One command being marshalled.
struct Cmd {
    buf: Vec<u8>,
}

impl Cmd {
    fn new(tag: u16, cc: u32) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&tag.to_be_bytes());
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&cc.to_be_bytes());
        Self { buf }
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn tpm2b(&mut self, op: &'static str, b: &[u8]) -> Result<&mut Self, VaultError> {
        let n = u16::try_from(b.len()).map_err(|_| VaultError::CounterDevice {
            op,
            reason: "field too long",
            rc: 0,
        })?;
        self.u16(n);
        self.buf.extend_from_slice(b);
        Ok(self)
    }
    /// The password session area (one `TPMS_AUTH_COMMAND` with `TPM_RS_PW`).
    fn pw_session(&mut self, op: &'static str, password: &[u8]) -> Result<&mut Self, VaultError> {
        let size = u32::try_from(9 + password.len()).map_err(|_| VaultError::CounterDevice {
            op,
            reason: "auth value too long",
            rc: 0,
        })?;
        self.u32(size).u32(RS_PW).u16(0).u8(1);
        self.tpm2b(op, password)
    }
    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        if let Some(f) = self.buf.get_mut(2..6) {
            f.copy_from_slice(&len);
        }
        self.buf
    }
}

/// The public area of an NV index (`TPMS_NV_PUBLIC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NvPublic {
    /// The index handle.
    pub index: u32,
    /// The name algorithm.
    pub name_alg: u16,
    /// `TPMA_NV`.
    pub attributes: u32,
    /// Size of the data.
    pub data_size: u16,
}

/// A TPM behind a [`Transport`].
#[derive(Debug)]
pub struct Tpm {
    transport: Transport,
}

/// Split a response into (tag, parameter bytes) after checking the header
/// and the response code.
fn parse_header<'a>(op: &'static str, resp: &'a [u8]) -> Result<(u16, Cursor<'a>), VaultError> {
    let mut c = Cursor { bytes: resp, op };
    let tag = c.u16()?;
    let size = c.u32()?;
    let rc = c.u32()?;
    if usize::try_from(size).ok() != Some(resp.len()) {
        return Err(malformed(op));
    }
    if rc != 0 {
        if resp.len() != 10 {
            return Err(malformed(op));
        }
        return Err(rc_error(op, rc));
    }
    if tag != ST_NO_SESSIONS && tag != ST_SESSIONS {
        return Err(malformed(op));
    }
    Ok((tag, c))
}

/// For a command sent with a password session: check the tag, return the
/// parameters and check the one `TPMS_AUTH_RESPONSE` after them.
fn session_params<'a>(op: &'static str, resp: &'a [u8]) -> Result<Cursor<'a>, VaultError> {
    let (tag, mut c) = parse_header(op, resp)?;
    if tag != ST_SESSIONS {
        return Err(malformed(op));
    }
    let psize = c.u32()?;
    let params = c.take(usize::try_from(psize).map_err(|_| malformed(op))?)?;
    // TPMS_AUTH_RESPONSE: nonce (empty for a password), attributes, hmac (empty).
    if !c.tpm2b()?.is_empty() {
        return Err(malformed(op));
    }
    c.u8()?;
    if !c.tpm2b()?.is_empty() {
        return Err(malformed(op));
    }
    c.end()?;
    Ok(Cursor { bytes: params, op })
}

impl Tpm {
    /// A TPM on `transport`.
    #[must_use]
    pub fn new(transport: Transport) -> Self {
        Self { transport }
    }

    fn run(&mut self, cmd: Cmd) -> Result<Vec<u8>, VaultError> {
        self.transport.transact(&cmd.finish())
    }

    /// `TPM2_Startup(TPM_SU_CLEAR)`; an already started TPM is fine.
    ///
    /// # Errors
    /// Transport errors; any other response code.
    pub fn startup(&mut self) -> Result<(), VaultError> {
        let op = "TPM2_Startup";
        let mut cmd = Cmd::new(ST_NO_SESSIONS, CC_STARTUP);
        cmd.u16(0);
        let resp = self.run(cmd)?;
        match parse_header(op, &resp) {
            Ok((_, c)) => c.end(),
            Err(VaultError::CounterDevice { rc, .. }) if rc == RC_INITIALIZE => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `TPM2_NV_DefineSpace` under the owner hierarchy (`owner_auth`).
    ///
    /// # Errors
    /// Transport errors; the TPM's refusal (e.g. already defined).
    pub fn nv_define(
        &mut self,
        owner_auth: &[u8],
        index: u32,
        auth: &[u8],
        attributes: u32,
        data_size: u16,
    ) -> Result<(), VaultError> {
        let op = "TPM2_NV_DefineSpace";
        let mut cmd = Cmd::new(ST_SESSIONS, CC_NV_DEFINE_SPACE);
        cmd.u32(RH_OWNER)
            .pw_session(op, owner_auth)?
            .tpm2b(op, auth)?;
        // TPM2B_NV_PUBLIC: size, index, nameAlg, attributes, authPolicy (empty), dataSize.
        cmd.u16(14)
            .u32(index)
            .u16(ALG_SHA256)
            .u32(attributes)
            .u16(0)
            .u16(data_size);
        let resp = self.run(cmd)?;
        session_params(op, &resp)?.end()
    }

    /// `TPM2_NV_UndefineSpace` under the owner hierarchy.
    ///
    /// # Errors
    /// Transport errors; the TPM's refusal.
    pub fn nv_undefine(&mut self, owner_auth: &[u8], index: u32) -> Result<(), VaultError> {
        let op = "TPM2_NV_UndefineSpace";
        let mut cmd = Cmd::new(ST_SESSIONS, CC_NV_UNDEFINE_SPACE);
        cmd.u32(RH_OWNER).u32(index).pw_session(op, owner_auth)?;
        let resp = self.run(cmd)?;
        session_params(op, &resp)?.end()
    }

    /// `TPM2_NV_Increment` with the index's own auth.
    ///
    /// # Errors
    /// Transport errors; the TPM's refusal (locked, wrong auth, not defined).
    pub fn nv_increment(&mut self, index: u32, auth: &[u8]) -> Result<(), VaultError> {
        let op = "TPM2_NV_Increment";
        let mut cmd = Cmd::new(ST_SESSIONS, CC_NV_INCREMENT);
        cmd.u32(index).u32(index).pw_session(op, auth)?;
        let resp = self.run(cmd)?;
        session_params(op, &resp)?.end()
    }

    /// `TPM2_NV_Write` of `data` at offset 0 with the index's own auth.
    ///
    /// # Errors
    /// Transport errors; the TPM's refusal.
    pub fn nv_write(&mut self, index: u32, auth: &[u8], data: &[u8]) -> Result<(), VaultError> {
        let op = "TPM2_NV_Write";
        let mut cmd = Cmd::new(ST_SESSIONS, CC_NV_WRITE);
        cmd.u32(index).u32(index).pw_session(op, auth)?;
        cmd.tpm2b(op, data)?.u16(0);
        let resp = self.run(cmd)?;
        session_params(op, &resp)?.end()
    }

    /// `TPM2_NV_WriteLock` with the index's own auth.
    ///
    /// # Errors
    /// Transport errors; the TPM's refusal.
    pub fn nv_write_lock(&mut self, index: u32, auth: &[u8]) -> Result<(), VaultError> {
        let op = "TPM2_NV_WriteLock";
        let mut cmd = Cmd::new(ST_SESSIONS, CC_NV_WRITE_LOCK);
        cmd.u32(index).u32(index).pw_session(op, auth)?;
        let resp = self.run(cmd)?;
        session_params(op, &resp)?.end()
    }

    /// `TPM2_NV_Read` of 8 bytes at offset 0, as a big-endian u64 (a
    /// counter's value).
    ///
    /// # Errors
    /// Transport errors; the TPM's refusal; an answer not exactly 8 bytes.
    pub fn nv_read_u64(&mut self, index: u32, auth: &[u8]) -> Result<u64, VaultError> {
        let op = "TPM2_NV_Read";
        let mut cmd = Cmd::new(ST_SESSIONS, CC_NV_READ);
        cmd.u32(index).u32(index).pw_session(op, auth)?;
        cmd.u16(8).u16(0);
        let resp = self.run(cmd)?;
        let mut p = session_params(op, &resp)?;
        let data = p.tpm2b()?;
        p.end()?;
        let mut d = Cursor { bytes: data, op };
        let v = d.u64()?;
        d.end()?;
        Ok(v)
    }

    /// `TPM2_NV_ReadPublic`: the index's public area.
    ///
    /// # Errors
    /// Transport errors; the TPM's refusal (not defined); malformed answers.
    pub fn nv_read_public(&mut self, index: u32) -> Result<NvPublic, VaultError> {
        let mut cmd = Cmd::new(ST_NO_SESSIONS, CC_NV_READ_PUBLIC);
        cmd.u32(index);
        let resp = self.run(cmd)?;
        parse_nv_public(&resp)
    }
}

/// Parse a `TPM2_NV_ReadPublic` response.
///
/// # Errors
/// The response code's error; [`VaultError::CounterDevice`] for any
/// malformed length.
pub fn parse_nv_public(resp: &[u8]) -> Result<NvPublic, VaultError> {
    let op = "TPM2_NV_ReadPublic";
    let (tag, mut c) = parse_header(op, resp)?;
    if tag != ST_NO_SESSIONS {
        return Err(malformed(op));
    }
    let public = c.tpm2b()?;
    let _name = c.tpm2b()?;
    c.end()?;
    let mut p = Cursor { bytes: public, op };
    let index = p.u32()?;
    let name_alg = p.u16()?;
    let attributes = p.u32()?;
    let _policy = p.tpm2b()?;
    let data_size = p.u16()?;
    p.end()?;
    Ok(NvPublic {
        index,
        name_alg,
        attributes,
        data_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_resp() -> Vec<u8> {
        let mut r = vec![0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&[0, 14]);
        r.extend_from_slice(&0x0150_0000u32.to_be_bytes());
        r.extend_from_slice(&ALG_SHA256.to_be_bytes());
        r.extend_from_slice(&(attr::NT_COUNTER | attr::WRITTEN).to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 8]);
        r.extend_from_slice(&[0, 2, 0xAA, 0xBB]);
        let n = u32::try_from(r.len()).unwrap().to_be_bytes();
        r[2..6].copy_from_slice(&n);
        r
    }

    #[test]
    fn tpm_parse_read_public_and_every_truncation() {
        let r = public_resp();
        let p = parse_nv_public(&r).unwrap();
        assert_eq!((p.index, p.data_size), (0x0150_0000, 8));
        assert_eq!(p.attributes & attr::NT_MASK, attr::NT_COUNTER);
        // Every truncation (with a matching or a stale size field) is refused, never a panic.
        for len in 0..r.len() {
            let mut t = r[..len].to_vec();
            assert!(parse_nv_public(&t).is_err());
            if len >= 6 {
                let n = u32::try_from(len).unwrap().to_be_bytes();
                t[2..6].copy_from_slice(&n);
                assert!(parse_nv_public(&t).is_err(), "len {len}");
            }
        }
        let mut long = r.clone();
        long.push(0);
        assert!(parse_nv_public(&long).is_err());
        // Hostile inner length.
        let mut bad = r.clone();
        bad[11] = 200;
        assert!(parse_nv_public(&bad).is_err());
    }

    #[test]
    fn tpm_response_codes_map_to_specific_errors() {
        let mut r = vec![0x80, 0x01, 0, 0, 0, 10];
        r.extend_from_slice(&0x28Bu32.to_be_bytes());
        match parse_nv_public(&r) {
            Err(VaultError::CounterDevice { rc, reason, .. }) => {
                assert_eq!(rc, 0x28B);
                assert!(reason.contains("not defined"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        match rc_error("x", 0x148) {
            VaultError::CounterDevice { reason, .. } => assert!(reason.contains("locked")),
            other => panic!("{other:?}"),
        }
        match rc_error("x", 0x98E) {
            VaultError::CounterDevice { reason, .. } => assert!(reason.contains("auth")),
            other => panic!("{other:?}"),
        }
    }
}
