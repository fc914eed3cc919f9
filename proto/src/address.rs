//! Relay addresses: `sotto://HOST:PORT#PIN`.
//!
//! PIN is base64url (no padding) of the SHA-256 of the relay certificate's
//! SubjectPublicKeyInfo. A client that has a pin trusts that key and nothing else, so a
//! certificate authority made to mis-issue cannot stand in for the relay. Without a pin,
//! the client falls back to the WebPKI roots. The port defaults to 443 when left out.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::limits::{MAX_ADDRESS_LEN, MAX_HOST_LEN, MAX_LABEL_LEN};

/// The scheme of a relay address.
pub const SCHEME: &str = "sotto://";

/// The port used when an address names none (the HTTPS port, to look like any website).
pub const DEFAULT_PORT: u16 = 443;

/// Length of a pin: SHA-256.
pub const PIN_LEN: usize = 32;

/// Why a string is not a relay address. The messages are meant for people.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Longer than [`MAX_ADDRESS_LEN`].
    #[error("the relay address is too long")]
    TooLong,
    /// Does not start with `sotto://`.
    #[error("a relay address starts with sotto://")]
    Scheme,
    /// Nothing between `sotto://` and the port or pin.
    #[error("the relay address has no host name")]
    MissingHost,
    /// The host is neither a valid host name, an IPv4 address nor a bracketed IPv6 address.
    #[error("the relay address has an invalid host name")]
    InvalidHost,
    /// The port is not a number from 1 to 65535.
    #[error("the relay address has an invalid port (it must be a number from 1 to 65535)")]
    InvalidPort,
    /// The text after `#` is not a 43-character base64url SHA-256 pin.
    #[error("the relay address has an invalid pin (the part after #)")]
    InvalidPin,
    /// A path, query, user name or space where none belongs.
    #[error("the relay address has unexpected parts (a path, query, user name or space)")]
    UnexpectedPart,
}

/// The SHA-256 of a relay certificate's SubjectPublicKeyInfo.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin(pub [u8; PIN_LEN]);

impl Pin {
    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    pub fn from_spki_der(spki: &[u8]) -> Self {
        Self(Sha256::digest(spki).into())
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin({self})")
    }
}

impl FromStr for Pin {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| AddressError::InvalidPin)?;
        let arr: [u8; PIN_LEN] = bytes.try_into().map_err(|_| AddressError::InvalidPin)?;
        Ok(Self(arr))
    }
}

/// A relay's host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower-cased.
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets in an address).
    Ipv6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => f.write_str(d),
            Self::Ipv4(a) => write!(f, "{a}"),
            Self::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

impl Host {
    /// The host as a name to connect to (IPv6 without brackets).
    pub fn to_connect_string(&self) -> String {
        match self {
            Self::Domain(d) => d.clone(),
            Self::Ipv4(a) => a.to_string(),
            Self::Ipv6(a) => a.to_string(),
        }
    }

    fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::MissingHost);
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(AddressError::InvalidHost)?;
            return inner.parse().map(Self::Ipv6).map_err(|_| AddressError::InvalidHost);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s.parse().map(Self::Ipv4).map_err(|_| AddressError::InvalidHost);
        }
        let name = s.strip_suffix('.').unwrap_or(s);
        let valid = name.len() <= MAX_HOST_LEN
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= MAX_LABEL_LEN
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(AddressError::InvalidHost);
        }
        Ok(Self::Domain(name.to_ascii_lowercase()))
    }
}

/// Where a relay is and, with a pin, which key it must present.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayAddress {
    /// The relay's host.
    pub host: Host,
    /// The relay's TCP port.
    pub port: u16,
    /// The relay's certificate key pin; `None` falls back to WebPKI roots.
    pub pin: Option<Pin>,
}

impl fmt::Display for RelayAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}:{}", self.host, self.port)?;
        if let Some(pin) = &self.pin {
            write!(f, "#{pin}")?;
        }
        Ok(())
    }
}

impl FromStr for RelayAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong);
        }
        let scheme_ok = s.get(..SCHEME.len()).is_some_and(|p| p.eq_ignore_ascii_case(SCHEME));
        if !scheme_ok {
            return Err(AddressError::Scheme);
        }
        let rest = &s[SCHEME.len()..];
        let (authority, pin) = match rest.split_once('#') {
            Some((a, p)) => (a, Some(p.parse::<Pin>()?)),
            None => (rest, None),
        };
        // A trailing slash is what people paste from browsers; anything more is not ours.
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['/', '?', '@', ' ', '\t', '\n', '\r']) {
            return Err(AddressError::UnexpectedPart);
        }
        let (host, port) = split_host_port(authority)?;
        Ok(Self { host: Host::parse(host)?, port, pin })
    }
}

fn split_host_port(authority: &str) -> Result<(&str, u16), AddressError> {
    // In "[v6]:port" the port follows the bracket; elsewhere it follows the last colon.
    let port_sep = match authority.rfind(']') {
        Some(close) => authority[close..].find(':').map(|i| close + i),
        None => authority.rfind(':'),
    };
    let Some(i) = port_sep else {
        return Ok((authority, DEFAULT_PORT));
    };
    let (host, port) = (&authority[..i], &authority[i + 1..]);
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::InvalidPort);
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host, p)),
        _ => Err(AddressError::InvalidPort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn parse(s: &str) -> Result<RelayAddress, AddressError> {
        s.parse()
    }

    #[test]
    fn parses_and_formats_every_host_kind() {
        for s in [
            format!("sotto://relay.example.org:443#{PIN}"),
            format!("sotto://127.0.0.1:7443#{PIN}"),
            format!("sotto://[::1]:8443#{PIN}"),
            "sotto://relay.example.org:443".to_string(),
        ] {
            let a = parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn fills_in_default_port_and_normalises() {
        let a = parse(&format!("SOTTO://Relay.Example.ORG/#{PIN}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.host, Host::Domain("relay.example.org".into()));
        assert_eq!(a.port, DEFAULT_PORT);
        assert_eq!(a.pin.map(|p| p.0[1]), Some(1));
    }

    #[test]
    fn every_malformed_form_has_its_error() {
        let cases: &[(&str, AddressError)] = &[
            ("https://relay.example.org", AddressError::Scheme),
            ("sotto:/relay", AddressError::Scheme),
            ("", AddressError::Scheme),
            ("sotto://", AddressError::MissingHost),
            ("sotto://:443", AddressError::MissingHost),
            ("sotto://relay..org", AddressError::InvalidHost),
            ("sotto://-relay.org", AddressError::InvalidHost),
            ("sotto://rel_ay.org", AddressError::InvalidHost),
            ("sotto://300.1.1.1", AddressError::InvalidHost),
            ("sotto://[::1", AddressError::InvalidHost),
            ("sotto://[zz]:1", AddressError::InvalidHost),
            ("sotto://::1", AddressError::InvalidHost),
            ("sotto://relay.org:", AddressError::InvalidPort),
            ("sotto://relay.org:0", AddressError::InvalidPort),
            ("sotto://relay.org:65536", AddressError::InvalidPort),
            ("sotto://relay.org:+1", AddressError::InvalidPort),
            ("sotto://relay.org:44a", AddressError::InvalidPort),
            ("sotto://relay.org:443#", AddressError::InvalidPin),
            ("sotto://relay.org:443#abc", AddressError::InvalidPin),
            ("sotto://relay.org:443#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", AddressError::InvalidPin),
            ("sotto://relay.org/path", AddressError::UnexpectedPart),
            ("sotto://user@relay.org", AddressError::UnexpectedPart),
            ("sotto://relay.org?x=1", AddressError::UnexpectedPart),
            ("sotto://relay org", AddressError::UnexpectedPart),
            ("sotto://中文.org", AddressError::InvalidHost),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s).as_ref().err(), Some(want), "{s}");
        }
        let long = format!("sotto://{}.org", "a".repeat(MAX_ADDRESS_LEN));
        assert_eq!(parse(&long), Err(AddressError::TooLong));
    }

    #[test]
    fn pin_is_sha256_of_spki() {
        let pin = Pin::from_spki_der(b"spki");
        assert_eq!(pin.to_string().len(), 43);
        assert_eq!(pin.to_string().parse::<Pin>(), Ok(pin));
    }
}
