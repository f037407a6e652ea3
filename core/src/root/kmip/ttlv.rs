//! KMIP's binary Tag-Type-Length-Value encoding (KMIP 1.4 §9.1, 2.0 §9.1).
//!
//! Every item is a 3-byte tag, a 1-byte type, a 4-byte big-endian length
//! and a value padded with zero bytes to a multiple of 8. A structure's
//! value is the concatenation of its items. This module knows nothing of
//! KMIP operations: it turns an [`Item`] tree into bytes and back.
//!
//! The tree has the shape of KMIP's JSON encoding (tag, type, value), so
//! the same tree can later be sent as JSON TTLV over HTTPS: a structure
//! maps to `{"tag": "0x420078", "type": "Structure", "value": [...]}`, a
//! byte string to a hex `value`, and so on (see `docs/KMIP.md`).
//!
//! Decoding is strict and never panics: lengths must match the type,
//! padding bytes must be zero, a structure's items must fill it exactly,
//! text must be UTF-8, booleans 0 or 1; nesting is bounded by
//! [`MAX_DEPTH`]. Errors are [`ErrorKind::Format`](crate::ErrorKind::Format).

use std::fmt;

use zeroize::Zeroize;

use crate::error::{Error, Result};

/// How deeply structures may nest when decoding.
pub const MAX_DEPTH: usize = 32;

/// A TTLV tag: a 24-bit number (`0x42xxxx` for KMIP's own tags,
/// `0x54xxxx` for extensions).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

impl Tag {
    /// The tag with number `n`, if it fits in 24 bits.
    pub const fn new(n: u32) -> Option<Tag> {
        if n <= 0x00FF_FFFF {
            Some(Tag(n))
        } else {
            None
        }
    }

    /// A tag for a constant known to fit in 24 bits (checked at compile
    /// time when used in a `const`).
    pub(crate) const fn of(n: u32) -> Tag {
        assert!(n <= 0x00FF_FFFF, "a TTLV tag has 24 bits");
        Tag(n)
    }

    /// The tag's number.
    pub const fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:06X}", self.0)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:06X}", self.0)
    }
}

/// The value of an item: one of the eleven TTLV types.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Type 0x01: an ordered list of items.
    Structure(Vec<Item>),
    /// Type 0x02: a signed 32-bit integer.
    Integer(i32),
    /// Type 0x03: a signed 64-bit integer.
    LongInteger(i64),
    /// Type 0x04: a two's-complement big-endian integer whose length is a
    /// multiple of 8 bytes (the encoder sign-extends shorter values).
    BigInteger(Vec<u8>),
    /// Type 0x05: a 32-bit enumeration value.
    Enumeration(u32),
    /// Type 0x06: a boolean (encoded as a 64-bit 0 or 1).
    Boolean(bool),
    /// Type 0x07: UTF-8 text.
    TextString(String),
    /// Type 0x08: bytes. `Debug` prints only their length.
    ByteString(Vec<u8>),
    /// Type 0x09: seconds since the Unix epoch.
    DateTime(i64),
    /// Type 0x0A: a duration in seconds.
    Interval(u32),
    /// Type 0x0B (KMIP 2.0): microseconds since the Unix epoch.
    DateTimeExtended(i64),
}

impl Value {
    /// The type byte written on the wire.
    pub const fn type_code(&self) -> u8 {
        match self {
            Value::Structure(_) => 0x01,
            Value::Integer(_) => 0x02,
            Value::LongInteger(_) => 0x03,
            Value::BigInteger(_) => 0x04,
            Value::Enumeration(_) => 0x05,
            Value::Boolean(_) => 0x06,
            Value::TextString(_) => 0x07,
            Value::ByteString(_) => 0x08,
            Value::DateTime(_) => 0x09,
            Value::Interval(_) => 0x0A,
            Value::DateTimeExtended(_) => 0x0B,
        }
    }

    /// The type's name as KMIP's JSON and XML encodings spell it
    /// (`"Structure"`, `"TextString"`, …).
    pub const fn type_name(&self) -> &'static str {
        match self {
            Value::Structure(_) => "Structure",
            Value::Integer(_) => "Integer",
            Value::LongInteger(_) => "LongInteger",
            Value::BigInteger(_) => "BigInteger",
            Value::Enumeration(_) => "Enumeration",
            Value::Boolean(_) => "Boolean",
            Value::TextString(_) => "TextString",
            Value::ByteString(_) => "ByteString",
            Value::DateTime(_) => "DateTime",
            Value::Interval(_) => "Interval",
            Value::DateTimeExtended(_) => "DateTimeExtended",
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Structure(items) => f.debug_list().entries(items).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(v) => write!(f, "BigInteger(<{} bytes>)", v.len()),
            Value::Enumeration(v) => write!(f, "Enumeration(0x{v:08X})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(v) => write!(f, "TextString({v:?})"),
            // Byte strings carry key material and plaintext: never print them.
            Value::ByteString(v) => write!(f, "ByteString(<{} bytes>)", v.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
            Value::DateTimeExtended(v) => write!(f, "DateTimeExtended({v})"),
        }
    }
}

impl Zeroize for Value {
    fn zeroize(&mut self) {
        match self {
            Value::Structure(items) => items.iter_mut().for_each(Zeroize::zeroize),
            Value::ByteString(b) | Value::BigInteger(b) => b.zeroize(),
            Value::TextString(s) => s.zeroize(),
            _ => {}
        }
    }
}

/// One TTLV item: a tag and a typed value.
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    /// The item's tag.
    pub tag: Tag,
    /// The item's value.
    pub value: Value,
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.tag, self.value)
    }
}

impl Zeroize for Item {
    fn zeroize(&mut self) {
        self.value.zeroize();
    }
}

impl Item {
    /// An item of `tag` holding `value`.
    pub fn new(tag: Tag, value: Value) -> Item {
        Item { tag, value }
    }
    /// A structure.
    pub fn structure(tag: Tag, items: Vec<Item>) -> Item {
        Item::new(tag, Value::Structure(items))
    }
    /// An integer.
    pub fn integer(tag: Tag, v: i32) -> Item {
        Item::new(tag, Value::Integer(v))
    }
    /// An enumeration.
    pub fn enumeration(tag: Tag, v: u32) -> Item {
        Item::new(tag, Value::Enumeration(v))
    }
    /// A text string.
    pub fn text(tag: Tag, v: impl Into<String>) -> Item {
        Item::new(tag, Value::TextString(v.into()))
    }
    /// A byte string.
    pub fn bytes(tag: Tag, v: impl Into<Vec<u8>>) -> Item {
        Item::new(tag, Value::ByteString(v.into()))
    }

    /// The items of a structure (empty for other types).
    pub fn items(&self) -> &[Item] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }
    /// The first item of this structure with `tag`.
    pub fn child(&self, tag: Tag) -> Option<&Item> {
        self.items().iter().find(|i| i.tag == tag)
    }
    /// Every item of this structure with `tag`.
    pub fn children(&self, tag: Tag) -> impl Iterator<Item = &Item> {
        self.items().iter().filter(move |i| i.tag == tag)
    }
    /// The value as text, if it is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(s) => Some(s),
            _ => None,
        }
    }
    /// The value as bytes, if it is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(b) => Some(b),
            _ => None,
        }
    }
    /// The value, if it is an enumeration.
    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }
    /// The value, if it is an integer.
    pub fn as_int(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }

    /// Encodes this item (and everything inside it) as TTLV bytes.
    ///
    /// Fails only for a value longer than 4 GiB.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends this item's TTLV bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.tag.0.to_be_bytes()[1..]);
        out.push(self.value.type_code());
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        match &self.value {
            Value::Structure(items) => {
                for item in items {
                    item.encode_into(out)?;
                }
            }
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::BigInteger(v) => {
                // Sign-extend to a non-zero multiple of 8 bytes.
                let fill = if v.first().is_some_and(|b| b & 0x80 != 0) {
                    0xFF
                } else {
                    0x00
                };
                let n = v.len().max(1).div_ceil(8) * 8;
                out.resize(out.len() + (n - v.len()), fill);
                out.extend_from_slice(v);
            }
            Value::Enumeration(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
            Value::ByteString(b) => out.extend_from_slice(b),
            Value::DateTime(v) | Value::DateTimeExtended(v) => {
                out.extend_from_slice(&v.to_be_bytes())
            }
            Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
        }
        let len = out.len() - start;
        let len32 =
            u32::try_from(len).map_err(|_| Error::invalid("a TTLV value is longer than 4 GiB"))?;
        out[len_at..start].copy_from_slice(&len32.to_be_bytes());
        out.resize(start + padded(len), 0);
        Ok(())
    }

    /// Decodes exactly one item that fills `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Item> {
        let (item, used) = decode_item(bytes, 0)?;
        if used != bytes.len() {
            return Err(Error::format(format!(
                "{} bytes after the TTLV item",
                bytes.len() - used
            )));
        }
        Ok(item)
    }
}

/// `n` rounded up to a multiple of 8.
fn padded(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Reads an item header: tag, type byte and value length.
pub(crate) fn decode_header(h: &[u8; 8]) -> (Tag, u8, u32) {
    let tag = u32::from_be_bytes([0, h[0], h[1], h[2]]);
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    (Tag(tag), h[3], len)
}

fn decode_item(buf: &[u8], depth: usize) -> Result<(Item, usize)> {
    if depth > MAX_DEPTH {
        return Err(Error::format(format!(
            "TTLV structures nest deeper than {MAX_DEPTH}"
        )));
    }
    let header: &[u8; 8] = buf
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| Error::format("TTLV item header is cut short"))?;
    let (tag, ty, len) = decode_header(header);
    let len = len as usize;
    let total = padded(len)
        .checked_add(8)
        .filter(|&t| t <= buf.len())
        .ok_or_else(|| Error::format(format!("TTLV item {tag} is cut short")))?;
    let body = &buf[8..8 + len];
    if buf[8 + len..total].iter().any(|&b| b != 0) {
        return Err(Error::format(format!(
            "TTLV item {tag} has non-zero padding"
        )));
    }
    let fixed = |want: usize| -> Result<()> {
        if len == want {
            Ok(())
        } else {
            Err(Error::format(format!(
                "TTLV item {tag} of type 0x{ty:02X} has length {len}, not {want}"
            )))
        }
    };
    let b4 = |b: &[u8]| -> [u8; 4] { [b[0], b[1], b[2], b[3]] };
    let b8 = |b: &[u8]| -> [u8; 8] { [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]] };
    let value = match ty {
        0x01 => {
            let mut items = Vec::new();
            let mut pos = 0;
            while pos < body.len() {
                let (item, used) = decode_item(&body[pos..], depth + 1)?;
                items.push(item);
                pos += used;
            }
            Value::Structure(items)
        }
        0x02 => {
            fixed(4)?;
            Value::Integer(i32::from_be_bytes(b4(body)))
        }
        0x03 => {
            fixed(8)?;
            Value::LongInteger(i64::from_be_bytes(b8(body)))
        }
        0x04 => {
            if len == 0 || !len.is_multiple_of(8) {
                return Err(Error::format(format!(
                    "TTLV big integer {tag} has length {len}, not a multiple of 8"
                )));
            }
            Value::BigInteger(body.to_vec())
        }
        0x05 => {
            fixed(4)?;
            Value::Enumeration(u32::from_be_bytes(b4(body)))
        }
        0x06 => {
            fixed(8)?;
            match u64::from_be_bytes(b8(body)) {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => {
                    return Err(Error::format(format!(
                        "TTLV boolean {tag} is neither 0 nor 1"
                    )))
                }
            }
        }
        0x07 => Value::TextString(
            String::from_utf8(body.to_vec())
                .map_err(|_| Error::format(format!("TTLV text {tag} is not UTF-8")))?,
        ),
        0x08 => Value::ByteString(body.to_vec()),
        0x09 => {
            fixed(8)?;
            Value::DateTime(i64::from_be_bytes(b8(body)))
        }
        0x0A => {
            fixed(4)?;
            Value::Interval(u32::from_be_bytes(b4(body)))
        }
        0x0B => {
            fixed(8)?;
            Value::DateTimeExtended(i64::from_be_bytes(b8(body)))
        }
        other => {
            return Err(Error::format(format!(
                "TTLV item {tag} has unknown type 0x{other:02X}"
            )))
        }
    };
    Ok((Item { tag, value }, total))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ErrorKind;
    use proptest::prelude::*;

    /// The tag of the specification's examples (Compromise Date).
    const T: Tag = Tag::of(0x420020);

    fn spec(hex: &str) -> Vec<u8> {
        let h: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    fn check(item: Item, hex: &str) {
        let bytes = spec(hex);
        assert_eq!(item.encode().unwrap(), bytes, "{item:?}");
        assert_eq!(Item::decode(&bytes).unwrap(), item);
    }

    // KMIP 1.4 §9.1.2 "Examples", byte for byte.
    #[test]
    fn specification_examples() {
        check(
            Item::integer(T, 8),
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00",
        );
        check(
            Item::new(T, Value::LongInteger(123_456_789_000_000_000)),
            "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
        );
        // 1234567890000000000000000000
        check(
            Item::new(
                T,
                Value::BigInteger(spec("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00")),
            ),
            "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
        );
        check(
            Item::enumeration(T, 255),
            "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
        );
        check(
            Item::new(T, Value::Boolean(true)),
            "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01",
        );
        check(
            Item::text(T, "Hello World"),
            "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
        );
        check(
            Item::bytes(T, vec![1, 2, 3]),
            "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
        );
        // Friday, March 14, 2008, 11:56:40 GMT
        check(
            Item::new(T, Value::DateTime(0x47DA67F8)),
            "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
        );
        // 10 days
        check(
            Item::new(T, Value::Interval(864_000)),
            "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
        );
        check(
            Item::structure(
                T,
                vec![
                    Item::enumeration(Tag::of(0x420004), 254),
                    Item::integer(Tag::of(0x420005), 255),
                ],
            ),
            "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 \
             | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
        );
    }

    #[test]
    fn big_integers_are_sign_extended() {
        let e = Item::new(T, Value::BigInteger(vec![0x80, 1]))
            .encode()
            .unwrap();
        assert_eq!(&e[8..], &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 1]);
        let e = Item::new(T, Value::BigInteger(vec![])).encode().unwrap();
        assert_eq!(&e[4..], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn strict_decoding() {
        let bad = [
            // cut short
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00",
            "42 00 20 | 02 | 00 00",
            // wrong length for the type
            "42 00 20 | 02 | 00 00 00 08 | 00 00 00 08 00 00 00 00",
            "42 00 20 | 06 | 00 00 00 04 | 00 00 00 01 00 00 00 00",
            // non-zero padding
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 01",
            "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 09",
            // boolean 2
            "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 02",
            // bad UTF-8
            "42 00 20 | 07 | 00 00 00 01 | FF 00 00 00 00 00 00 00",
            // unknown type
            "42 00 20 | 0C | 00 00 00 00",
            // big integer not a multiple of 8
            "42 00 20 | 04 | 00 00 00 04 | 00 00 00 01 00 00 00 00",
            // structure whose item overruns it
            "42 00 20 | 01 | 00 00 00 08 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00",
            // trailing bytes
            "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00 | 00",
            // huge length
            "42 00 20 | 08 | FF FF FF FF | 00",
        ];
        for hex in bad {
            let err = Item::decode(&spec(hex)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Format, "{hex}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut item = Item::integer(T, 1);
        for _ in 0..(MAX_DEPTH + 2) {
            item = Item::structure(T, vec![item]);
        }
        let bytes = item.encode().unwrap();
        assert_eq!(Item::decode(&bytes).unwrap_err().kind(), ErrorKind::Format);
    }

    #[test]
    fn debug_hides_byte_strings() {
        let s = format!("{:?}", Item::bytes(T, b"secret-key-bytes".to_vec()));
        assert!(!s.contains("115") && !s.contains("secret"), "{s}");
        assert!(s.contains("16 bytes"), "{s}");
    }

    fn arb_item() -> impl Strategy<Value = Item> {
        arb_item_of(
            (0u32..=0xFF_FFFF).prop_map(Tag::of),
            (1usize..4, any::<[u8; 8]>()).prop_map(|(n, b)| b.repeat(n)),
        )
    }

    /// Any item of up to 4 levels with tags from `tag` and Big Integers from
    /// `big` (the binary form pads them to 8 bytes; JSON does not): the
    /// codecs' round-trip property tests share it.
    pub(crate) fn arb_item_of(
        tag: impl Strategy<Value = Tag> + Clone + 'static,
        big: impl Strategy<Value = Vec<u8>> + 'static,
    ) -> impl Strategy<Value = Item> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(Value::Integer),
            any::<i64>().prop_map(Value::LongInteger),
            big.prop_map(Value::BigInteger),
            any::<u32>().prop_map(Value::Enumeration),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,20}".prop_map(Value::TextString),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::ByteString),
            any::<i64>().prop_map(Value::DateTime),
            any::<u32>().prop_map(Value::Interval),
            any::<i64>().prop_map(Value::DateTimeExtended),
        ];
        let leaf_item = (tag.clone(), leaf).prop_map(|(t, v)| Item::new(t, v));
        leaf_item.prop_recursive(4, 64, 8, move |inner| {
            (tag.clone(), proptest::collection::vec(inner, 0..8))
                .prop_map(|(t, items)| Item::structure(t, items))
        })
    }

    proptest! {
        #[test]
        fn round_trip(item in arb_item()) {
            let bytes = item.encode().unwrap();
            prop_assert_eq!(bytes.len() % 8, 0);
            prop_assert_eq!(Item::decode(&bytes).unwrap(), item);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Item::decode(&bytes);
        }

        #[test]
        fn decoding_mutations_never_panics(item in arb_item(), i in any::<usize>(), x in 1u8..) {
            let mut bytes = item.encode().unwrap();
            let n = bytes.len();
            bytes[i % n] ^= x;
            let _ = Item::decode(&bytes);
            let _ = Item::decode(&bytes[..i % n]);
        }
    }
}
