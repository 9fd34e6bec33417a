//! The client identity (P-256 key + self-signed certificate) and the trust
//! decision made before every connection: which channel, which pin, and
//! whether this connection enrolls.

use p256::ecdsa::SigningKey;

use crate::audit::{AuditEvent, StoreEvent, TlsEvent};
use crate::cert::{self, identity, CertError, CertParams, Expiry, MAX_CERT_LEN};
use crate::platform::{Platform, Record, StoreError};
use crate::records::PinRecord;
use crate::tls::Identity;
use crate::types::Channel;

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

    /// The identity as the TLS client presents it.
    pub fn tls(&self) -> Identity<'_> {
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

/// How the next connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The legacy plain channel (T5: no pin, firmware without TLS).
    Plain,
    /// TLS pinning the BMC certificate; `enroll` when the pin comes from the
    /// bootstrap channel and this connection sends ENROLL.
    Tls {
        /// SHA-256 of the BMC certificate.
        pin: [u8; 32],
        /// This connection enrolls.
        enroll: bool,
    },
    /// A pin exists but TLS cannot be used now: never plain (B1).
    Refused,
}

impl Trust {
    /// The channel this trust leads to, if any.
    pub fn channel(self) -> Option<Channel> {
        match self {
            Trust::Plain => Some(Channel::Plain),
            Trust::Tls { .. } => Some(Channel::Tls13),
            Trust::Refused => None,
        }
    }

    /// Decides from the stored pin and the bootstrap channel.
    pub fn decide<P: Platform>(p: &mut P) -> Trust {
        let mut buf = [0u8; PinRecord::LEN];
        match p.load(Record::BmcPin, &mut buf) {
            Ok(Some(n)) => match buf.get(..n).map(PinRecord::decode) {
                Some(Ok(pin)) => {
                    return Trust::Tls {
                        pin: pin.sha256,
                        enroll: false,
                    }
                }
                _ => {
                    // A pin we cannot read is still a pin: never plain.
                    let now = p.now();
                    p.record(
                        now,
                        &AuditEvent::Store(StoreEvent::Corrupt {
                            record: Record::BmcPin,
                        }),
                    );
                    return Trust::Refused;
                }
            },
            Ok(None) => {}
            Err(_) => {
                let now = p.now();
                p.record(
                    now,
                    &AuditEvent::Store(StoreEvent::Failed {
                        record: Record::BmcPin,
                    }),
                );
                return Trust::Refused;
            }
        }
        match p.bmc_facts() {
            Some(f) if f.tls => match f.fingerprint {
                Some(pin) => Trust::Tls { pin, enroll: true },
                // TLS firmware that publishes no fingerprint cannot be
                // authenticated: refuse rather than trust blindly.
                None => Trust::Refused,
            },
            // Old firmware (T5), or no bootstrap answer and nothing pinned:
            // the plain channel, as older agents did.
            _ => Trust::Plain,
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
