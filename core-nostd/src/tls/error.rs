//! What can go wrong on the TLS channel, in bmclink's words.
//!
//! embedded-tls reports a flat error enum; the pinning verifier knows more
//! (which fingerprint was presented, whether the signature failed), so a
//! handshake failure is reported from the verifier's record first and from
//! embedded-tls's error only when the verifier saw nothing wrong.

use core::fmt;

use embedded_tls::alert::AlertDescription;

use crate::cert::{CertError, ShortFingerprint};

/// Why the TLS channel failed. Every variant means: no data was exchanged
/// with an unauthenticated peer, and no plain fallback follows (T4, B1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TlsError {
    /// The server's certificate is not the pinned one (a man in the middle,
    /// or a BMC whose certificate changed without re-enrollment).
    PinMismatch {
        /// SHA-256 of the certificate we pin.
        pinned: [u8; 32],
        /// SHA-256 of the certificate the server presented.
        presented: [u8; 32],
    },
    /// The server's Certificate message carried no X.509 certificate.
    NoServerCertificate,
    /// The pinned certificate does not parse as a P-256 certificate.
    ServerCertificate(CertError),
    /// The server's CertificateVerify is not a valid ecdsa_secp256r1_sha256
    /// signature by the pinned certificate's key over the transcript.
    BadSignature {
        /// The signature scheme code point the server used.
        scheme: u16,
    },
    /// The server did not prove the pinned identity before its Finished
    /// (Certificate or CertificateVerify missing or out of order).
    ServerNotAuthenticated,
    /// The server completed the handshake without asking for our client
    /// certificate: it is not the mutually authenticated channel of T1.
    ClientCertificateNotRequested,
    /// The peer does not speak TLS 1.3: it answered `protocol_version`, or
    /// its ServerHello has no TLS 1.3 key share or cipher suite (T4).
    Version {
        /// What showed it.
        what: &'static str,
    },
    /// The server aborted the handshake with this alert (RFC 8446 §6).
    Alert {
        /// The alert description code.
        description: u8,
    },
    /// The server closed the connection with an alert after the handshake
    /// (embedded-tls 0.19 does not say which alert). On the first read this
    /// is how a BMC refusing our client certificate shows.
    AbortedAfterHandshake,
    /// A record or message TLS 1.3 forbids where it arrived (RFC 8446 §5,
    /// `unexpected_message`): after the ServerHello anything but a
    /// protected record (a plaintext handshake message, alert or
    /// change_cipher_spec, which anyone on the path can inject without
    /// keys), a protected record with no content, a handshake message after
    /// the handshake, or a server Finished before its Certificate and
    /// CertificateVerify (a server skipping authentication).
    UnexpectedRecord,
    /// A malformed, unexpected or undecryptable record or message.
    Protocol {
        /// embedded-tls's name for it.
        what: &'static str,
    },
    /// The transport failed.
    Io(embedded_io::ErrorKind),
    /// The peer closed the connection (TCP FIN, or close_notify).
    Closed,
}

impl TlsError {
    /// Maps an error of the handshake (`open`).
    pub fn from_handshake(e: embedded_tls::TlsError) -> Self {
        use embedded_tls::TlsError as E;
        match e {
            E::HandshakeAborted(_, AlertDescription::ProtocolVersion) => TlsError::Version {
                what: "protocol_version alert",
            },
            E::HandshakeAborted(_, d) => TlsError::Alert {
                description: d as u8,
            },
            E::InvalidKeyShare => TlsError::Version {
                what: "ServerHello without a P-256 key share",
            },
            E::InvalidCipherSuite => TlsError::Version {
                what: "ServerHello with a cipher suite that is not TLS_AES_128_GCM_SHA256",
            },
            E::InvalidSupportedVersions => TlsError::Version {
                what: "ServerHello without TLS 1.3 in supported_versions",
            },
            other => Self::from_record(other),
        }
    }

    /// Maps an error of reading or writing application data. embedded-tls
    /// reports an alert after the handshake (other than close_notify) as
    /// `InternalError`.
    pub fn from_application(e: embedded_tls::TlsError) -> Self {
        match e {
            embedded_tls::TlsError::InternalError => TlsError::AbortedAfterHandshake,
            other => Self::from_handshake(other),
        }
    }

    fn from_record(e: embedded_tls::TlsError) -> Self {
        use embedded_tls::TlsError as E;
        let what = match e {
            E::Io(kind) => return TlsError::Io(kind),
            // embedded-tls says IoError when a read returns 0 bytes (EOF).
            E::IoError | E::ConnectionClosed => return TlsError::Closed,
            E::HandshakeAborted(_, d) => {
                return TlsError::Alert {
                    description: d as u8,
                }
            }
            E::AbortHandshake(_, AlertDescription::UnexpectedMessage) => {
                return TlsError::UnexpectedRecord
            }
            E::Unimplemented => "Unimplemented",
            E::MissingHandshake => "MissingHandshake",
            E::AbortHandshake(..) => "AbortHandshake",
            E::InternalError => "InternalError",
            E::InvalidRecord => "InvalidRecord",
            E::UnknownContentType => "UnknownContentType",
            E::InvalidNonceLength => "InvalidNonceLength",
            E::InvalidTicketLength => "InvalidTicketLength",
            E::UnknownExtensionType => "UnknownExtensionType",
            E::InsufficientSpace => "InsufficientSpace",
            E::InvalidHandshake => "InvalidHandshake",
            E::InvalidCipherSuite => "InvalidCipherSuite",
            E::InvalidSignatureScheme => "InvalidSignatureScheme",
            E::InvalidSignature => "InvalidSignature (server Finished)",
            E::InvalidExtensionsLength => "InvalidExtensionsLength",
            E::InvalidSessionIdLength => "InvalidSessionIdLength",
            E::InvalidSupportedVersions => "InvalidSupportedVersions",
            E::InvalidApplicationData => "InvalidApplicationData",
            E::InvalidKeyShare => "InvalidKeyShare",
            E::InvalidCertificate => "InvalidCertificate",
            E::InvalidCertificateEntry => "InvalidCertificateEntry",
            E::InvalidCertificateRequest => "InvalidCertificateRequest",
            E::InvalidPrivateKey => "InvalidPrivateKey",
            E::UnableToInitializeCryptoEngine => "UnableToInitializeCryptoEngine",
            E::ParseError(_) => "ParseError",
            E::OutOfMemory => "OutOfMemory",
            E::CryptoError => "CryptoError (record failed to decrypt)",
            E::EncodeError => "EncodeError",
            E::DecodeError => "DecodeError",
        };
        TlsError::Protocol { what }
    }
}

/// Names of the alerts a BMC is likely to send.
fn alert_name(code: u8) -> &'static str {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        109 => "missing_extension",
        116 => "certificate_required",
        _ => "alert",
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::PinMismatch { pinned, presented } => write!(
                f,
                "server certificate {} is not the pinned {}",
                ShortFingerprint::of(presented),
                ShortFingerprint::of(pinned)
            ),
            TlsError::NoServerCertificate => f.write_str("server sent no X.509 certificate"),
            TlsError::ServerCertificate(e) => write!(f, "pinned server certificate unusable: {e}"),
            TlsError::BadSignature { scheme } => write!(
                f,
                "server CertificateVerify (scheme {scheme:#06x}) does not verify with the pinned key"
            ),
            TlsError::ServerNotAuthenticated => {
                f.write_str("server did not prove its certificate (Certificate/CertificateVerify missing or out of order)")
            }
            TlsError::ClientCertificateNotRequested => {
                f.write_str("server did not ask for the client certificate")
            }
            TlsError::Version { what } => write!(f, "peer does not speak TLS 1.3 ({what})"),
            TlsError::Alert { description } => write!(
                f,
                "server aborted with alert {} ({description})",
                alert_name(*description)
            ),
            TlsError::AbortedAfterHandshake => {
                f.write_str("server aborted after the handshake (client certificate refused?)")
            }
            TlsError::UnexpectedRecord => f.write_str(
                "the BMC stream carried a record or message TLS 1.3 forbids there (unexpected_message)",
            ),
            TlsError::Protocol { what } => write!(f, "TLS protocol failure: {what}"),
            TlsError::Io(kind) => write!(f, "transport error: {kind:?}"),
            TlsError::Closed => f.write_str("connection closed by the peer"),
        }
    }
}

impl embedded_io::Error for TlsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            TlsError::Io(kind) => *kind,
            TlsError::Closed => embedded_io::ErrorKind::ConnectionReset,
            _ => embedded_io::ErrorKind::Other,
        }
    }
}

impl core::error::Error for TlsError {}
