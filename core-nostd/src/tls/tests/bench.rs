//! Handshake cost: embedded-tls client vs rustls client, same rustls server.
