//! minisign's formats: public keys, signatures and secret-key files.
