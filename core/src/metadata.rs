//! The metadata context: how an object's metadata map becomes the
//! `context` bytes given to [`wrap_key`](crate::KeyManager::wrap_key) and
//! [`unwrap_key`](crate::KeyManager::unwrap_key) (FORMAT.md §4.2).
//!
//! Object-store gateways hand their key manager a `map[string]string` of
//! object metadata on every wrap and unwrap. Which of those entries the
//! wrapped key is bound to is the caller's choice, a [`MetadataBinding`]:
//! nothing (the default: gateways pass different maps at wrap and unwrap
//! time), a named set of entries, or every entry. The chosen entries are
//! encoded canonically, so every language derives the same bytes:
//!
//! ```text
//! for each bound entry, sorted by name (bytewise):
//!     escape(name) "=" escape(value) "\n"
//! escape: "%" -> "%25", "=" -> "%3D", "\n" -> "%0A"
//! ```
//!
//! The four envelope entries (`x-amz-meta-encryption-wrapped-key`,
//! `-kms-id`, `-kms-provider`, `-key-version`) are never bound: they are
//! what wrapping produces. No bound entry gives the empty context.
//!
//! ```
//! use keystrata::metadata::{metadata_context, MetadataBinding};
//! let meta = [("bucket", "photos"), ("x-amz-meta-user", "a=b")];
//! let all = metadata_context(meta, &MetadataBinding::All)?;
//! assert_eq!(all, b"bucket=photos\nx-amz-meta-user=a%3Db\n");
//! let some = metadata_context(meta, &MetadataBinding::only(["bucket"]))?;
//! assert_eq!(some, b"bucket=photos\n");
//! assert!(metadata_context(meta, &MetadataBinding::Nothing)?.is_empty());
//! # Ok::<(), keystrata::Error>(())
//! ```

use std::collections::BTreeSet;

use crate::error::{truncate_for_message, Error, Result};
use crate::wrapped_key::{META_KEY_VERSION, META_KMS_ID, META_PROVIDER, META_WRAPPED_KEY};

/// Which metadata entries a wrapped key is bound to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataBinding {
    /// Bind no entry: the context is empty whatever the map holds. The
    /// default, because gateways pass one map when wrapping (the user's)
    /// and another when unwrapping (the stored, expanded map).
    #[default]
    Nothing,
    /// Bind exactly the named entries that are present (a name absent at
    /// wrap time must be absent at unwrap time too).
    Only(BTreeSet<String>),
    /// Bind every entry but the four envelope entries (the behaviour of the
    /// Go KeyManager in 0.1).
    All,
}

impl MetadataBinding {
    /// Binds exactly the named entries.
    pub fn only<I, S>(names: I) -> MetadataBinding
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MetadataBinding::Only(names.into_iter().map(Into::into).collect())
    }

    /// The stable number of this binding's kind, shared by every binding
    /// (the C `KS_BIND_*` values): 1 nothing, 2 only (the named entries),
    /// 3 all. Never reused; next free number: 4.
    pub fn code(&self) -> u32 {
        match self {
            MetadataBinding::Nothing => 1,
            MetadataBinding::Only(_) => 2,
            MetadataBinding::All => 3,
        }
    }

    /// The binding of kind `code` ([`code`](MetadataBinding::code)); `names`
    /// are used only by kind 2. `None` for an unknown number.
    pub fn from_code<I, S>(code: u32, names: I) -> Option<MetadataBinding>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Some(match code {
            1 => MetadataBinding::Nothing,
            2 => MetadataBinding::only(names),
            3 => MetadataBinding::All,
            _ => return None,
        })
    }

    /// The binding named `"nothing"` or `"all"` (a set of names has no
    /// name: use [`only`](MetadataBinding::only)); `InvalidInput` otherwise,
    /// echoing at most 64 characters of `name`: the message every binding
    /// gives.
    pub fn from_name(name: &str) -> Result<MetadataBinding> {
        match name {
            "nothing" => Ok(MetadataBinding::Nothing),
            "all" => Ok(MetadataBinding::All),
            other => Err(Error::invalid(format!(
                "a metadata binding is \"nothing\", \"all\" or a list of names, not {:?}",
                truncate_for_message(other, 64)
            ))),
        }
    }

    fn binds(&self, name: &str) -> bool {
        if is_envelope_entry(name) {
            return false;
        }
        match self {
            MetadataBinding::Nothing => false,
            MetadataBinding::Only(names) => names.contains(name),
            MetadataBinding::All => true,
        }
    }
}

/// True for the four entries of an envelope's metadata form.
pub fn is_envelope_entry(name: &str) -> bool {
    matches!(
        name,
        META_WRAPPED_KEY | META_KMS_ID | META_PROVIDER | META_KEY_VERSION
    )
}

/// The context bytes for `entries` under `binding` (see the module docs).
///
/// A name given twice is `InvalidInput` (a map cannot hold it twice; a list
/// of pairs from C can).
pub fn metadata_context<K, V>(
    entries: impl IntoIterator<Item = (K, V)>,
    binding: &MetadataBinding,
) -> Result<Vec<u8>>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut bound: Vec<(K, V)> = Vec::new();
    for (k, v) in entries {
        if binding.binds(k.as_ref()) {
            bound.push((k, v));
        }
    }
    if bound.is_empty() {
        return Ok(Vec::new());
    }
    bound.sort_unstable_by(|a, b| a.0.as_ref().as_bytes().cmp(b.0.as_ref().as_bytes()));
    if let Some(w) = bound
        .windows(2)
        .find(|w| w[0].0.as_ref() == w[1].0.as_ref())
    {
        return Err(Error::invalid(format!(
            "metadata entry {:?} is given twice",
            truncate_for_message(w[0].0.as_ref(), 64)
        )));
    }
    let len: usize = bound
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(len + len / 8);
    for (k, v) in &bound {
        escape_into(&mut out, k.as_ref());
        out.push(b'=');
        escape_into(&mut out, v.as_ref());
        out.push(b'\n');
    }
    Ok(out)
}

fn escape_into(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'=' => out.extend_from_slice(b"%3D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sorts() {
        let m = [("b", "x\ny"), ("a=b", "c"), ("%", "%")];
        let got = metadata_context(m, &MetadataBinding::All).expect("ok");
        assert_eq!(got, b"%25=%25\na%3Db=c\nb=x%0Ay\n");
    }

    #[test]
    fn envelope_entries_are_never_bound() {
        let m = [
            (META_WRAPPED_KEY, "AAAA"),
            (META_KMS_ID, "1"),
            (META_PROVIDER, "keystrata"),
            (META_KEY_VERSION, "1"),
        ];
        assert!(metadata_context(m, &MetadataBinding::All)
            .expect("ok")
            .is_empty());
        let named = MetadataBinding::only([META_KMS_ID, "bucket"]);
        let with_bucket = [(META_KMS_ID, "1"), ("bucket", "b")];
        assert_eq!(
            metadata_context(with_bucket, &named).expect("ok"),
            b"bucket=b\n"
        );
    }

    #[test]
    fn only_binds_the_named_entries() {
        let m = [("bucket", "b"), ("uploadId", "u"), ("user", "x")];
        let b = MetadataBinding::only(["bucket", "uploadId"]);
        assert_eq!(
            metadata_context(m, &b).expect("ok"),
            b"bucket=b\nuploadId=u\n"
        );
        assert!(metadata_context(m, &MetadataBinding::Nothing)
            .expect("ok")
            .is_empty());
        assert!(metadata_context(m, &MetadataBinding::default())
            .expect("ok")
            .is_empty());
    }

    #[test]
    fn distinct_maps_encode_differently() {
        let a = metadata_context([("a", "b=c")], &MetadataBinding::All).expect("ok");
        let b = metadata_context([("a=b", "c")], &MetadataBinding::All).expect("ok");
        let c = metadata_context([("a", "b\nc=d")], &MetadataBinding::All).expect("ok");
        let d = metadata_context([("a", "b"), ("c", "d")], &MetadataBinding::All).expect("ok");
        assert_ne!(a, b);
        assert_ne!(c, d);
    }

    #[test]
    fn duplicates_are_refused_without_echoing_much() {
        let long = "n".repeat(10_000);
        let e = metadata_context(
            [(long.as_str(), "1"), (long.as_str(), "2")],
            &MetadataBinding::All,
        )
        .expect_err("duplicate");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.to_string().len() < 200, "{e}");
        // A duplicate of an unbound name is not looked at.
        assert!(metadata_context([("x", "1"), ("x", "2")], &MetadataBinding::Nothing).is_ok());
    }
}
