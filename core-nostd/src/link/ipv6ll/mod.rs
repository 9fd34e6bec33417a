//! RFC 4862 duplicate address detection and RFC 7217 stable identifiers.
