//! The client identity (P-256 key + self-signed certificate) and the trust
//! decision made before every connection: which channel, which pin, and
//! whether this connection enrolls.

use p256::ecdsa::SigningKey;

use crate::audit::{AuditEvent, StoreEvent, TlsEvent};
use crate::cert::{self, identity, CertError, CertParams, Expiry, MAX_CERT_LEN};
use crate::platform::{Record, StoreError};
use crate::policy::PinState;
use crate::records::PinRecord;
use crate::tls::Identity;
use crate::Platform;

/// The client's key and certificate, loaded from the store.
pub struct ClientIdentity {
    key: SigningKey,
    cert: [u8; MAX_CERT_LEN],
    cert_len: usize,
}

/// Why an identity could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdentityError {
    /// The store failed.
    Store(StoreError),
    /// A stored key or certificate does not decode.
    Corrupt(Record),
    /// Certificate generation failed.
    Cert(CertError),
}

impl ClientIdentity {
    /// Loads the identity; `Ok(None)` when none was made yet.
    pub fn load<P: Platform>(p: &mut P) -> Result<Option<Self>, IdentityError> {
        let mut key = [0u8; identity::KEY_LEN];
        let mut cert = [0u8; MAX_CERT_LEN];
        let key_len = p
            .load(Record::IdentityKey, &mut key)
            .map_err(IdentityError::Store)?;
        let cert_len = p
            .load(Record::IdentityCert, &mut cert)
            .map_err(IdentityError::Store)?;
        let (Some(key_len), Some(cert_len)) = (key_len, cert_len) else {
            return Ok(None);
        };
        let key = key
            .get(..key_len)
            .and_then(|k| identity::decode(k).ok())
            .ok_or(IdentityError::Corrupt(Record::IdentityKey))?;
        let der = cert
            .get(..cert_len)
            .ok_or(IdentityError::Corrupt(Record::IdentityCert))?;
        let view = cert::parse(der).map_err(|_| IdentityError::Corrupt(Record::IdentityCert))?;
        // The certificate must belong to the key, or the BMC would see a
        // signature it cannot check.
        if view.public_key != *key.verifying_key() {
            return Err(IdentityError::Corrupt(Record::IdentityCert));
        }
        Ok(Some(ClientIdentity {
            key,
            cert,
            cert_len,
        }))
    }

    /// Makes a fresh identity valid ten years from `now_unix` (T2) and saves
    /// it; the BMC pin is erased so the next connection enrolls again.
    pub fn generate<P: Platform>(
        p: &mut P,
        common_name: &str,
        now_unix: u64,
    ) -> Result<Self, IdentityError> {
        let key = identity::random(p);
        let mut cert = [0u8; MAX_CERT_LEN];
        let cert_len = cert::generate(
            &key,
            &CertParams::client(common_name, now_unix),
            p,
            &mut cert,
        )
        .map_err(IdentityError::Cert)?;
        let der = cert
            .get(..cert_len)
            .ok_or(IdentityError::Cert(CertError::BufferTooSmall {
                capacity: MAX_CERT_LEN,
            }))?;
        p.save(Record::IdentityKey, &identity::encode(&key))
            .map_err(IdentityError::Store)?;
        p.save(Record::IdentityCert, der)
            .map_err(IdentityError::Store)?;
        p.erase(Record::BmcPin).map_err(IdentityError::Store)?;
        Ok(ClientIdentity {
            key,
            cert,
            cert_len,
        })
    }

    /// The certificate (DER).
    pub fn cert(&self) -> &[u8] {
        self.cert.get(..self.cert_len).unwrap_or(&[])
    }

    /// The identity as the TLS client presents it (a copy).
    pub fn tls(&self) -> Result<Identity, crate::tls::TlsError> {
        Identity::new(self.key.clone(), self.cert())
    }

    /// SHA-256 of the certificate.
    pub fn fingerprint(&self) -> [u8; 32] {
        cert::fingerprint(self.cert())
    }

    /// Where the certificate stands at `now_unix` (T3, B4).
    pub fn expiry(&self, now_unix: u64) -> Expiry {
        match cert::parse(self.cert()) {
            Ok(view) => Expiry::at(&view, now_unix),
            // Checked at load; a certificate that stopped parsing is as
            // good as expired.
            Err(_) => Expiry::Expired { not_after: 0 },
        }
    }
}

/// Loads the pin record as the trust decision sees it; an unreadable pin
/// is still a pin (B1).
pub fn load_pin<P: Platform>(p: &mut P) -> PinState {
    let mut buf = [0u8; PinRecord::LEN];
    match p.load(Record::BmcPin, &mut buf) {
        Ok(Some(n)) => match buf.get(..n).map(PinRecord::decode) {
            Some(Ok(pin)) => PinState::Pinned(pin.sha256),
            _ => PinState::Unreadable,
        },
        Ok(None) => PinState::None,
        Err(_) => PinState::Unreadable,
    }
}

/// Loads the administrator's BMC fingerprint (`install --bmc-fingerprint`).
/// `Err` (audited) when it exists but cannot be read: a trust source that
/// cannot be read is not silently dropped.
pub fn load_admin_fingerprint<P: Platform>(p: &mut P) -> Result<Option<[u8; 32]>, StoreError> {
    let mut buf = [0u8; 32];
    let record = Record::AdminFingerprint;
    match p.load(record, &mut buf) {
        Ok(Some(32)) => Ok(Some(buf)),
        Ok(None) => Ok(None),
        Ok(Some(_)) | Err(_) => {
            let now = p.now();
            p.record(now, &AuditEvent::Store(StoreEvent::Corrupt { record }));
            Err(StoreError::Corrupt(record))
        }
    }
}

/// Saves the BMC pin after a successful enrollment.
pub fn save_pin<P: Platform>(p: &mut P, pin: [u8; 32]) {
    if p.save(Record::BmcPin, &PinRecord { sha256: pin }.encode())
        .is_err()
    {
        let now = p.now();
        p.record(
            now,
            &AuditEvent::Store(StoreEvent::Failed {
                record: Record::BmcPin,
            }),
        );
    }
}

/// `bmclink install` / `install --repair` / `cert renew`: a fresh identity
/// (T2, T8, B4) and no pin, so the agent enrolls again with the one-time
/// credential the bootstrap channel gives. Audits the renewal.
pub fn reinstall<P: Platform>(
    p: &mut P,
    common_name: &str,
) -> Result<ClientIdentity, IdentityError> {
    let now_unix = p.unix_time().unwrap_or(0);
    let id = ClientIdentity::generate(p, common_name, now_unix)?;
    if let Ok(view) = cert::parse(id.cert()) {
        let now = p.now();
        p.record(
            now,
            &AuditEvent::Tls(TlsEvent::Renewed {
                not_after: view.not_after,
            }),
        );
    }
    Ok(id)
}
