//! Parsing the parts of a certificate the core uses, zero-copy.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};

use super::der::{tag, Reader, Tlv};
use super::time::Civil;
use super::{oid, CertError};

/// A parsed certificate, borrowing the DER it was parsed from.
#[derive(Debug, Clone)]
pub struct CertView<'a> {
    /// The signed part (`tbsCertificate`), header included.
    pub tbs: &'a [u8],
    /// The serial number's contents (big-endian, as encoded).
    pub serial: &'a [u8],
    /// The issuer Name, header included.
    pub issuer: &'a [u8],
    /// The subject Name, header included.
    pub subject: &'a [u8],
    /// Start of validity, Unix seconds.
    pub not_before: u64,
    /// End of validity, Unix seconds (inclusive, RFC 5280).
    pub not_after: u64,
    /// The SubjectPublicKeyInfo, header included.
    pub spki: &'a [u8],
    /// The subject's P-256 public key.
    pub public_key: VerifyingKey,
    /// The DER-encoded ECDSA signature over [`Self::tbs`].
    pub signature: &'a [u8],
}

impl<'a> CertView<'a> {
    /// Whether `unix` lies inside the validity period.
    pub fn is_valid_at(&self, unix: u64) -> bool {
        self.not_before <= unix && unix <= self.not_after
    }

    /// The subject's first common name, when it is a UTF8String or
    /// PrintableString.
    pub fn common_name(&self) -> Option<&'a str> {
        let (_, mut rdns) = Reader::new(self.subject).expect(tag::SEQUENCE).ok()?;
        while !rdns.is_empty() {
            let (_, mut set) = rdns.expect(tag::SET).ok()?;
            while !set.is_empty() {
                let (_, mut atv) = set.expect(tag::SEQUENCE).ok()?;
                let (id, _) = atv.expect(tag::OID).ok()?;
                let (value, _) = atv.any().ok()?;
                if id.value == oid::COMMON_NAME
                    && matches!(value.tag, tag::UTF8_STRING | tag::PRINTABLE_STRING)
                {
                    return core::str::from_utf8(value.value).ok();
                }
            }
        }
        None
    }

    /// SHA-256 of the SubjectPublicKeyInfo (RFC 7469's pin-sha256): it
    /// stays the same when a certificate is renewed for the same key, so a
    /// peer pinning it needs no re-enrollment after `bmclink cert renew`.
    pub fn spki_fingerprint(&self) -> [u8; 32] {
        super::fingerprint::fingerprint(self.spki)
    }

    /// Checks the signature over [`Self::tbs`] with the certificate's own key
    /// (and that subject and issuer are the same name): a self-signed
    /// certificate is internally consistent.
    pub fn verify_self_signed(&self) -> Result<(), CertError> {
        if self.subject != self.issuer {
            return Err(CertError::Signature);
        }
        let sig = DerSignature::try_from(self.signature).map_err(|_| CertError::Signature)?;
        self.public_key
            .verify(self.tbs, &sig)
            .map_err(|_| CertError::Signature)
    }
}

/// Parses a certificate. Accepts any X.509 v3 certificate with a P-256 key
/// signed ecdsa-with-SHA256 (extensions are not interpreted); fails with the
/// offset of the first problem otherwise. Never panics.
pub fn parse(der: &[u8]) -> Result<CertView<'_>, CertError> {
    let mut top = Reader::new(der);
    let (_, mut cert) = top.expect(tag::SEQUENCE)?;
    top.finish()?;

    let (tbs_tlv, mut tbs) = cert.expect(tag::SEQUENCE)?;
    let (_, alg) = cert.expect(tag::SEQUENCE)?;
    algorithm(alg)?;
    let (sig_tlv, _) = cert.expect(tag::BIT_STRING)?;
    let signature = bit_string_bytes(&sig_tlv, CertError::Signature)?;
    cert.finish()?;

    let (_, mut version) = tbs.expect(tag::CONTEXT_0).map_err(|_| CertError::Version)?;
    let (v, _) = version.expect(tag::INTEGER)?;
    if v.value != [2] {
        return Err(CertError::Version);
    }
    let (serial, _) = tbs.expect(tag::INTEGER)?;
    let (_, alg) = tbs.expect(tag::SEQUENCE)?;
    algorithm(alg)?;
    let (issuer, _) = tbs.expect(tag::SEQUENCE)?;
    let (_, mut validity) = tbs.expect(tag::SEQUENCE)?;
    let not_before = time(&mut validity)?;
    let not_after = time(&mut validity)?;
    validity.finish()?;
    let (subject, _) = tbs.expect(tag::SEQUENCE)?;
    let (spki_tlv, spki) = tbs.expect(tag::SEQUENCE)?;
    let public_key = public_key(spki)?;
    // issuerUniqueID, subjectUniqueID and extensions follow; not needed.

    Ok(CertView {
        tbs: tbs_tlv.raw,
        serial: serial.value,
        issuer: issuer.raw,
        subject: subject.raw,
        not_before,
        not_after,
        spki: spki_tlv.raw,
        public_key,
        signature,
    })
}

fn algorithm(mut alg: Reader) -> Result<(), CertError> {
    let (id, _) = alg.expect(tag::OID)?;
    if id.value != oid::ECDSA_WITH_SHA256 {
        return Err(CertError::SignatureAlgorithm);
    }
    // RFC 5758: the parameters are absent.
    alg.finish().map_err(|_| CertError::SignatureAlgorithm)
}

fn time(r: &mut Reader) -> Result<u64, CertError> {
    let at = r.offset();
    let (t, _) = r.any()?;
    Civil::decode(t.tag, t.value, at)?
        .to_unix()
        .ok_or(CertError::Time { offset: at })
}

/// The bytes of a BIT STRING without unused bits, or `err`.
fn bit_string_bytes<'a>(tlv: &Tlv<'a>, err: CertError) -> Result<&'a [u8], CertError> {
    match tlv.value.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(err),
    }
}

fn public_key(mut spki: Reader) -> Result<VerifyingKey, CertError> {
    let (_, mut alg) = spki.expect(tag::SEQUENCE)?;
    let (id, _) = alg.expect(tag::OID)?;
    let (curve, _) = alg.expect(tag::OID)?;
    alg.finish()?;
    if id.value != oid::EC_PUBLIC_KEY || curve.value != oid::PRIME256V1 {
        return Err(CertError::PublicKey);
    }
    let (bits, _) = spki.expect(tag::BIT_STRING)?;
    spki.finish()?;
    let point = bit_string_bytes(&bits, CertError::PublicKey)?;
    // Uncompressed points only: what TLS and X.509 peers send in practice.
    if point.len() != 65 || point.first() != Some(&0x04) {
        return Err(CertError::PublicKey);
    }
    VerifyingKey::from_sec1_bytes(point).map_err(|_| CertError::PublicKey)
}
