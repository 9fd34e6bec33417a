//! Self-signed certificate generation (RFC 5280 profile, P-256, no alloc).

use p256::ecdsa::signature::RandomizedSigner;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;

use super::der::{tag, Writer};
use super::time::{Civil, MAX_YEAR};
use super::{oid, CertError, MAX_COMMON_NAME_LEN};

/// How long a generated certificate is valid, in calendar years (T2).
pub const VALIDITY_YEARS: u64 = 10;

/// What a generated certificate says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertParams<'a> {
    /// Subject and issuer common name: the host name (1 to 64 bytes UTF-8).
    pub common_name: &'a str,
    /// Start of validity, Unix seconds; it ends [`VALIDITY_YEARS`] later.
    pub not_before_unix: u64,
    /// Add serverAuth to the extended key usage (the simulated BMC's
    /// certificate). clientAuth is always present.
    pub server_auth: bool,
}

impl<'a> CertParams<'a> {
    /// A client identity certificate for `common_name` valid from `not_before_unix`.
    pub fn client(common_name: &'a str, not_before_unix: u64) -> Self {
        CertParams {
            common_name,
            not_before_unix,
            server_auth: false,
        }
    }

    /// The same certificate, usable as a TLS server certificate too.
    pub fn with_server_auth(self) -> Self {
        CertParams {
            server_auth: true,
            ..self
        }
    }

    /// The end of validity, Unix seconds: the same wall-clock time
    /// [`VALIDITY_YEARS`] calendar years later (February 29th becomes the
    /// 28th), or an error when it would fall after the year 9999.
    pub fn not_after_unix(&self) -> Result<u64, CertError> {
        self.validity()
            .map(|(_, after)| after.to_unix().unwrap_or(0))
    }

    fn validity(&self) -> Result<(Civil, Civil), CertError> {
        let before = Civil::from_unix(self.not_before_unix);
        let after = before.plus_years(VALIDITY_YEARS);
        if after.year > MAX_YEAR || after.to_unix().is_none() {
            return Err(CertError::NotBefore {
                unix: self.not_before_unix,
            });
        }
        Ok((before, after))
    }
}

/// Generates a self-signed X.509 v3 certificate for `key` into `out` and
/// returns its length. The serial number is 16 random bytes from `rng`
/// (positive, minimal DER), the signature is ECDSA P-256 SHA-256 with
/// `rng` hedging the nonce. [`super::MAX_CERT_LEN`] bytes always suffice.
pub fn generate(
    key: &SigningKey,
    params: &CertParams,
    rng: &mut impl CryptoRngCore,
    out: &mut [u8],
) -> Result<usize, CertError> {
    let cn = params.common_name.as_bytes();
    if cn.is_empty() || cn.len() > MAX_COMMON_NAME_LEN {
        return Err(CertError::CommonName { len: cn.len() });
    }
    let (not_before, not_after) = params.validity()?;

    let mut serial = [0u8; 16];
    rng.fill_bytes(&mut serial);
    // Positive (top bit clear) and minimal (first byte non-zero) DER INTEGER.
    serial[0] = (serial[0] & 0x7f) | 0x40;

    let point = VerifyingKey::from(key).to_encoded_point(false);

    let mut w = Writer::new(out);
    w.nested(tag::SEQUENCE, |w| {
        let tbs_start = w.len();
        w.nested(tag::SEQUENCE, |w| {
            w.nested(tag::CONTEXT_0, |w| w.element(tag::INTEGER, &[2]))?;
            w.element(tag::INTEGER, &serial)?;
            algorithm(w)?;
            name(w, cn)?;
            w.nested(tag::SEQUENCE, |w| {
                time(w, &not_before)?;
                time(w, &not_after)
            })?;
            name(w, cn)?;
            w.nested(tag::SEQUENCE, |w| {
                w.nested(tag::SEQUENCE, |w| {
                    w.element(tag::OID, oid::EC_PUBLIC_KEY)?;
                    w.element(tag::OID, oid::PRIME256V1)
                })?;
                w.bit_string(|w| w.raw(point.as_bytes()))
            })?;
            w.nested(tag::CONTEXT_3, |w| {
                w.nested(tag::SEQUENCE, |w| extensions(w, params.server_auth))
            })
        })?;
        let signature: DerSignature = key
            .try_sign_with_rng(rng, w.written_since(tbs_start))
            .map_err(|_| CertError::Signing)?;
        algorithm(w)?;
        w.bit_string(|w| w.raw(signature.as_bytes()))
    })?;
    Ok(w.len())
}

fn algorithm(w: &mut Writer) -> Result<(), CertError> {
    w.nested(tag::SEQUENCE, |w| {
        w.element(tag::OID, oid::ECDSA_WITH_SHA256)
    })
}

fn name(w: &mut Writer, cn: &[u8]) -> Result<(), CertError> {
    w.nested(tag::SEQUENCE, |w| {
        w.nested(tag::SET, |w| {
            w.nested(tag::SEQUENCE, |w| {
                w.element(tag::OID, oid::COMMON_NAME)?;
                w.element(tag::UTF8_STRING, cn)
            })
        })
    })
}

fn time(w: &mut Writer, t: &Civil) -> Result<(), CertError> {
    let (digits, n) = t.encode();
    w.element(t.tag(), digits.get(..n).ok_or(CertError::Encoding)?)
}

fn extension(
    w: &mut Writer,
    id: &[u8],
    critical: bool,
    value: impl FnOnce(&mut Writer) -> Result<(), CertError>,
) -> Result<(), CertError> {
    w.nested(tag::SEQUENCE, |w| {
        w.element(tag::OID, id)?;
        if critical {
            w.element(tag::BOOLEAN, &[0xff])?;
        }
        w.nested(tag::OCTET_STRING, value)
    })
}

fn extensions(w: &mut Writer, server_auth: bool) -> Result<(), CertError> {
    // basicConstraints: an empty SEQUENCE is cA FALSE (DER omits defaults).
    extension(w, oid::BASIC_CONSTRAINTS, true, |w| {
        w.nested(tag::SEQUENCE, |_| Ok(()))
    })?;
    // keyUsage digitalSignature: bit 0, seven unused bits.
    extension(w, oid::KEY_USAGE, true, |w| {
        w.element(tag::BIT_STRING, &[0x07, 0x80])
    })?;
    extension(w, oid::EXT_KEY_USAGE, false, |w| {
        w.nested(tag::SEQUENCE, |w| {
            if server_auth {
                w.element(tag::OID, oid::SERVER_AUTH)?;
            }
            w.element(tag::OID, oid::CLIENT_AUTH)
        })
    })
}
