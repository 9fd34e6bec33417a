//! The `cert` target: certificate parsing and generation.

use bmclink_core::cert::{self, CertError, CertParams, CertView, Expiry, MAX_CERT_LEN};
use p256::ecdsa::{SigningKey, VerifyingKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// First byte of a generation input: never the first byte of a certificate
/// (a DER SEQUENCE starts with 0x30).
pub const CERT_GENERATE: u8 = 0x00;

/// `cert`: the whole input is parsed as a peer certificate
/// ([`cert::parse`], which walks the core's DER reader). Whatever parses
/// must point into the input (every borrowed field a sub-slice of it, the
/// common name inside the subject), `Expiry::at` and `is_valid_at` must
/// agree at and around both ends of validity, and the self-signature check
/// and the fingerprints must not panic.
///
/// An input starting with [`CERT_GENERATE`] also generates a certificate:
/// `not_before:u64be key:[u8; 32] common_name[..]`. [`cert::generate`] must
/// refuse exactly the invalid names, times and keys, and what it makes must
/// parse back to the same key, name and validity and verify itself.
pub fn cert(data: &[u8]) {
    check_parsed(data);
    if let Some((&CERT_GENERATE, rest)) = data.split_first() {
        generate(rest);
    }
}

/// Whether `part` lies inside `whole`.
fn within(part: &[u8], whole: &[u8]) -> bool {
    let (start, end) = (
        whole.as_ptr() as usize,
        whole.as_ptr() as usize + whole.len(),
    );
    let p = part.as_ptr() as usize;
    p >= start && p + part.len() <= end
}

fn check_parsed(der: &[u8]) -> Option<CertView<'_>> {
    let view = cert::parse(der).ok()?;
    for (name, field) in [
        ("tbs", view.tbs),
        ("serial", view.serial),
        ("issuer", view.issuer),
        ("subject", view.subject),
        ("spki", view.spki),
        ("signature", view.signature),
    ] {
        assert!(within(field, der), "{name} is not inside the input");
    }
    for (name, field) in [
        ("issuer", view.issuer),
        ("subject", view.subject),
        ("spki", view.spki),
    ] {
        assert!(within(field, view.tbs), "{name} is not inside tbs");
    }
    if let Some(cn) = view.common_name() {
        assert!(
            within(cn.as_bytes(), view.subject),
            "CN outside the subject"
        );
    }
    assert_eq!(view.spki_fingerprint(), cert::fingerprint(view.spki));
    let (before, after) = (view.not_before, view.not_after);
    for now in [
        0,
        before.saturating_sub(1),
        before,
        before.saturating_add(1),
        after.saturating_sub(1),
        after,
        after.saturating_add(1),
        u64::MAX,
    ] {
        let expiry = Expiry::at(&view, now);
        let valid = view.is_valid_at(now);
        match expiry {
            Expiry::Valid | Expiry::Expiring { .. } => assert!(valid, "{expiry:?} at {now}"),
            Expiry::Expired { not_after } => {
                assert!(!valid && now > after && not_after == after)
            }
            Expiry::NotYetValid => assert!(!valid && now < before),
        }
        if let Expiry::Expiring { days_left } = expiry {
            assert!(days_left < cert::RENEW_WARNING_DAYS);
        }
    }
    let _ = view.verify_self_signed();
    Some(view)
}

fn generate(data: &[u8]) {
    let Some((nb, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((scalar, name)) = rest.split_first_chunk::<32>() else {
        return;
    };
    let Ok(common_name) = std::str::from_utf8(name) else {
        return;
    };
    let Ok(key) = SigningKey::from_slice(scalar) else {
        assert!(cert::identity::decode(scalar).is_err());
        return;
    };
    let params = CertParams::client(common_name, u64::from_be_bytes(*nb));
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(name.len() as u32));
    let mut out = [0u8; MAX_CERT_LEN];
    let len = match cert::generate(&key, &params, &mut rng, &mut out) {
        Ok(len) => len,
        Err(CertError::CommonName { len }) => {
            assert_eq!(len, name.len());
            assert!(name.is_empty() || name.len() > cert::MAX_COMMON_NAME_LEN);
            return;
        }
        Err(CertError::NotBefore { unix }) => {
            assert_eq!(unix, params.not_before_unix);
            assert!(params.not_after_unix().is_err());
            return;
        }
        Err(e) => panic!("generate failed for {params:?}: {e:?}"),
    };
    let der = &out[..len];
    let view = check_parsed(der).expect("a generated certificate parses");
    assert_eq!(view.public_key, VerifyingKey::from(&key));
    assert_eq!(view.common_name(), Some(common_name));
    assert_eq!(view.not_before, params.not_before_unix);
    assert_eq!(Ok(view.not_after), params.not_after_unix());
    assert_eq!(view.subject, view.issuer);
    assert_eq!(view.verify_self_signed(), Ok(()));
    assert_eq!(Expiry::at(&view, view.not_before), Expiry::Valid);
    let stored = cert::identity::encode(&key);
    assert_eq!(
        cert::identity::decode(&stored).map(|k| k.to_bytes()),
        Ok(key.to_bytes())
    );
}

/// The seed corpus of `cert`, by file name: a certificate made by the core,
/// `extra` (other real certificates, e.g. one made by OpenSSL) and, for
/// each, truncated and bit-flipped copies; and generation inputs (a good
/// one, an empty name, a start too late for ten years of validity).
pub fn cert_seeds(extra: &[(&str, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let core = crate::bmc_tls::TlsIdentity::generate(0xce7, "bmc-1.example", 1_700_000_000, true);
    let mut certs = vec![("core".to_string(), core.der.clone())];
    certs.extend(extra.iter().map(|(n, d)| (n.to_string(), d.clone())));
    let mut seeds = Vec::new();
    for (name, der) in certs {
        seeds.push((
            format!("{name}_truncated"),
            der[..der.len() * 2 / 3].to_vec(),
        ));
        let mut flipped = der.clone();
        flipped[der.len() / 2] ^= 0x10;
        seeds.push((format!("{name}_flipped"), flipped));
        seeds.push((name, der));
    }
    let generate_input = |not_before: u64, name: &str| {
        let mut input = vec![CERT_GENERATE];
        input.extend_from_slice(&not_before.to_be_bytes());
        input.extend_from_slice(&core.key.to_bytes());
        input.extend_from_slice(name.as_bytes());
        input
    };
    seeds.push(("generate".into(), generate_input(1_700_000_000, "host-7")));
    seeds.push(("generate_empty_name".into(), generate_input(0, "")));
    seeds.push((
        "generate_late_start".into(),
        generate_input(253_402_300_000, "h"),
    ));
    seeds
}
