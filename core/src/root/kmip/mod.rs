//! KMIP root (in progress).
