//! A Kubernetes KMS v2 plugin over a keystrata keychain (work in progress).
