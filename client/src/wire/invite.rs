//! One-time invite links (DESIGN §5): how two people first reach each other.
//!
//! Nothing about a pair is registered anywhere, so an invite, passed out of band (a chat app,
//! a QR code on a screen), must hold all the invitee needs: where the inviter's fresh mailbox
//! is (relay, send id, envelope key), which invite is being answered, a name the inviter
//! suggests, and a libsignal prekey bundle to start a PQXDH session from.
//!
//! ```text
//! link    = "sotto:invite#" || base64url-no-pad(version(1) = 1 || InviteWire protobuf)
//! message InviteWire { string relay = 1; bytes send_id = 2; bytes envelope_key = 3;
//!                      bytes invite_id = 4; string suggested_name = 5; PreKeyBundleWire bundle = 6; }
//! message PreKeyBundleWire { uint32 registration_id = 1; uint32 device_id = 2; OneTimePreKeyWire prekey = 3;
//!                      uint32 signed_prekey_id = 4; bytes signed_prekey_public = 5; bytes signed_prekey_signature = 6;
//!                      uint32 kyber_prekey_id = 7; bytes kyber_prekey_public = 8; bytes kyber_prekey_signature = 9;
//!                      bytes identity_key = 10; }
//! message OneTimePreKeyWire { uint32 id = 1; bytes public = 2; }
//! ```
//!
//! A typical link is ~2.7 KB, most of it the 1,569-byte ML-KEM-1024 prekey. Parsing forgives
//! what people and chat apps do to links (surrounding spaces, `<…>`, line breaks inside) and
//! says in plain words what is wrong otherwise ([`InviteError`]). The link holds the envelope
//! key: whoever sees it can write to the mailbox until the inviter locks it to the first
//! sender, which is why invites are one-time.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libsignal_protocol::{DeviceId, IdentityKey, PreKeyBundle, PublicKey, kem};
use prost::Message;
use qrcode::{Color, EcLevel, QrCode};
use sotto_proto::{RelayAddress, SendId};
use zeroize::{Zeroize, Zeroizing};

use super::content::{INVITE_ID_LEN, MAX_NAME_BYTES, at_most, exact, fixed};
use super::envelope::EnvelopeKey;
use super::error::{ForeignLink, InviteError, WireError};

/// What every invite link starts with.
pub const INVITE_PREFIX: &str = "sotto:invite#";
/// The format version, the first byte of the decoded payload.
pub const INVITE_VERSION: u8 = 1;
/// Longest link accepted, in bytes after trimming (a typical one is ~2.7 KB).
pub const MAX_LINK_LEN: usize = 8 * 1024;
/// Longest suggested name, in UTF-8 bytes.
pub const MAX_SUGGESTED_NAME_BYTES: usize = MAX_NAME_BYTES;
/// Length of a serialized Curve25519 public key (type byte and 32 bytes).
pub const EC_PUBLIC_KEY_LEN: usize = 33;
/// Length of an XEdDSA signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a serialized ML-KEM-1024 public key (type byte and 1,568 bytes).
pub const KEM_PUBLIC_KEY_LEN: usize = 1_569;
/// Modules of white space around a QR code, as the standard asks.
pub const QR_QUIET_ZONE: usize = 4;

/// A one-time EC prekey: id and public key.
#[derive(Clone, PartialEq, Message)]
pub struct OneTimePreKeyWire {
    /// The prekey's id.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// The serialized public key ([`EC_PUBLIC_KEY_LEN`] bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub public: Vec<u8>,
}

/// What libsignal's `PreKeyBundle` holds, as protobuf. `Debug` prints nothing of it (an
/// identity key links a person across invites).
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct PreKeyBundleWire {
    /// The inviter's registration id.
    #[prost(uint32, tag = "1")]
    pub registration_id: u32,
    /// The inviter's device id (1 to 127).
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    /// The one-time EC prekey, if any.
    #[prost(message, optional, tag = "3")]
    pub prekey: Option<OneTimePreKeyWire>,
    /// The signed EC prekey's id.
    #[prost(uint32, tag = "4")]
    pub signed_prekey_id: u32,
    /// The signed EC prekey ([`EC_PUBLIC_KEY_LEN`] bytes).
    #[prost(bytes = "vec", tag = "5")]
    pub signed_prekey_public: Vec<u8>,
    /// The identity key's signature over it ([`SIGNATURE_LEN`] bytes).
    #[prost(bytes = "vec", tag = "6")]
    pub signed_prekey_signature: Vec<u8>,
    /// The ML-KEM prekey's id.
    #[prost(uint32, tag = "7")]
    pub kyber_prekey_id: u32,
    /// The ML-KEM-1024 prekey ([`KEM_PUBLIC_KEY_LEN`] bytes).
    #[prost(bytes = "vec", tag = "8")]
    pub kyber_prekey_public: Vec<u8>,
    /// The identity key's signature over it ([`SIGNATURE_LEN`] bytes).
    #[prost(bytes = "vec", tag = "9")]
    pub kyber_prekey_signature: Vec<u8>,
    /// The inviter's identity key ([`EC_PUBLIC_KEY_LEN`] bytes).
    #[prost(bytes = "vec", tag = "10")]
    pub identity_key: Vec<u8>,
}

impl std::fmt::Debug for PreKeyBundleWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreKeyBundleWire { .. }")
    }
}

impl PreKeyBundleWire {
    /// The wire form of a bundle; refused unless [`PreKeyBundleWire::to_bundle`] would accept
    /// it (in particular, the ML-KEM prekey must be ML-KEM-1024).
    pub fn from_bundle(bundle: &PreKeyBundle) -> Result<Self, WireError> {
        let bad = |_| WireError::Bundle("libsignal refused to read the bundle");
        let prekey = match (bundle.pre_key_id().map_err(bad)?, bundle.pre_key_public().map_err(bad)?) {
            (Some(id), Some(public)) => Some(OneTimePreKeyWire { id: id.into(), public: public.serialize().into() }),
            _ => None,
        };
        let wire = Self {
            registration_id: bundle.registration_id().map_err(bad)?,
            device_id: u32::from(bundle.device_id().map_err(bad)?),
            prekey,
            signed_prekey_id: bundle.signed_pre_key_id().map_err(bad)?.into(),
            signed_prekey_public: bundle.signed_pre_key_public().map_err(bad)?.serialize().into(),
            signed_prekey_signature: bundle.signed_pre_key_signature().map_err(bad)?.to_vec(),
            kyber_prekey_id: bundle.kyber_pre_key_id().map_err(bad)?.into(),
            kyber_prekey_public: bundle.kyber_pre_key_public().map_err(bad)?.serialize().into(),
            kyber_prekey_signature: bundle.kyber_pre_key_signature().map_err(bad)?.to_vec(),
            identity_key: bundle.identity_key().map_err(bad)?.serialize().into(),
        };
        wire.to_bundle()?;
        Ok(wire)
    }

    /// The libsignal bundle, after checking every length, every key, that the ML-KEM prekey is
    /// ML-KEM-1024, and both prekey signatures.
    pub fn to_bundle(&self) -> Result<PreKeyBundle, WireError> {
        let device = u8::try_from(self.device_id)
            .ok()
            .and_then(|d| DeviceId::new(d).ok())
            .ok_or(WireError::OutOfRange { field: "bundle.device_id", value: u64::from(self.device_id) })?;
        let identity_bytes: [u8; EC_PUBLIC_KEY_LEN] = fixed("bundle.identity_key", &self.identity_key)?;
        let identity = IdentityKey::decode(&identity_bytes).map_err(|_| WireError::BadKey("bundle.identity_key"))?;
        let prekey = match &self.prekey {
            None => None,
            Some(p) => Some((p.id.into(), ec_key("bundle.prekey.public", &p.public)?)),
        };
        let signed = ec_key("bundle.signed_prekey_public", &self.signed_prekey_public)?;
        exact("bundle.signed_prekey_signature", &self.signed_prekey_signature, SIGNATURE_LEN)?;
        exact("bundle.kyber_prekey_public", &self.kyber_prekey_public, KEM_PUBLIC_KEY_LEN)?;
        let kyber = kem::PublicKey::deserialize(&self.kyber_prekey_public)
            .map_err(|_| WireError::BadKey("bundle.kyber_prekey_public"))?;
        if kyber.key_type() != kem::KeyType::MLKEM1024 {
            return Err(WireError::Bundle("the post-quantum prekey is not ML-KEM-1024"));
        }
        exact("bundle.kyber_prekey_signature", &self.kyber_prekey_signature, SIGNATURE_LEN)?;
        let id_key = identity.public_key();
        if !id_key.verify_signature(&self.signed_prekey_public, &self.signed_prekey_signature) {
            return Err(WireError::Bundle("the signed prekey's signature is invalid"));
        }
        if !id_key.verify_signature(&self.kyber_prekey_public, &self.kyber_prekey_signature) {
            return Err(WireError::Bundle("the post-quantum prekey's signature is invalid"));
        }
        PreKeyBundle::new(
            self.registration_id,
            device,
            prekey,
            self.signed_prekey_id.into(),
            signed,
            self.signed_prekey_signature.clone(),
            self.kyber_prekey_id.into(),
            kyber,
            self.kyber_prekey_signature.clone(),
            identity,
        )
        .map_err(|_| WireError::Bundle("libsignal refused the bundle"))
    }
}

/// A Curve25519 public key of exactly [`EC_PUBLIC_KEY_LEN`] bytes (libsignal would accept and
/// ignore trailing bytes).
fn ec_key(field: &'static str, bytes: &[u8]) -> Result<PublicKey, WireError> {
    exact(field, bytes, EC_PUBLIC_KEY_LEN)?;
    PublicKey::deserialize(bytes).map_err(|_| WireError::BadKey(field))
}

/// The protobuf inside a link.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
struct InviteWire {
    #[prost(string, tag = "1")]
    relay: String,
    #[prost(bytes = "vec", tag = "2")]
    send_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    envelope_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    invite_id: Vec<u8>,
    #[prost(string, tag = "5")]
    suggested_name: String,
    #[prost(message, optional, tag = "6")]
    bundle: Option<PreKeyBundleWire>,
}

impl std::fmt::Debug for InviteWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteWire { .. }")
    }
}

impl Drop for InviteWire {
    fn drop(&mut self) {
        self.envelope_key.zeroize();
    }
}

/// A one-time invite. `Debug` prints nothing of it; the envelope key zeroizes on drop.
#[derive(Clone)]
pub struct Invite {
    /// The relay where the inviter's mailbox is.
    pub relay: RelayAddress,
    /// The send id of the inviter's fresh mailbox.
    pub send_id: SendId,
    /// That mailbox's envelope key.
    pub envelope_key: EnvelopeKey,
    /// Names this invite in the invitee's `Hello`.
    pub invite_id: [u8; INVITE_ID_LEN],
    /// What the inviter suggests being called (may be empty), at most
    /// [`MAX_SUGGESTED_NAME_BYTES`].
    pub suggested_name: String,
    /// The inviter's prekey bundle.
    pub bundle: PreKeyBundleWire,
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Invite { .. }")
    }
}

impl Invite {
    /// The link `sotto:invite#…`; refused if [`Invite::parse`] would refuse it.
    pub fn to_link(&self) -> Result<String, WireError> {
        let payload = self.to_payload()?;
        let mut link = String::from(INVITE_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&*payload, &mut link);
        at_most("invite link", link.len(), MAX_LINK_LEN)?;
        Ok(link)
    }

    /// What a full link carries after its prefix, decoded: the version byte and the
    /// `InviteWire`. Refused if [`Invite::from_payload`] would refuse it.
    pub fn to_payload(&self) -> Result<Zeroizing<Vec<u8>>, WireError> {
        at_most("suggested_name", self.suggested_name.len(), MAX_SUGGESTED_NAME_BYTES)?;
        self.bundle.to_bundle()?;
        let wire = InviteWire {
            relay: self.relay.to_string(),
            send_id: self.send_id.0.to_vec(),
            envelope_key: self.envelope_key.as_bytes().to_vec(),
            invite_id: self.invite_id.to_vec(),
            suggested_name: self.suggested_name.clone(),
            bundle: Some(self.bundle.clone()),
        };
        let mut payload = Zeroizing::new(Vec::with_capacity(1 + wire.encoded_len()));
        payload.push(INVITE_VERSION);
        wire.encode_raw(&mut *payload);
        Ok(payload)
    }

    /// Reads a full link as pasted: surrounding spaces and `<…>` are dropped, and so are
    /// spaces and line breaks inside (chat apps wrap long links). A short link (version 2)
    /// is [`InviteError::UnsupportedVersion`] here: read links with
    /// [`super::InviteLink::parse`].
    pub fn parse(link: &str) -> Result<Invite, InviteError> {
        let payload = link_payload(link)?;
        match payload.first() {
            Some(&INVITE_VERSION) => Invite::from_payload(&payload),
            Some(&v) => Err(InviteError::UnsupportedVersion(v)),
            None => Err(WireError::MissingField("version").into()),
        }
    }

    /// Reads the decoded payload of a full link (version byte included).
    pub fn from_payload(payload: &[u8]) -> Result<Invite, InviteError> {
        let (&version, body) = payload.split_first().ok_or(WireError::MissingField("version"))?;
        if version != INVITE_VERSION {
            return Err(InviteError::UnsupportedVersion(version));
        }
        let mut wire = InviteWire::decode(body)?;
        at_most("suggested_name", wire.suggested_name.len(), MAX_SUGGESTED_NAME_BYTES)?;
        let bundle = wire.bundle.take().ok_or(WireError::MissingField("bundle"))?;
        bundle.to_bundle()?;
        Ok(Invite {
            relay: RelayAddress::from_str(&wire.relay).map_err(WireError::from)?,
            send_id: SendId(fixed("send_id", &wire.send_id)?),
            envelope_key: EnvelopeKey::from_slice("envelope_key", &wire.envelope_key)?,
            invite_id: fixed("invite_id", &wire.invite_id)?,
            suggested_name: std::mem::take(&mut wire.suggested_name),
            bundle,
        })
    }
}

/// The decoded payload of a link of any version, after forgiving what people and chat
/// apps do to links.
pub(crate) fn link_payload(link: &str) -> Result<Zeroizing<Vec<u8>>, InviteError> {
    let mut text = link.trim();
    if let Some(inner) = text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        text = inner.trim();
    }
    if text.len() > MAX_LINK_LEN {
        return Err(InviteError::TooLong(text.len()));
    }
    let prefixed = text.get(..INVITE_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(INVITE_PREFIX));
    if !prefixed {
        return Err(InviteError::NotAnInvite(classify(text)));
    }
    let encoded: Zeroizing<String> =
        Zeroizing::new(text[INVITE_PREFIX.len()..].chars().filter(|c| !c.is_whitespace()).collect());
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.decode(encoded.as_bytes()).map_err(|_| WireError::Base64)?))
}

fn classify(text: &str) -> ForeignLink {
    let starts = |p: &str| text.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p));
    if text.is_empty() {
        ForeignLink::Empty
    } else if starts("https://") || starts("http://") || starts("www.") {
        ForeignLink::WebLink
    } else if starts(sotto_proto::address::SCHEME) {
        ForeignLink::RelayAddress
    } else {
        ForeignLink::Other
    }
}

/// A QR code of `link` for a terminal, two module rows per line with Unicode half blocks,
/// quiet zone included. Light modules are drawn as ink and dark ones left blank, so on a
/// terminal's usual light-on-dark colours it reads dark-on-light (as `qrencode -t UTF8` does);
/// a caller that controls colours should draw it light (e.g. white) on black. Error
/// correction is level L: the smallest code, enough for a screen, which does not get dirty.
pub fn qr_text(link: &str) -> Result<String, WireError> {
    qr_text_with_quiet_zone(link, QR_QUIET_ZONE)
}

/// [`qr_text`] with a quiet zone of `quiet` modules: a screen that is short of rows may draw
/// a narrower one than the standard's four (scanners read codes on screens with one).
pub fn qr_text_with_quiet_zone(link: &str, quiet: usize) -> Result<String, WireError> {
    let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L)
        .map_err(|_| WireError::QrTooLong { len: link.len() })?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * quiet;
    // Outside the code (the quiet zone, and the half row below an odd size) is light.
    let light = |x: usize, y: usize| {
        let (Some(cx), Some(cy)) = (x.checked_sub(quiet), y.checked_sub(quiet)) else {
            return true;
        };
        cx >= width || cy >= width || colors.get(cy * width + cx) != Some(&Color::Dark)
    };
    let mut out = String::with_capacity((size + 1) * size.div_ceil(2) * 3);
    for y in (0..size).step_by(2) {
        for x in 0..size {
            out.push(match (light(x, y), light(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
#[path = "invite_tests.rs"]
pub(crate) mod tests;
