//! The compact form of a short invite, for QR codes: the same fields as the short link
//! ([`super::invite_short`]), written as bytes instead of a protobuf holding a relay address
//! string, and base32 in capitals instead of base64url, so the QR code can use its
//! alphanumeric mode (5.5 bits a character instead of 8). Nothing is added or left out:
//! it opens the same sealed blob with the same key.
//!
//! ```text
//! link    = "SOTTO:INVITE:" || BASE32-NOPAD(payload)      (RFC 4648, A–Z 2–7; read in any case)
//! payload = version(1) = 3 || flags(1) || host || port(2, big-endian) || pin(32, if flagged)
//!           || blob read id(24) || blob key(32)
//! flags   = bits 0–1 host kind (1 IPv4: 4 bytes, 2 IPv6: 16 bytes, 3 DNS name: length(1) ||
//!           lower-case ASCII), bit 7 pin present, bits 2–6 zero
//! ```
//!
//! With a pinned IPv4 relay the payload is 96 bytes, 154 base32 characters, 167 with the
//! prefix: a version 6 QR code (41 modules) at error correction L, which holds 195
//! alphanumeric characters, so a DNS name of up to 20 characters fits the same size. Drawn
//! with half blocks and a quiet zone of one module that is 43 columns by 22 rows: it fits
//! inside the invite popup's border at 80×24 (`docs/END_TO_END.md`, "Invites in a QR code").
//! The short link itself (`sotto:invite#…`, ~185 characters of base64url, mostly byte mode)
//! needs version 8: 49 modules, 57×29 cells with the standard quiet zone of four.
//!
//! Every malformed payload is a typed [`QrInviteError`], and only the canonical encoding of
//! an invite is accepted, so a parsed compact link re-encodes to itself.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use sotto_proto::address::{Host, PIN_LEN, Pin, SCHEME};
use sotto_proto::limits::{ID_LEN, MAX_HOST_LEN};
use sotto_proto::{BlobReadId, RelayAddress};
use zeroize::Zeroizing;

use super::error::{InviteError, WireError};
use super::invite::MAX_LINK_LEN;
use super::invite_short::{INVITE_BLOB_KEY_LEN, InviteLink, ShortInvite};

/// What a compact invite starts with (read in any case). Every character is in the QR
/// alphanumeric set; `#`, as in `sotto:invite#`, is not.
pub const QR_INVITE_PREFIX: &str = "SOTTO:INVITE:";
/// The format version of a compact invite (the first byte of its payload).
pub const QR_INVITE_VERSION: u8 = 3;

/// Host kinds, in the low bits of the flags.
const HOST_IPV4: u8 = 1;
const HOST_IPV6: u8 = 2;
const HOST_NAME: u8 = 3;
const HOST_KIND_MASK: u8 = 0b0000_0011;
/// The flag saying a pin follows the port.
const PIN_FLAG: u8 = 0b1000_0000;
/// Flag bits this version does not use, which must be zero.
const RESERVED_FLAGS: u8 = !(HOST_KIND_MASK | PIN_FLAG);

/// Why a compact invite's payload cannot be read. Carries no key or id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QrInviteError {
    /// Not base32 (RFC 4648 alphabet, no padding, unused trailing bits zero).
    #[error("not valid base32")]
    Base32,
    /// The payload ends inside a field.
    #[error("the payload ends inside {0}")]
    Truncated(&'static str),
    /// Bytes after the blob key.
    #[error("{0} bytes after the end of the payload")]
    TrailingBytes(usize),
    /// A host kind this version does not know (the flags' low bits).
    #[error("unknown host kind {0}")]
    HostKind(u8),
    /// Flag bits that must be zero are set.
    #[error("reserved flag bits are set ({0:#04x})")]
    ReservedFlags(u8),
    /// A DNS name that is not written as its relay address would write it (upper case, a
    /// trailing dot, or an IP address given as a name).
    #[error("the host name is not in canonical form")]
    NonCanonicalHost,
}

impl ShortInvite {
    /// The compact form, `SOTTO:INVITE:…`, for a QR code.
    pub fn to_qr_link(&self) -> String {
        let relay = &self.relay;
        let mut payload = Zeroizing::new(Vec::with_capacity(2 + 1 + MAX_HOST_LEN + 2 + PIN_LEN + ID_LEN + 32));
        let pin_flag = if relay.pin.is_some() { PIN_FLAG } else { 0 };
        payload.push(QR_INVITE_VERSION);
        match &relay.host {
            Host::Ipv4(a) => {
                payload.push(HOST_IPV4 | pin_flag);
                payload.extend_from_slice(&a.octets());
            }
            Host::Ipv6(a) => {
                payload.push(HOST_IPV6 | pin_flag);
                payload.extend_from_slice(&a.octets());
            }
            Host::Domain(d) => {
                payload.push(HOST_NAME | pin_flag);
                // A parsed name is at most MAX_HOST_LEN (253) bytes: its length fits a byte.
                payload.push(u8::try_from(d.len()).unwrap_or(u8::MAX));
                payload.extend_from_slice(d.as_bytes());
            }
        }
        payload.extend_from_slice(&relay.port.to_be_bytes());
        if let Some(pin) = &relay.pin {
            payload.extend_from_slice(&pin.0);
        }
        payload.extend_from_slice(&self.read_id.0);
        payload.extend_from_slice(self.key());
        let mut link = String::with_capacity(QR_INVITE_PREFIX.len() + BASE32_NOPAD.encode_len(payload.len()));
        link.push_str(QR_INVITE_PREFIX);
        BASE32_NOPAD.encode_append(&payload, &mut link);
        link
    }
}

/// What a QR code of `link` should hold: the compact form of a short link; any other text
/// (a full link) as it is.
pub fn qr_form(link: &str) -> String {
    match InviteLink::parse(link) {
        Ok(InviteLink::Short(s)) => s.to_qr_link(),
        _ => link.to_string(),
    }
}

/// Reads a compact invite as pasted or scanned (surrounding spaces, `<…>` and spaces inside
/// are forgiven, as for links). `None` if `link` is not in the compact form at all.
pub(crate) fn parse(link: &str) -> Option<Result<ShortInvite, InviteError>> {
    let mut text = link.trim();
    if let Some(inner) = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        text = inner.trim();
    }
    let prefixed = text.get(..QR_INVITE_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(QR_INVITE_PREFIX));
    if !prefixed {
        return None;
    }
    if text.len() > MAX_LINK_LEN {
        return Some(Err(InviteError::TooLong(text.len())));
    }
    let encoded: Zeroizing<String> = Zeroizing::new(
        text[QR_INVITE_PREFIX.len()..].chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect(),
    );
    let payload = match BASE32_NOPAD.decode(encoded.as_bytes()) {
        Ok(p) => Zeroizing::new(p),
        Err(_) => return Some(Err(WireError::from(QrInviteError::Base32).into())),
    };
    Some(from_payload(&payload))
}

fn from_payload(payload: &[u8]) -> Result<ShortInvite, InviteError> {
    let mut r = Reader(payload);
    let version = r.take::<1>("version").map_err(|_| WireError::MissingField("version"))?[0];
    if version != QR_INVITE_VERSION {
        return Err(InviteError::UnsupportedVersion(version));
    }
    let flags = r.take::<1>("flags")?[0];
    if flags & RESERVED_FLAGS != 0 {
        return Err(wire(QrInviteError::ReservedFlags(flags & RESERVED_FLAGS)));
    }
    let host = match flags & HOST_KIND_MASK {
        HOST_IPV4 => Host::Ipv4(Ipv4Addr::from(r.take::<4>("the IPv4 address")?)),
        HOST_IPV6 => Host::Ipv6(Ipv6Addr::from(r.take::<16>("the IPv6 address")?)),
        HOST_NAME => {
            let len = usize::from(r.take::<1>("the host name's length")?[0]);
            let name = r.bytes(len, "the host name")?;
            // Parsed the way a relay address is, then required to be written as it writes it.
            let name =
                std::str::from_utf8(name).map_err(|_| WireError::from(sotto_proto::AddressError::InvalidHost))?;
            let parsed = RelayAddress::from_str(&format!("{SCHEME}{name}:1")).map_err(WireError::from)?;
            match parsed.host {
                Host::Domain(d) if d == name => Host::Domain(d),
                _ => return Err(wire(QrInviteError::NonCanonicalHost)),
            }
        }
        kind => return Err(wire(QrInviteError::HostKind(kind))),
    };
    let port = u16::from_be_bytes(r.take::<2>("the port")?);
    if port == 0 {
        return Err(WireError::from(sotto_proto::AddressError::InvalidPort).into());
    }
    let pin = if flags & PIN_FLAG != 0 { Some(Pin(r.take::<PIN_LEN>("the pin")?)) } else { None };
    let read_id = BlobReadId(r.take::<ID_LEN>("the blob read id")?);
    let key = Zeroizing::new(r.take::<INVITE_BLOB_KEY_LEN>("the blob key")?);
    if !r.0.is_empty() {
        return Err(wire(QrInviteError::TrailingBytes(r.0.len())));
    }
    Ok(ShortInvite::new(RelayAddress { host, port, pin }, read_id, key))
}

fn wire(e: QrInviteError) -> InviteError {
    WireError::from(e).into()
}

/// Reads fields off the front of a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], InviteError> {
        if self.0.len() < n {
            return Err(wire(QrInviteError::Truncated(field)));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], InviteError> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }
}

#[cfg(test)]
#[path = "invite_qr_tests.rs"]
mod tests;
