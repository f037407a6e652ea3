//! The key set: an immutable snapshot of a keychain's keys, what a root
//! protects at rest and a store holds.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::key::{now_unix, Key, KeyInfo, KeyStatus, Purpose, Secret, Usage};
use crate::policy::Policy;
use crate::secret::KeyMaterial;
use crate::sign::Algorithm;
use crate::store::Revision;

/// An immutable snapshot of the keychain's keys. Readers load it without a
/// lock; writers build a new one and swap it in.
#[derive(Clone, Debug)]
pub(crate) struct KeySet {
    /// Keys in order of creation.
    pub(crate) keys: Vec<Key>,
    /// `(key_id, position in keys)`, sorted by key_id.
    index: Vec<(u32, usize)>,
    pub(crate) primary_encrypt: usize,
    pub(crate) primary_derive: usize,
    /// The signing primary, once a signing key exists (rotate_signing).
    pub(crate) primary_sign: Option<usize>,
    /// The streaming primary, once a stream key exists (rotate_streaming).
    pub(crate) primary_stream: Option<usize>,
    pub(crate) policy: Policy,
    /// The saved keychain's revision counter: one more on every write to a
    /// store (0 for a keychain never stored).
    pub(crate) revision: u64,
    /// The store revision this snapshot was read at or written as (`None`
    /// for an unbound keychain, or before the first write).
    pub(crate) stored: Option<Revision>,
}

impl KeySet {
    pub(crate) fn new(
        keys: Vec<Key>,
        primary_encrypt: u32,
        primary_derive: u32,
        policy: Policy,
    ) -> Result<KeySet> {
        let mut set = KeySet {
            keys,
            index: Vec::new(),
            primary_encrypt: 0,
            primary_derive: 0,
            primary_sign: None,
            primary_stream: None,
            policy,
            revision: 0,
            stored: None,
        };
        set.rebuild_index()?;
        set.primary_encrypt = set.primary_position(primary_encrypt, Purpose::Encrypt)?;
        set.primary_derive = set.primary_position(primary_derive, Purpose::Derive)?;
        Ok(set)
    }

    pub(crate) fn rebuild_index(&mut self) -> Result<()> {
        let mut index: Vec<(u32, usize)> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.id, i))
            .collect();
        index.sort_unstable();
        if index.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Error::format("two keys share one key_id"));
        }
        self.index = index;
        Ok(())
    }

    pub(crate) fn primary_position(&self, id: u32, purpose: Purpose) -> Result<usize> {
        let pos = self.position(id).ok_or_else(|| {
            Error::format(format!("the {purpose} primary {id} is not in the keychain"))
        })?;
        let k = &self.keys[pos];
        if k.purpose != purpose || k.status != KeyStatus::Enabled {
            return Err(Error::format(format!(
                "the {purpose} primary {id} is not an enabled {purpose} key"
            )));
        }
        Ok(pos)
    }

    #[inline]
    pub(crate) fn position(&self, key_id: u32) -> Option<usize> {
        self.index
            .binary_search_by_key(&key_id, |e| e.0)
            .ok()
            .map(|i| self.index[i].1)
    }

    /// The position of `purpose`'s primary; `None` only for `Sign` in a
    /// keychain without signing keys.
    pub(crate) fn primary_pos(&self, purpose: Purpose) -> Option<usize> {
        match purpose {
            Purpose::Encrypt => Some(self.primary_encrypt),
            Purpose::Derive => Some(self.primary_derive),
            Purpose::Sign => self.primary_sign,
            Purpose::Stream => self.primary_stream,
        }
    }

    /// The key ID of `purpose`'s primary (0 for `Sign` without one).
    pub(crate) fn primary_id(&self, purpose: Purpose) -> u32 {
        self.primary_pos(purpose).map_or(0, |p| self.keys[p].id)
    }

    /// Makes the key at `pos` the primary of `purpose`.
    pub(crate) fn set_primary(&mut self, purpose: Purpose, pos: usize) {
        match purpose {
            Purpose::Encrypt => self.primary_encrypt = pos,
            Purpose::Derive => self.primary_derive = pos,
            Purpose::Sign => self.primary_sign = Some(pos),
            Purpose::Stream => self.primary_stream = Some(pos),
        }
    }

    /// The signing primary's position, or `UnknownKey` if there is none.
    pub(crate) fn primary_sign_pos(&self) -> Result<usize> {
        self.primary_sign.ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownKey,
                "this keychain has no signing key (make one with rotate_signing)",
            )
        })
    }

    pub(crate) fn is_primary(&self, pos: usize) -> bool {
        pos == self.primary_encrypt
            || pos == self.primary_derive
            || self.primary_sign == Some(pos)
            || self.primary_stream == Some(pos)
    }

    /// The streaming primary's position, or `UnknownKey` if there is none.
    pub(crate) fn primary_stream_pos(&self) -> Result<usize> {
        self.primary_stream.ok_or_else(|| {
            Error::new(
                ErrorKind::UnknownKey,
                "this keychain has no streaming key (make one with rotate_streaming)",
            )
        })
    }

    /// The key `key_id`, usable for `purpose`, with its material.
    #[inline]
    pub(crate) fn usable(&self, key_id: u32, purpose: Purpose) -> Result<(&Key, &Secret)> {
        let key = self
            .position(key_id)
            .map(|p| &self.keys[p])
            .filter(|k| k.purpose == purpose)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UnknownKey,
                    format!("no {purpose} key with key_id {key_id} in this keychain"),
                )
            })?;
        match (key.status, &key.secret) {
            (KeyStatus::Enabled, Some(s)) => Ok((key, s)),
            (KeyStatus::Disabled, _) => Err(Error::new(
                ErrorKind::KeyDisabled,
                format!("key {key_id} (version {}) is disabled", key.version),
            )),
            _ => Err(Error::new(
                ErrorKind::KeyDestroyed,
                format!("key {key_id} (version {}) was destroyed", key.version),
            )),
        }
    }

    fn next_version(&self, purpose: Purpose) -> Result<u32> {
        self.keys
            .iter()
            .filter(|k| k.purpose == purpose)
            .map(|k| k.version)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| {
                Error::policy(format!("the {purpose} keys have used every version number"))
            })
    }

    /// A fresh key ID in [1, 2^31-1] not used in this set.
    fn fresh_id(&self) -> Result<u32> {
        loop {
            let mut b = [0u8; 4];
            crate::aead::fill_random(&mut b)?;
            let id = u32::from_be_bytes(b) & 0x7fff_ffff;
            if id != 0 && self.position(id).is_none() {
                return Ok(id);
            }
        }
    }

    /// Adds a new enabled key and returns its position. `usage` is this
    /// process's counter for it; `stored_usage` what the store records.
    pub(crate) fn push_new(
        &mut self,
        purpose: Purpose,
        usage: Usage,
        stored_usage: u64,
    ) -> Result<usize> {
        if purpose == Purpose::Sign {
            return Err(Error::invalid(
                "a signing key needs an algorithm: use rotate_signing or add_signing_key",
            ));
        }
        if purpose == Purpose::Stream {
            return Err(Error::invalid(
                "a streaming key needs a format: use rotate_streaming or add_stream_key",
            ));
        }
        self.push_key(purpose, None, KeyMaterial::random()?, usage, stored_usage)
    }

    /// Adds a new enabled signing key of `alg` and returns its position.
    #[cfg(feature = "aws-lc")]
    pub(crate) fn push_new_signing(&mut self, alg: Algorithm, usage: Usage) -> Result<usize> {
        let secret = crate::sign::KeyPair::generate_secret(alg)?;
        self.push_key(Purpose::Sign, Some(alg), KeyMaterial(*secret), usage, 0)
    }

    /// Adds an imported Ed25519 signing key (from a minisign secret key
    /// file) with the key ID it came with; returns its position.
    #[cfg(feature = "aws-lc")]
    pub(crate) fn push_imported_minisign(
        &mut self,
        seed: &[u8; 32],
        key_id: [u8; 8],
        usage: Usage,
    ) -> Result<usize> {
        let pos = self.push_key(
            Purpose::Sign,
            Some(Algorithm::Ed25519),
            KeyMaterial(*seed),
            usage,
            0,
        )?;
        self.keys[pos].minisign_key_id = Some(key_id);
        Ok(pos)
    }

    /// Adds a new enabled streaming key of `format`; returns its position.
    pub(crate) fn push_new_stream(
        &mut self,
        format: crate::stream::StreamFormat,
        usage: Usage,
    ) -> Result<usize> {
        let pos = self.push_key(Purpose::Stream, None, KeyMaterial::random()?, usage, 0)?;
        self.keys[pos].stream_format = Some(format);
        Ok(pos)
    }

    fn push_key(
        &mut self,
        purpose: Purpose,
        algorithm: Option<Algorithm>,
        material: KeyMaterial,
        usage: Usage,
        stored_usage: u64,
    ) -> Result<usize> {
        let id = self.fresh_id()?;
        let version = self.next_version(purpose)?;
        self.keys.push(Key {
            id,
            version,
            purpose,
            status: KeyStatus::Enabled,
            created_at: now_unix(),
            algorithm,
            minisign_key_id: None,
            stream_format: None,
            secret: Some(Arc::new(Secret::new(material))),
            usage: Arc::new(usage),
            stored_usage,
        });
        let pos = self.keys.len() - 1;
        let at = self.index.partition_point(|e| e.0 < id);
        self.index.insert(at, (id, pos));
        Ok(pos)
    }

    /// Adds a new encryption key to a bound keychain's set and makes it the
    /// primary, with its first `block` usage counts (at most the policy's
    /// limit) reserved for this process: they are usable only once this set
    /// is stored, since nothing else can reach the new key. Returns its
    /// position.
    pub(crate) fn push_bound_encrypt_primary(&mut self, block: u64) -> Result<usize> {
        let end = block.min(self.policy.max_encryptions_per_key);
        let usage = Usage::bound();
        usage.install_block(0, end);
        let pos = self.push_new(Purpose::Encrypt, usage, end)?;
        self.primary_encrypt = pos;
        Ok(pos)
    }

    /// This set, as read from a store, with what this process keeps for
    /// keys it already knows: their usage counters (the blocks it owns)
    /// and their expanded ciphers. Keys new to this process own no counts.
    pub(crate) fn adopted_from(mut self, local: &KeySet) -> KeySet {
        for k in &mut self.keys {
            match local.position(k.id).map(|p| &local.keys[p]) {
                Some(mine) => {
                    k.usage = Arc::clone(&mine.usage);
                    if let (Some(ours), Some(theirs)) = (&mine.secret, &k.secret) {
                        if ours.material.0 == theirs.material.0 {
                            k.secret = Some(Arc::clone(ours));
                        }
                    }
                }
                None => k.usage = Arc::new(Usage::bound()),
            }
        }
        self
    }

    pub(crate) fn info(&self, pos: usize) -> KeyInfo {
        self.keys[pos].info(self.is_primary(pos))
    }

    pub(crate) fn empty() -> KeySet {
        KeySet {
            keys: Vec::new(),
            index: Vec::new(),
            primary_encrypt: usize::MAX,
            primary_derive: usize::MAX,
            primary_sign: None,
            primary_stream: None,
            policy: Policy::default(),
            revision: 0,
            stored: None,
        }
    }
}
