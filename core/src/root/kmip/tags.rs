//! The KMIP tags and enumeration values keystrata uses, by name
//! (KMIP 1.4 §9.1.3, KMIP 2.0 §11).

use super::ttlv::Tag;

macro_rules! tags {
    ($($(#[$m:meta])* $name:ident = $v:expr, $json:literal;)*) => {
        $($(#[$m])* pub const $name: Tag = Tag::of($v);)*

        /// Every tag above with its name in KMIP's JSON (and XML) encoding:
        /// the specification's name without spaces or punctuation.
        const TAG_NAMES: &[(Tag, &str)] = &[$(($name, $json),)*];
    };
}

tags! {
    /// Attribute (KMIP 1.x).
    ATTRIBUTE = 0x420008, "Attribute";
    /// Attribute Name (KMIP 1.x).
    ATTRIBUTE_NAME = 0x42000A, "AttributeName";
    /// Attribute Value (KMIP 1.x).
    ATTRIBUTE_VALUE = 0x42000B, "AttributeValue";
    /// Batch Count.
    BATCH_COUNT = 0x42000D, "BatchCount";
    /// Batch Item.
    BATCH_ITEM = 0x42000F, "BatchItem";
    /// Block Cipher Mode.
    BLOCK_CIPHER_MODE = 0x420011, "BlockCipherMode";
    /// Cryptographic Algorithm.
    CRYPTOGRAPHIC_ALGORITHM = 0x420028, "CryptographicAlgorithm";
    /// Cryptographic Length.
    CRYPTOGRAPHIC_LENGTH = 0x42002A, "CryptographicLength";
    /// Cryptographic Parameters.
    CRYPTOGRAPHIC_PARAMETERS = 0x42002B, "CryptographicParameters";
    /// Cryptographic Usage Mask.
    CRYPTOGRAPHIC_USAGE_MASK = 0x42002C, "CryptographicUsageMask";
    /// IV/Counter/Nonce.
    IV_COUNTER_NONCE = 0x42003D, "IVCounterNonce";
    /// Name.
    NAME = 0x420053, "Name";
    /// Name Type.
    NAME_TYPE = 0x420054, "NameType";
    /// Name Value.
    NAME_VALUE = 0x420055, "NameValue";
    /// Object Type.
    OBJECT_TYPE = 0x420057, "ObjectType";
    /// Operation.
    OPERATION = 0x42005C, "Operation";
    /// Protocol Version.
    PROTOCOL_VERSION = 0x420069, "ProtocolVersion";
    /// Protocol Version Major.
    PROTOCOL_VERSION_MAJOR = 0x42006A, "ProtocolVersionMajor";
    /// Protocol Version Minor.
    PROTOCOL_VERSION_MINOR = 0x42006B, "ProtocolVersionMinor";
    /// Request Header.
    REQUEST_HEADER = 0x420077, "RequestHeader";
    /// Request Message.
    REQUEST_MESSAGE = 0x420078, "RequestMessage";
    /// Request Payload.
    REQUEST_PAYLOAD = 0x420079, "RequestPayload";
    /// Response Header.
    RESPONSE_HEADER = 0x42007A, "ResponseHeader";
    /// Response Message.
    RESPONSE_MESSAGE = 0x42007B, "ResponseMessage";
    /// Response Payload.
    RESPONSE_PAYLOAD = 0x42007C, "ResponsePayload";
    /// Result Message.
    RESULT_MESSAGE = 0x42007D, "ResultMessage";
    /// Result Reason.
    RESULT_REASON = 0x42007E, "ResultReason";
    /// Result Status.
    RESULT_STATUS = 0x42007F, "ResultStatus";
    /// Revocation Message.
    REVOCATION_MESSAGE = 0x420080, "RevocationMessage";
    /// Revocation Reason.
    REVOCATION_REASON = 0x420081, "RevocationReason";
    /// Revocation Reason Code.
    REVOCATION_REASON_CODE = 0x420082, "RevocationReasonCode";
    /// State.
    STATE = 0x42008D, "State";
    /// Template-Attribute (KMIP 1.x).
    TEMPLATE_ATTRIBUTE = 0x420091, "TemplateAttribute";
    /// Time Stamp. Cosmian KMS 5.0 sends it as a Long Integer in JSON.
    TIME_STAMP = 0x420092, "TimeStamp";
    /// Unique Batch Item ID.
    UNIQUE_BATCH_ITEM_ID = 0x420093, "UniqueBatchItemID";
    /// Unique Identifier.
    UNIQUE_IDENTIFIER = 0x420094, "UniqueIdentifier";
    /// Data.
    DATA = 0x4200C2, "Data";
    /// Located Items.
    LOCATED_ITEMS = 0x4200D5, "LocatedItems";
    /// Correlation Value.
    CORRELATION_VALUE = 0x4200D6, "CorrelationValue";
    /// Tag Length.
    TAG_LENGTH = 0x4200CE, "TagLength";
    /// Authenticated Encryption Additional Data (KMIP 1.4+).
    AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA = 0x4200FE, "AuthenticatedEncryptionAdditionalData";
    /// Authenticated Encryption Tag (KMIP 1.4+).
    AUTHENTICATED_ENCRYPTION_TAG = 0x4200FF, "AuthenticatedEncryptionTag";
    /// Attributes (KMIP 2.0).
    ATTRIBUTES = 0x420125, "Attributes";
    /// Attribute Reference (KMIP 2.0).
    ATTRIBUTE_REFERENCE = 0x42013B, "AttributeReference";
}

/// The KMIP 1.x attribute name of an attribute tag, for the attributes
/// keystrata asks for.
pub fn attribute_name(tag: Tag) -> Option<&'static str> {
    ATTRIBUTE_NAMES
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, n)| *n)
}

/// The attribute tag of a KMIP 1.x attribute name.
pub fn attribute_tag(name: &str) -> Option<Tag> {
    ATTRIBUTE_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(t, _)| *t)
}

const ATTRIBUTE_NAMES: &[(Tag, &str)] = &[
    (UNIQUE_IDENTIFIER, "Unique Identifier"),
    (NAME, "Name"),
    (OBJECT_TYPE, "Object Type"),
    (CRYPTOGRAPHIC_ALGORITHM, "Cryptographic Algorithm"),
    (CRYPTOGRAPHIC_LENGTH, "Cryptographic Length"),
    (CRYPTOGRAPHIC_USAGE_MASK, "Cryptographic Usage Mask"),
    (STATE, "State"),
];

/// The JSON name of `tag`, if it is one of the tags above.
pub fn name(tag: Tag) -> Option<&'static str> {
    TAG_NAMES.iter().find(|(t, _)| *t == tag).map(|(_, n)| *n)
}

/// The tag whose JSON name is `name`: one of the names above, or a
/// spelling of [`COSMIAN_SPELLINGS`].
pub fn by_name(name: &str) -> Option<Tag> {
    TAG_NAMES
        .iter()
        .chain(COSMIAN_SPELLINGS)
        .find(|(_, n)| *n == name)
        .map(|(t, _)| *t)
}

/// Tags that Cosmian KMS 5.0 reads under another name than the
/// specification's in its JSON TTLV: the fields of its Revocation Reason
/// structure have no tag names (`revocation_reason_code`), which is also
/// why a Revoke cannot be sent to it in binary TTLV. The JSON encoder
/// writes these spellings; the decoder reads both.
pub const COSMIAN_SPELLINGS: &[(Tag, &str)] = &[
    (REVOCATION_REASON_CODE, "revocation_reason_code"),
    (REVOCATION_MESSAGE, "revocation_message"),
];

/// The name Cosmian's JSON TTLV API reads for `tag`.
pub fn cosmian_name(tag: Tag) -> Option<&'static str> {
    COSMIAN_SPELLINGS
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, n)| *n)
        .or_else(|| name(tag))
}

/// The value of the enumeration `name` of `tag`, for the enumerations
/// keystrata reads. Names are compared without spaces, hyphens and
/// underscores, so the specification's JSON names (`ItemNotFound`) and
/// Cosmian's (`Item_Not_Found`) both match.
pub fn enum_value(tag: Tag, name: &str) -> Option<u32> {
    let table: &[(u32, &str)] = match tag {
        OPERATION => operation::NAMES,
        RESULT_STATUS => result_status::NAMES,
        RESULT_REASON => result_reason::NAMES,
        STATE => STATE_NAMES,
        OBJECT_TYPE => OBJECT_TYPE_NAMES,
        CRYPTOGRAPHIC_ALGORITHM => &[(ALGORITHM_AES, "AES")],
        BLOCK_CIPHER_MODE => &[
            (MODE_GCM, "GCM"),
            (MODE_COSMIAN_NIST_KEY_WRAP, "NISTKeyWrap"),
        ],
        NAME_TYPE => &[(NAME_TYPE_TEXT, "Uninterpreted Text String"), (0x02, "URI")],
        REVOCATION_REASON_CODE => REVOCATION_REASON_NAMES,
        _ => return None,
    };
    let squeeze = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .collect::<String>()
    };
    let name = squeeze(name);
    table
        .iter()
        .find(|(_, n)| squeeze(n) == name)
        .map(|(v, _)| *v)
}

fn table_name(table: &[(u32, &'static str)], v: u32, default: &'static str) -> &'static str {
    table
        .iter()
        .find(|(t, _)| *t == v)
        .map_or(default, |(_, n)| *n)
}

/// State values (KMIP 1.4 §9.1.3.2.17), by name.
const STATE_NAMES: &[(u32, &str)] = &[
    (1, "Pre-Active"),
    (2, "Active"),
    (3, "Deactivated"),
    (4, "Compromised"),
    (5, "Destroyed"),
    (6, "Destroyed Compromised"),
];

/// Object Type values, by name.
const OBJECT_TYPE_NAMES: &[(u32, &str)] = &[
    (0x01, "Certificate"),
    (OBJECT_TYPE_SYMMETRIC_KEY, "Symmetric Key"),
    (0x03, "Public Key"),
    (0x04, "Private Key"),
    (0x05, "Split Key"),
    (0x06, "Template"),
    (0x07, "Secret Data"),
    (0x08, "Opaque Object"),
    (0x09, "PGP Key"),
    (0x0A, "Certificate Request"),
];

/// Revocation Reason Code values, by name.
const REVOCATION_REASON_NAMES: &[(u32, &str)] = &[
    (1, "Unspecified"),
    (2, "Key Compromise"),
    (3, "CA Compromise"),
    (4, "Affiliation Changed"),
    (5, "Superseded"),
    (6, "Cessation Of Operation"),
    (7, "Privilege Withdrawn"),
];

/// Operation values.
pub mod operation {
    /// Create.
    pub const CREATE: u32 = 0x01;
    /// Locate.
    pub const LOCATE: u32 = 0x08;
    /// Get Attributes.
    pub const GET_ATTRIBUTES: u32 = 0x0B;
    /// Activate.
    pub const ACTIVATE: u32 = 0x12;
    /// Revoke.
    pub const REVOKE: u32 = 0x13;
    /// Destroy.
    pub const DESTROY: u32 = 0x14;
    /// Discover Versions.
    pub const DISCOVER_VERSIONS: u32 = 0x1E;
    /// Encrypt.
    pub const ENCRYPT: u32 = 0x1F;
    /// Decrypt.
    pub const DECRYPT: u32 = 0x20;

    pub(super) const NAMES: &[(u32, &str)] = &[
        (CREATE, "Create"),
        (LOCATE, "Locate"),
        (GET_ATTRIBUTES, "Get Attributes"),
        (ACTIVATE, "Activate"),
        (REVOKE, "Revoke"),
        (DESTROY, "Destroy"),
        (DISCOVER_VERSIONS, "Discover Versions"),
        (ENCRYPT, "Encrypt"),
        (DECRYPT, "Decrypt"),
    ];

    /// The operation's name, for messages.
    pub fn name(op: u32) -> &'static str {
        super::table_name(NAMES, op, "operation")
    }
}

/// Result Status values.
pub mod result_status {
    /// Success.
    pub const SUCCESS: u32 = 0;

    pub(super) const NAMES: &[(u32, &str)] = &[
        (SUCCESS, "Success"),
        (1, "Operation Failed"),
        (2, "Operation Pending"),
        (3, "Operation Undone"),
    ];
}

/// Result Reason values.
pub mod result_reason {
    /// Item Not Found.
    pub const ITEM_NOT_FOUND: u32 = 0x01;
    /// Response Too Large.
    pub const RESPONSE_TOO_LARGE: u32 = 0x02;
    /// Authentication Not Successful.
    pub const AUTHENTICATION_NOT_SUCCESSFUL: u32 = 0x03;
    /// Invalid Message.
    pub const INVALID_MESSAGE: u32 = 0x04;
    /// Operation Not Supported.
    pub const OPERATION_NOT_SUPPORTED: u32 = 0x05;
    /// Missing Data.
    pub const MISSING_DATA: u32 = 0x06;
    /// Invalid Field.
    pub const INVALID_FIELD: u32 = 0x07;
    /// Feature Not Supported.
    pub const FEATURE_NOT_SUPPORTED: u32 = 0x08;
    /// Cryptographic Failure.
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;
    /// Illegal Operation.
    pub const ILLEGAL_OPERATION: u32 = 0x0B;
    /// Permission Denied.
    pub const PERMISSION_DENIED: u32 = 0x0C;
    /// Object Destroyed (KMIP 2.x).
    pub const OBJECT_DESTROYED: u32 = 0x36;
    /// Object Not Found (KMIP 2.x).
    pub const OBJECT_NOT_FOUND: u32 = 0x37;
    /// Wrong Key Lifecycle State (KMIP 2.x).
    pub const WRONG_KEY_LIFECYCLE_STATE: u32 = 0x43;
    /// General Failure.
    pub const GENERAL_FAILURE: u32 = 0x100;

    /// Every Result Reason of KMIP 2.1 (§11.29), so that a reason sent
    /// by name (JSON) is always understood.
    pub(super) const NAMES: &[(u32, &str)] = &[
        (ITEM_NOT_FOUND, "Item Not Found"),
        (RESPONSE_TOO_LARGE, "Response Too Large"),
        (
            AUTHENTICATION_NOT_SUCCESSFUL,
            "Authentication Not Successful",
        ),
        (INVALID_MESSAGE, "Invalid Message"),
        (OPERATION_NOT_SUPPORTED, "Operation Not Supported"),
        (MISSING_DATA, "Missing Data"),
        (INVALID_FIELD, "Invalid Field"),
        (FEATURE_NOT_SUPPORTED, "Feature Not Supported"),
        (0x09, "Operation Canceled By Requester"),
        (CRYPTOGRAPHIC_FAILURE, "Cryptographic Failure"),
        (ILLEGAL_OPERATION, "Illegal Operation"),
        (PERMISSION_DENIED, "Permission Denied"),
        (0x0D, "Object Archived"),
        (0x0E, "Index Out Of Bounds"),
        (0x0F, "Application Namespace Not Supported"),
        (0x10, "Key Format Type Not Supported"),
        (0x11, "Key Compression Type Not Supported"),
        (0x12, "Encoding Option Error"),
        (0x13, "Key Value Not Present"),
        (0x14, "Attestation Required"),
        (0x15, "Attestation Failed"),
        (0x16, "Sensitive"),
        (0x17, "Not Extractable"),
        (0x18, "Object Already Exists"),
        (0x19, "Invalid Ticket"),
        (0x1A, "Usage Limit Exceeded"),
        (0x1B, "Numeric Range"),
        (0x1C, "Invalid Data Type"),
        (0x1D, "Read Only Attribute"),
        (0x1E, "Multi Valued Attribute"),
        (0x1F, "Unsupported Attribute"),
        (0x20, "Attribute Instance Not Found"),
        (0x21, "Attribute Not Found"),
        (0x22, "Attribute Read Only"),
        (0x23, "Attribute Single Valued"),
        (0x24, "Bad Cryptographic Parameters"),
        (0x25, "Bad Password"),
        (0x26, "Codec Error"),
        (0x28, "Illegal Object Type"),
        (0x29, "Incompatible Cryptographic Usage Mask"),
        (0x2A, "Internal Server Error"),
        (0x2B, "Invalid Asynchronous Correlation Value"),
        (0x2C, "Invalid Attribute"),
        (0x2D, "Invalid Attribute Value"),
        (0x2E, "Invalid Correlation Value"),
        (0x2F, "Invalid CSR"),
        (0x30, "Invalid Object Type"),
        (0x32, "Key Wrap Type Not Supported"),
        (0x34, "Missing Initialization Vector"),
        (0x35, "Non Unique Name Attribute"),
        (OBJECT_DESTROYED, "Object Destroyed"),
        (OBJECT_NOT_FOUND, "Object Not Found"),
        (0x39, "Not Authorised"),
        (0x3A, "Server Limit Exceeded"),
        (0x3B, "Unknown Enumeration"),
        (0x3C, "Unknown Message Extension"),
        (0x3D, "Unknown Tag"),
        (0x3E, "Unsupported Cryptographic Parameters"),
        (0x3F, "Unsupported Protocol Version"),
        (0x40, "Wrapping Object Archived"),
        (0x41, "Wrapping Object Destroyed"),
        (0x42, "Wrapping Object Not Found"),
        (WRONG_KEY_LIFECYCLE_STATE, "Wrong Key Lifecycle State"),
        (0x44, "Protection Storage Unavailable"),
        (0x45, "PKCS 11 Codec Error"),
        (0x46, "PKCS 11 Invalid Function"),
        (0x47, "PKCS 11 Invalid Interface"),
        (0x48, "Private Protection Storage Unavailable"),
        (0x49, "Public Protection Storage Unavailable"),
        (0x4A, "Unknown Object Group"),
        (0x4B, "Constraint Violation"),
        (0x4C, "Duplicate Process Request"),
        (GENERAL_FAILURE, "General Failure"),
    ];

    /// The reason's name, for messages.
    pub fn name(reason: u32) -> &'static str {
        super::table_name(NAMES, reason, "failure")
    }
}

/// Object Type: Symmetric Key.
pub const OBJECT_TYPE_SYMMETRIC_KEY: u32 = 0x02;
/// Cryptographic Algorithm: AES.
pub const ALGORITHM_AES: u32 = 0x03;
/// Block Cipher Mode: GCM.
pub const MODE_GCM: u32 = 0x09;
/// Cosmian KMS's `NISTKeyWrap` Block Cipher Mode (an extension value in
/// Cosmian KMS 5.0, not the specification's 0x0D): what the S3 gateway's
/// Cosmian key manager wraps with (super::gateway).
pub const MODE_COSMIAN_NIST_KEY_WRAP: u32 = 0x8000_000D;
/// Name Type: Uninterpreted Text String.
pub const NAME_TYPE_TEXT: u32 = 0x01;
/// Cryptographic Usage Mask bits Encrypt (0x04) | Decrypt (0x08).
pub const USAGE_ENCRYPT_DECRYPT: i32 = 0x04 | 0x08;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, (tag, n)) in TAG_NAMES.iter().enumerate() {
            assert_eq!(by_name(n), Some(*tag), "{n}");
            assert_eq!(name(*tag), Some(*n));
            assert!(
                TAG_NAMES[i + 1..].iter().all(|(t, m)| t != tag && m != n),
                "{n} twice"
            );
        }
        assert_eq!(
            cosmian_name(REVOCATION_REASON_CODE),
            Some("revocation_reason_code")
        );
        assert_eq!(
            by_name("revocation_reason_code"),
            Some(REVOCATION_REASON_CODE)
        );
        assert_eq!(
            by_name("RevocationReasonCode"),
            Some(REVOCATION_REASON_CODE)
        );
        assert_eq!(cosmian_name(STATE), Some("State"));
        assert_eq!(by_name("0x42008D"), None);
    }

    #[test]
    fn enumeration_names_in_both_spellings() {
        use result_reason as r;
        assert_eq!(
            enum_value(RESULT_REASON, "ItemNotFound"),
            Some(r::ITEM_NOT_FOUND)
        );
        assert_eq!(
            enum_value(RESULT_REASON, "Object_Not_Found"),
            Some(r::OBJECT_NOT_FOUND)
        );
        assert_eq!(enum_value(RESULT_STATUS, "OperationFailed"), Some(1));
        assert_eq!(enum_value(STATE, "PreActive"), Some(1));
        assert_eq!(enum_value(STATE, "Destroyed_Compromised"), Some(6));
        assert_eq!(
            enum_value(OPERATION, "GetAttributes"),
            Some(operation::GET_ATTRIBUTES)
        );
        assert_eq!(
            enum_value(NAME_TYPE, "UninterpretedTextString"),
            Some(NAME_TYPE_TEXT)
        );
        assert_eq!(
            enum_value(OBJECT_TYPE, "SymmetricKey"),
            Some(OBJECT_TYPE_SYMMETRIC_KEY)
        );
        assert_eq!(enum_value(STATE, "Sleeping"), None);
        assert_eq!(enum_value(DATA, "Active"), None);
        assert_eq!(result_reason::name(0x43), "Wrong Key Lifecycle State");
        assert_eq!(result_reason::name(0x9999), "failure");
        assert_eq!(operation::name(operation::DECRYPT), "Decrypt");
    }
}
