//! The KMIP tags and enumeration values keystrata uses, by name
//! (KMIP 1.4 §9.1.3, KMIP 2.0 §11).

use super::ttlv::Tag;

macro_rules! tags {
    ($($(#[$m:meta])* $name:ident = $v:expr;)*) => {
        $($(#[$m])* pub const $name: Tag = Tag::of($v);)*
    };
}

tags! {
    /// Attribute (KMIP 1.x).
    ATTRIBUTE = 0x420008;
    /// Attribute Name (KMIP 1.x).
    ATTRIBUTE_NAME = 0x42000A;
    /// Attribute Value (KMIP 1.x).
    ATTRIBUTE_VALUE = 0x42000B;
    /// Batch Count.
    BATCH_COUNT = 0x42000D;
    /// Batch Item.
    BATCH_ITEM = 0x42000F;
    /// Block Cipher Mode.
    BLOCK_CIPHER_MODE = 0x420011;
    /// Cryptographic Algorithm.
    CRYPTOGRAPHIC_ALGORITHM = 0x420028;
    /// Cryptographic Length.
    CRYPTOGRAPHIC_LENGTH = 0x42002A;
    /// Cryptographic Parameters.
    CRYPTOGRAPHIC_PARAMETERS = 0x42002B;
    /// Cryptographic Usage Mask.
    CRYPTOGRAPHIC_USAGE_MASK = 0x42002C;
    /// IV/Counter/Nonce.
    IV_COUNTER_NONCE = 0x42003D;
    /// Name.
    NAME = 0x420053;
    /// Name Type.
    NAME_TYPE = 0x420054;
    /// Name Value.
    NAME_VALUE = 0x420055;
    /// Object Type.
    OBJECT_TYPE = 0x420057;
    /// Operation.
    OPERATION = 0x42005C;
    /// Protocol Version.
    PROTOCOL_VERSION = 0x420069;
    /// Protocol Version Major.
    PROTOCOL_VERSION_MAJOR = 0x42006A;
    /// Protocol Version Minor.
    PROTOCOL_VERSION_MINOR = 0x42006B;
    /// Request Header.
    REQUEST_HEADER = 0x420077;
    /// Request Message.
    REQUEST_MESSAGE = 0x420078;
    /// Request Payload.
    REQUEST_PAYLOAD = 0x420079;
    /// Response Header.
    RESPONSE_HEADER = 0x42007A;
    /// Response Message.
    RESPONSE_MESSAGE = 0x42007B;
    /// Response Payload.
    RESPONSE_PAYLOAD = 0x42007C;
    /// Result Message.
    RESULT_MESSAGE = 0x42007D;
    /// Result Reason.
    RESULT_REASON = 0x42007E;
    /// Result Status.
    RESULT_STATUS = 0x42007F;
    /// Revocation Message.
    REVOCATION_MESSAGE = 0x420080;
    /// Revocation Reason.
    REVOCATION_REASON = 0x420081;
    /// Revocation Reason Code.
    REVOCATION_REASON_CODE = 0x420082;
    /// State.
    STATE = 0x42008D;
    /// Template-Attribute (KMIP 1.x).
    TEMPLATE_ATTRIBUTE = 0x420091;
    /// Unique Identifier.
    UNIQUE_IDENTIFIER = 0x420094;
    /// Data.
    DATA = 0x4200C2;
    /// Tag Length.
    TAG_LENGTH = 0x4200CE;
    /// Authenticated Encryption Additional Data (KMIP 1.4+).
    AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA = 0x4200FE;
    /// Authenticated Encryption Tag (KMIP 1.4+).
    AUTHENTICATED_ENCRYPTION_TAG = 0x4200FF;
    /// Attributes (KMIP 2.0).
    ATTRIBUTES = 0x420125;
    /// Attribute Reference (KMIP 2.0).
    ATTRIBUTE_REFERENCE = 0x42013B;
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

    /// The operation's name, for messages.
    pub fn name(op: u32) -> &'static str {
        match op {
            CREATE => "Create",
            LOCATE => "Locate",
            GET_ATTRIBUTES => "Get Attributes",
            ACTIVATE => "Activate",
            REVOKE => "Revoke",
            DESTROY => "Destroy",
            DISCOVER_VERSIONS => "Discover Versions",
            ENCRYPT => "Encrypt",
            DECRYPT => "Decrypt",
            _ => "operation",
        }
    }
}

/// Result Status values.
pub mod result_status {
    /// Success.
    pub const SUCCESS: u32 = 0;
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

    /// The reason's name, for messages.
    pub fn name(reason: u32) -> &'static str {
        match reason {
            ITEM_NOT_FOUND => "Item Not Found",
            RESPONSE_TOO_LARGE => "Response Too Large",
            AUTHENTICATION_NOT_SUCCESSFUL => "Authentication Not Successful",
            INVALID_MESSAGE => "Invalid Message",
            OPERATION_NOT_SUPPORTED => "Operation Not Supported",
            MISSING_DATA => "Missing Data",
            INVALID_FIELD => "Invalid Field",
            FEATURE_NOT_SUPPORTED => "Feature Not Supported",
            CRYPTOGRAPHIC_FAILURE => "Cryptographic Failure",
            ILLEGAL_OPERATION => "Illegal Operation",
            PERMISSION_DENIED => "Permission Denied",
            OBJECT_DESTROYED => "Object Destroyed",
            OBJECT_NOT_FOUND => "Object Not Found",
            WRONG_KEY_LIFECYCLE_STATE => "Wrong Key Lifecycle State",
            GENERAL_FAILURE => "General Failure",
            _ => "failure",
        }
    }
}

/// Object Type: Symmetric Key.
pub const OBJECT_TYPE_SYMMETRIC_KEY: u32 = 0x02;
/// Cryptographic Algorithm: AES.
pub const ALGORITHM_AES: u32 = 0x03;
/// Block Cipher Mode: GCM.
pub const MODE_GCM: u32 = 0x09;
/// Name Type: Uninterpreted Text String.
pub const NAME_TYPE_TEXT: u32 = 0x01;
/// Cryptographic Usage Mask bits Encrypt (0x04) | Decrypt (0x08).
pub const USAGE_ENCRYPT_DECRYPT: i32 = 0x04 | 0x08;
