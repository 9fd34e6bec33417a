//! RFC 5227 address conflict detection and RFC 3927 address selection.
