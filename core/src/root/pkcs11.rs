//! PKCS#11 root (in progress).
