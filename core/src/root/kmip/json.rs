//! KMIP's JSON encoding of TTLV (KMIP Additional Message Encodings §5),
//! as Cosmian KMS's HTTPS API (`/kmip/2_1`) reads and writes it.
//!
//! An [`Item`] becomes `{"tag": "<name>", "type": "<type>", "value": …}`:
//!
//! | `Value` | written | also read |
//! |---|---|---|
//! | `Structure` | `"value": [ …items… ]` | `"type"` left out (Cosmian leaves it out) |
//! | `Integer`, `Interval` | a JSON number | `Integer`: `"0x"` + 8 hex digits |
//! | `LongInteger` | `"0x"` + 16 hex digits | a JSON number |
//! | `BigInteger` | `"0x"` + hex, whole bytes | |
//! | `Enumeration` | `"0x"` + 8 hex digits | the value's name (`"Active"`, Cosmian's `"Item_Not_Found"`) for the enumerations keystrata reads ([`tags::enum_value`]), a JSON number |
//! | `Boolean` | `true` / `false` | |
//! | `TextString` | a JSON string | |
//! | `ByteString` | hex | either case |
//! | `DateTime` | `"0x"` + 16 hex digits (seconds) | RFC 3339 (`2026-05-20T10:00:00Z`) |
//! | `DateTimeExtended` | `"0x"` + 16 hex digits (microseconds) | |
//!
//! Tags are written by name ([`tags::cosmian_name`]): Cosmian matches the
//! names against its own field names and does not read the `"0x420078"`
//! form, and it spells a few tags its own way
//! ([`tags::COSMIAN_SPELLINGS`]). A tag keystrata has no name for cannot be
//! written (`Unsupported`); the decoder reads names and `"0x"` tags.
//! Enumerations are written by value, which Cosmian reads exactly as it
//! reads binary TTLV.
//!
//! Decoding never panics and is bounded: nesting as
//! [`MAX_DEPTH`], the input by its caller; an
//! unknown tag name, an unknown enumeration name of a tag keystrata reads,
//! a key other than `tag`, `type` and `value`, a value of the wrong shape:
//! [`ErrorKind::Format`], quoting at most
//! [`MAX_QUOTE`] characters of what the server sent.

use std::fmt::Write as _;

use serde_json::Value as Json;
use zeroize::{Zeroize, Zeroizing};

use super::tags;
use super::ttlv::{Item, Tag, Value, MAX_DEPTH};
use crate::error::{Error, ErrorKind, Result};

/// The most characters of server input an error message quotes.
pub const MAX_QUOTE: usize = 256;

/// `s`, cut to [`MAX_QUOTE`] characters (with `…` when cut).
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTE) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Encodes `item` as JSON TTLV.
pub fn encode(item: &Item) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(String::with_capacity(256));
    write_item(item, &mut out)?;
    Ok(Zeroizing::new(std::mem::take(&mut *out).into_bytes()))
}

fn write_item(item: &Item, out: &mut String) -> Result<()> {
    let name = tags::cosmian_name(item.tag).ok_or_else(|| {
        Error::unsupported(format!(
            "KMIP tag {} has no name for the JSON encoding",
            item.tag
        ))
    })?;
    out.push_str("{\"tag\":\"");
    out.push_str(name);
    out.push_str("\",\"type\":\"");
    out.push_str(item.value.type_name());
    out.push_str("\",\"value\":");
    // Writing to a String cannot fail.
    let _ = match &item.value {
        Value::Structure(items) => {
            out.push('[');
            for (i, child) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_item(child, out)?;
            }
            out.push(']');
            Ok(())
        }
        Value::Integer(v) => write!(out, "{v}"),
        Value::Interval(v) => write!(out, "{v}"),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
            write!(out, "\"0x{:016X}\"", *v as u64)
        }
        Value::BigInteger(b) => {
            out.push_str("\"0x");
            if b.is_empty() {
                out.push_str("00");
            }
            push_hex(b, out);
            out.push('"');
            Ok(())
        }
        Value::Enumeration(v) => write!(out, "\"0x{v:08X}\""),
        Value::Boolean(v) => write!(out, "{v}"),
        Value::TextString(s) => {
            push_string(s, out);
            Ok(())
        }
        Value::ByteString(b) => {
            out.push('"');
            push_hex(b, out);
            out.push('"');
            Ok(())
        }
    };
    out.push('}');
    Ok(())
}

fn push_hex(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

fn push_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Decodes one JSON TTLV item that fills `bytes` (surrounding white space
/// allowed).
pub fn decode(bytes: &[u8]) -> Result<Item> {
    let mut json: Json = serde_json::from_slice(bytes)
        .map_err(|e| Error::format(format!("not JSON: {}", quote(&e.to_string()))))?;
    let item = item_from(&json, None, 0);
    wipe(&mut json);
    item
}

/// Zeroizes every string in `json` (they may hold plaintext as hex).
fn wipe(json: &mut Json) {
    match json {
        Json::String(s) => s.zeroize(),
        Json::Array(items) => items.iter_mut().for_each(wipe),
        Json::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Format, format!("JSON TTLV: {what}"))
}

/// The item of `json`. `named_by`: the tag whose enumeration names an
/// Enumeration value is read with, when not its own (a KMIP 1.x Attribute
/// Value takes the names of the attribute its Attribute Name names).
fn item_from(json: &Json, named_by: Option<Tag>, depth: usize) -> Result<Item> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("structures nest deeper than {MAX_DEPTH}")));
    }
    let Json::Object(map) = json else {
        return Err(bad("an item is not a JSON object"));
    };
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "tag" | "type" | "value"))
    {
        return Err(bad(format!("unknown key {:?} in an item", quote(key))));
    }
    let tag_name = map
        .get("tag")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("an item has no \"tag\" string"))?;
    let tag = tag_by_name(tag_name)?;
    let ty = match map.get("type") {
        None => "Structure",
        Some(t) => t
            .as_str()
            .ok_or_else(|| bad(format!("the \"type\" of {tag_name} is not a string")))?,
    };
    let json = map
        .get("value")
        .ok_or_else(|| bad(format!("{tag_name} has no \"value\"")))?;
    let wrong = || bad(format!("{tag_name}: not a valid {} value", quote(ty)));
    let value = match ty {
        "Structure" => {
            let items = json.as_array().ok_or_else(wrong)?;
            let attribute = (tag == tags::ATTRIBUTE)
                .then(|| attribute_of(items))
                .flatten();
            Value::Structure(
                items
                    .iter()
                    .map(|i| item_from(i, attribute, depth + 1))
                    .collect::<Result<_>>()?,
            )
        }
        "Integer" => Value::Integer(
            match json {
                Json::String(s) => hex_int(s, 4).map(|v| v as u32 as i32),
                _ => json.as_i64().and_then(|v| i32::try_from(v).ok()),
            }
            .ok_or_else(wrong)?,
        ),
        "LongInteger" => Value::LongInteger(long(json).ok_or_else(wrong)?),
        "BigInteger" => Value::BigInteger(
            json.as_str()
                .and_then(|s| s.strip_prefix("0x"))
                .and_then(unhex)
                .filter(|b| !b.is_empty())
                .ok_or_else(wrong)?,
        ),
        "Enumeration" => Value::Enumeration(
            match json {
                Json::String(s) if s.starts_with("0x") => hex_int(s, 4).map(|v| v as u32),
                Json::String(s) => {
                    Some(tags::enum_value(named_by.unwrap_or(tag), s).ok_or_else(|| {
                        bad(format!(
                            "{tag_name}: unknown enumeration value {:?}",
                            quote(s)
                        ))
                    })?)
                }
                _ => json.as_u64().and_then(|v| u32::try_from(v).ok()),
            }
            .ok_or_else(wrong)?,
        ),
        "Boolean" => Value::Boolean(json.as_bool().ok_or_else(wrong)?),
        "TextString" => Value::TextString(json.as_str().ok_or_else(wrong)?.to_owned()),
        "ByteString" => Value::ByteString(json.as_str().and_then(unhex).ok_or_else(wrong)?),
        "DateTime" => Value::DateTime(
            match json.as_str() {
                Some(s) if s.starts_with("0x") => hex_int(s, 8).map(|v| v as i64),
                Some(s) => rfc3339(s),
                None => None,
            }
            .ok_or_else(wrong)?,
        ),
        "Interval" => Value::Interval(
            json.as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(wrong)?,
        ),
        "DateTimeExtended" => Value::DateTimeExtended(
            json.as_str()
                .and_then(|s| hex_int(s, 8))
                .map(|v| v as i64)
                .ok_or_else(wrong)?,
        ),
        other => {
            return Err(bad(format!(
                "{tag_name} has unknown type {:?}",
                quote(other)
            )))
        }
    };
    Ok(Item::new(tag, value))
}

/// The attribute tag named by the Attribute Name among `items` (the
/// members of a KMIP 1.x Attribute), if keystrata knows it.
fn attribute_of(items: &[Json]) -> Option<Tag> {
    items.iter().find_map(|i| {
        (i.get("tag")?.as_str()? == "AttributeName")
            .then(|| tags::attribute_tag(i.get("value")?.as_str()?))
            .flatten()
    })
}

fn tag_by_name(name: &str) -> Result<Tag> {
    if let Some(hex) = name.strip_prefix("0x") {
        return (hex.len() == 6)
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten()
            .and_then(Tag::new)
            .ok_or_else(|| bad(format!("bad tag {:?}", quote(name))));
    }
    tags::by_name(name).ok_or_else(|| bad(format!("unknown tag {:?}", quote(name))))
}

/// A long integer: a JSON number or `"0x"` + 16 hex digits.
fn long(json: &Json) -> Option<i64> {
    match json {
        Json::String(s) => hex_int(s, 8).map(|v| v as i64),
        _ => json.as_i64(),
    }
}

/// `"0x"` followed by exactly `2 * len` hex digits, as an unsigned number.
fn hex_int(s: &str, len: usize) -> Option<u64> {
    let hex = s.strip_prefix("0x")?;
    if hex.len() != 2 * len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    s.chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Seconds since the Unix epoch of an RFC 3339 time
/// (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; the fraction is dropped).
fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && sep(i + 3, b":") => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(n: u32) -> Tag {
        Tag::new(n).unwrap()
    }

    #[test]
    fn encodes_as_cosmian_reads_it() {
        let item = Item::structure(
            tags::REQUEST_PAYLOAD,
            vec![
                Item::text(tags::UNIQUE_IDENTIFIER, "id \"1\"\n"),
                Item::integer(tags::TAG_LENGTH, 16),
                Item::enumeration(tags::BLOCK_CIPHER_MODE, tags::MODE_GCM),
                Item::bytes(tags::DATA, vec![0x01, 0xAB]),
                Item::structure(
                    tags::REVOCATION_REASON,
                    vec![Item::enumeration(tags::REVOCATION_REASON_CODE, 6)],
                ),
                Item::new(tags::TIME_STAMP, Value::LongInteger(0x6B0F_314D)),
            ],
        );
        let json = encode(&item).unwrap();
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"tag":"RequestPayload","type":"Structure","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"id \"1\"\u000a"},{"tag":"TagLength","type":"Integer","value":16},{"tag":"BlockCipherMode","type":"Enumeration","value":"0x00000009"},{"tag":"Data","type":"ByteString","value":"01AB"},{"tag":"RevocationReason","type":"Structure","value":[{"tag":"revocation_reason_code","type":"Enumeration","value":"0x00000006"}]},{"tag":"TimeStamp","type":"LongInteger","value":"0x000000006B0F314D"}]}"#
        );
        assert_eq!(decode(&json).unwrap(), item);
        // A tag without a name cannot be written.
        let e = encode(&Item::integer(t(0x540001), 1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    /// A response of Cosmian KMS 5.0, as it sent it.
    #[test]
    fn decodes_a_cosmian_response() {
        let json = br#"{"tag":"ResponseMessage","value":[{"tag":"ResponseHeader","value":[{"tag":"ProtocolVersion","value":[{"tag":"ProtocolVersionMajor","type":"Integer","value":2},{"tag":"ProtocolVersionMinor","type":"Integer","value":0}]},{"tag":"TimeStamp","type":"LongInteger","value":"0x000000006B0F3152"},{"tag":"BatchCount","type":"Integer","value":1}]},{"tag":"BatchItem","value":[{"tag":"Operation","type":"Enumeration","value":"GetAttributes"},{"tag":"ResultStatus","type":"Enumeration","value":"OperationFailed"},{"tag":"ResultReason","type":"Enumeration","value":"Object_Not_Found"},{"tag":"ResultMessage","type":"TextString","value":"object not found for identifier nope"}]}]}"#;
        let msg = decode(json).unwrap();
        assert_eq!(msg.tag, tags::RESPONSE_MESSAGE);
        let item = msg.child(tags::BATCH_ITEM).unwrap();
        assert_eq!(
            item.child(tags::OPERATION).and_then(Item::as_enum),
            Some(tags::operation::GET_ATTRIBUTES)
        );
        assert_eq!(
            item.child(tags::RESULT_STATUS).and_then(Item::as_enum),
            Some(1)
        );
        assert_eq!(
            item.child(tags::RESULT_REASON).and_then(Item::as_enum),
            Some(tags::result_reason::OBJECT_NOT_FOUND)
        );
        let json = br#"{"tag":"Attributes","value":[{"tag":"Name","value":[{"tag":"NameValue","type":"TextString","value":"probe1"},{"tag":"NameType","type":"Enumeration","value":"UninterpretedTextString"}]},{"tag":"State","type":"Enumeration","value":"Active"},{"tag":"Data","type":"ByteString","value":"9dfe"}]}"#;
        let attrs = decode(json).unwrap();
        assert_eq!(attrs.child(tags::STATE).and_then(Item::as_enum), Some(2));
        assert_eq!(
            attrs.child(tags::DATA).and_then(Item::as_bytes),
            Some(&[0x9D, 0xFE][..])
        );
        // KMIP 1.4: the value's names are those of the attribute named.
        let json = br#"{"tag":"ResponsePayload","value":[{"tag":"Attribute","value":[{"tag":"AttributeName","type":"TextString","value":"State"},{"tag":"AttributeValue","type":"Enumeration","value":"Active"}]}]}"#;
        let payload = decode(json).unwrap();
        let value = payload
            .child(tags::ATTRIBUTE)
            .unwrap()
            .child(tags::ATTRIBUTE_VALUE);
        assert_eq!(value.and_then(Item::as_enum), Some(2));
        let json = br#"{"tag":"Attribute","value":[{"tag":"AttributeValue","type":"Enumeration","value":"Active"}]}"#;
        assert_eq!(decode(json).unwrap_err().kind(), ErrorKind::Format);
    }

    #[test]
    fn alternative_forms_are_read() {
        let one = |json: &str| decode(json.as_bytes()).map(|i| i.value);
        assert_eq!(
            one(r#"{"tag":"0x42008D","type":"Enumeration","value":2}"#).unwrap(),
            Value::Enumeration(2)
        );
        assert_eq!(
            one(r#"{"tag":"TagLength","type":"Integer","value":"0x00000010"}"#).unwrap(),
            Value::Integer(16)
        );
        assert_eq!(
            one(r#"{"tag":"TimeStamp","type":"LongInteger","value":-5}"#).unwrap(),
            Value::LongInteger(-5)
        );
        assert_eq!(
            one(r#"{"tag":"TimeStamp","type":"DateTime","value":"2008-03-14T11:56:40Z"}"#).unwrap(),
            Value::DateTime(0x47DA67F8)
        );
        assert_eq!(
            one(r#"{"tag":"TimeStamp","type":"DateTime","value":"2008-03-14T12:56:40.123+01:00"}"#)
                .unwrap(),
            Value::DateTime(0x47DA67F8)
        );
        assert_eq!(
            one(r#"{"tag":"TimeStamp","type":"DateTime","value":"1969-12-31T23:59:59Z"}"#).unwrap(),
            Value::DateTime(-1)
        );
        assert_eq!(
            one(r#" {"value":"revoked","tag":"revocation_message","type":"TextString"} "#).unwrap(),
            Value::TextString("revoked".into())
        );
    }

    #[test]
    fn hostile_input_is_a_format_error() {
        let long_name = "X".repeat(10_000);
        let cases = [
            String::new(),
            "{".into(),
            "[]".into(),
            "null".into(),
            r#"{"tag":"State","type":"Enumeration"}"#.into(),
            r#"{"type":"Enumeration","value":"Active"}"#.into(),
            r#"{"tag":"State","type":"Enumeration","value":"Sleeping"}"#.into(),
            r#"{"tag":"State","type":"Enumeration","value":"0x2"}"#.into(),
            r#"{"tag":"State","type":"Enumeration","value":-1}"#.into(),
            r#"{"tag":"State","type":"Enumeration","value":2.5}"#.into(),
            r#"{"tag":"State","type":"Color","value":2}"#.into(),
            r#"{"tag":"State","type":"Integer","value":4294967296}"#.into(),
            r#"{"tag":"Data","type":"ByteString","value":"ABC"}"#.into(),
            r#"{"tag":"Data","type":"ByteString","value":"zz"}"#.into(),
            r#"{"tag":"Data","type":"ByteString","value":"+1"}"#.into(),
            r#"{"tag":"Data","type":"BigInteger","value":"0x"}"#.into(),
            r#"{"tag":"Data","type":"Boolean","value":"true"}"#.into(),
            r#"{"tag":"Data","type":"Interval","value":-1}"#.into(),
            r#"{"tag":"Data","type":"DateTime","value":"2008-13-14T11:56:40Z"}"#.into(),
            r#"{"tag":"Data","type":"DateTime","value":"2008-03-14T11:56:40"}"#.into(),
            r#"{"tag":"Data","type":"DateTimeExtended","value":"0x12"}"#.into(),
            r#"{"tag":"Data","value":{}}"#.into(),
            r#"{"tag":"Data","value":[1]}"#.into(),
            r#"{"tag":"Data","value":[],"extra":1}"#.into(),
            r#"{"tag":"0x4200","value":[]}"#.into(),
            r#"{"tag":"0x1000000","value":[]}"#.into(),
            format!(r#"{{"tag":"{long_name}","value":[]}}"#),
            format!(r#"{{"tag":"Data","type":"{long_name}","value":[]}}"#),
            "[".repeat(100_000),
        ];
        for json in &cases {
            let e = decode(json.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Format, "{json:.80}: {e}");
            assert!(e.message().chars().count() < 2 * MAX_QUOTE, "{e}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut json = r#"{"tag":"Data","type":"Integer","value":1}"#.to_owned();
        for _ in 0..=MAX_DEPTH {
            json = format!(r#"{{"tag":"Data","value":[{json}]}}"#);
        }
        assert_eq!(
            decode(json.as_bytes()).unwrap_err().kind(),
            ErrorKind::Format
        );
    }

    #[test]
    fn quotes_are_cut() {
        assert_eq!(quote("abc"), "abc");
        let q = quote(&"é".repeat(1000));
        assert_eq!(q.chars().count(), MAX_QUOTE + 1);
    }

    /// Named tags only: JSON has no name for the others.
    fn arb_item() -> impl Strategy<Value = Item> {
        let named: Vec<Tag> = [
            tags::DATA,
            tags::NAME,
            tags::ATTRIBUTES,
            tags::TIME_STAMP,
            tags::REVOCATION_REASON_CODE,
            tags::UNIQUE_IDENTIFIER,
        ]
        .to_vec();
        super::super::ttlv::tests::arb_item_of(
            proptest::sample::select(named),
            proptest::collection::vec(any::<u8>(), 1..24),
        )
    }

    proptest! {
        #[test]
        fn round_trip(item in arb_item()) {
            let json = encode(&item).unwrap();
            prop_assert_eq!(decode(&json).unwrap(), item);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoding_mutations_never_panics(item in arb_item(), i in any::<usize>(), x in 1u8..) {
            let mut json = encode(&item).unwrap().to_vec();
            let n = json.len();
            json[i % n] ^= x;
            let _ = decode(&json);
            let _ = decode(&json[..i % n]);
        }
    }
}
