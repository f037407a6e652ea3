//! The command line, defined once: parsing, `--help`, the shell
//! completions and the man page all come from these types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Key management from the shell: keychains, sealed secrets, \
streaming encryption, signatures, derived keys and rewrap.";

const LONG_ABOUT: &str = "\
Key management from the shell: keychains, sealed secrets, streaming encryption,
signatures, derived keys and rewrap.

A keychain lives at a LOCATION (--keychain: a file path, file:///path,
etcd://host:port/key or etcds://...) and is protected at rest by a ROOT (--root:
age:FILE, age-recipient:age1..., passphrase:VAR, passphrase:env:VAR,
passphrase:file:FILE, pkcs11:..., kmip://..., aws-kms:...). Secrets never come
from the command line: a root URI that carries one is refused.

Full documentation: docs/CLI.md.";

/// The `keystrata` command.
#[derive(Parser, Debug)]
#[command(
    name = "keystrata",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    propagate_version = true
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (before or after the command's name).
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The keychain: a file path, file:///path, etcd://host:port/key, etcds://...
    #[arg(
        long,
        global = true,
        env = "KEYSTRATA_KEYCHAIN",
        hide_env_values = true,
        value_name = "LOCATION"
    )]
    pub keychain: Option<String>,

    /// The root: age:FILE, passphrase:env:VAR, pkcs11:..., kmip://..., aws-kms:...
    #[arg(
        long,
        global = true,
        env = "KEYSTRATA_ROOT",
        hide_env_values = true,
        value_name = "ROOT-URI"
    )]
    pub root: Option<String>,

    /// Print results as JSON on stdout, and errors as JSON on stderr
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress bar and no notes on stderr (errors are still printed)
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, inspect and change a keychain
    #[command(subcommand)]
    Keychain(KeychainCommand),

    /// Seal a small secret (at most 64 KiB) under the encryption primary
    #[command(
        after_help = "The output is binary (Tink's AEAD format): write it to a file or a pipe, or\n\
            use --base64."
    )]
    Seal(SealArgs),

    /// Unseal what `seal` made
    Unseal(UnsealArgs),

    /// Encrypt a file or a pipe of any size under the streaming primary
    #[command(
        after_help = "Streams in Tink's AES256_GCM_HKDF streaming format, in constant memory. The\n\
        keychain needs a streaming key: `keystrata keychain rotate --purpose stream`."
    )]
    Encrypt(StreamArgs),

    /// Decrypt what `encrypt` (or Tink's streaming AEAD) made
    #[command(
        after_help = "An output file is written under a temporary name and renamed only once the\n\
            whole stream has authenticated: a failed decryption leaves no output file.\n\
            When writing to a pipe, check the exit code."
    )]
    Decrypt(StreamArgs),

    /// Sign a file with the signing primary (DER/raw signatures, or minisign)
    Sign(SignArgs),

    /// Verify a signature with the keychain, a public key file or a trust file
    Verify(VerifyArgs),

    /// Print the public key of a signing key
    Pubkey(PubkeyArgs),

    /// Print a derived key (secret material!) for an origin, instance and epoch
    #[command(
        after_help = "The output is a secret key. It is written to a file (-o), a pipe, or a\n\
            terminal only with --force."
    )]
    Derive(DeriveArgs),

    /// Re-encrypt ciphertexts under the current primary, or list which key each uses
    #[command(
        after_help = "Sealed ciphertexts and wrapped keys are unwrapped and wrapped again inside the\n\
            process, never written in the clear; an envelope-encrypted blob only has its\n\
            data key re-wrapped (the payload is copied unchanged). Files are rewritten\n\
            atomically, keeping their permissions; a file already under the current\n\
            primary is left alone. After every ciphertext is rewrapped, disable the old\n\
            key (keychain disable), then destroy it."
    )]
    Rewrap(RewrapArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "bash: keystrata completions bash > /etc/bash_completion.d/keystrata\n\
            zsh:  keystrata completions zsh > \"${fpath[1]}/_keystrata\"\n\
            fish: keystrata completions fish > ~/.config/fish/completions/keystrata.fish"
    )]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Serve the Kubernetes KMS v2 API on a unix socket over this keychain
    #[command(
        name = "kms-plugin",
        disable_help_flag = true,
        after_help = "Runs the keystrata-kms-plugin program (beside keystrata: make kms-plugin,\n\
            make install-kms-plugin; or on PATH) with --keychain, --root and ARGS:\n\
            --listen unix:///path.sock [--metrics-listen HOST:PORT] [--refresh-ms N]\n\
            [--socket-mode OCTAL] [--grace-secs N]. docs/KMS-PLUGIN.md."
    )]
    KmsPlugin {
        /// The plugin's arguments (`keystrata kms-plugin --help` shows them)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
        args: Vec<std::ffi::OsString>,
    },

    /// Print the man page (roff), or write one page per command into a directory
    Man {
        /// Write keystrata.1 and keystrata-COMMAND.1 pages into DIR instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `keystrata keychain ...`
#[derive(Subcommand, Debug)]
pub enum KeychainCommand {
    /// Create a keychain at --keychain under --root (never overwrites)
    New(NewArgs),

    /// List the keys (ID, version, purpose, status, usage), the policy; never secrets
    Show,

    /// Add a key and make it the primary of its purpose
    Rotate(PurposeArgs),

    /// Add an enabled key that is not primary (promote it later)
    Add(PurposeArgs),

    /// Make an enabled key the primary of its purpose
    Promote {
        /// The key's ID (as `keychain show` prints it)
        key_id: u32,
    },

    /// Refuse a key for every operation (kept; `enable` undoes it)
    Disable {
        /// The key's ID
        key_id: u32,
    },

    /// Enable a disabled key again
    Enable {
        /// The key's ID
        key_id: u32,
    },

    /// Wipe a key's material: ciphertexts under it can never be decrypted again
    Destroy {
        /// The key's ID
        key_id: u32,
        /// Confirm: destroying a key cannot be undone
        #[arg(long)]
        yes: bool,
    },

    /// Move the keychain to another root (and optionally another location)
    #[command(
        after_help = "The keychain is loaded under --root and saved under --to-root; the new copy is\n\
            loaded back under --to-root and compared before anything is replaced. No key\n\
            material is written in the clear. Without --to-keychain the keychain is\n\
            replaced in place (atomically, and only if nobody changed it meanwhile); with\n\
            it, the new location must not exist yet and the old one is left as it was.\n\
            Restart the services that use the keychain with the new root."
    )]
    Migrate(MigrateArgs),
}

/// `keychain new`
#[derive(Args, Debug)]
pub struct NewArgs {
    /// Maximum encryptions under one key before rotation (default and maximum 2^32)
    #[arg(long, value_name = "N")]
    pub max_encryptions: Option<u64>,
    /// Maximum age of the encryption primary, in seconds (default: none)
    #[arg(long, value_name = "SECONDS")]
    pub max_key_age: Option<u64>,
    /// Usage counts a process reserves in the store at a time (default 65536)
    #[arg(long, value_name = "N")]
    pub usage_block: Option<u64>,
}

/// `keychain rotate` and `keychain add`
#[derive(Args, Debug)]
pub struct PurposeArgs {
    /// Which primary: encrypt (seal, rewrap), derive, sign or stream (encrypt/decrypt)
    #[arg(long, value_enum, default_value_t = PurposeArg::Encrypt)]
    pub purpose: PurposeArg,
    /// The signing algorithm (with --purpose sign; default ed25519)
    #[arg(long, value_enum)]
    pub algorithm: Option<AlgorithmArg>,
    /// The streaming format (with --purpose stream; default aes256-gcm-hkdf-1mb)
    #[arg(long, value_enum)]
    pub format: Option<StreamFormatArg>,
}

/// `keychain migrate`
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The new root
    #[arg(long, value_name = "ROOT-URI")]
    pub to_root: String,
    /// Write the migrated keychain here (must not exist) instead of in place
    #[arg(long, value_name = "LOCATION")]
    pub to_keychain: Option<String>,
}

/// A key purpose.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurposeArg {
    /// Seal, encrypt and wrap keys
    Encrypt,
    /// HKDF derivation
    Derive,
    /// Signatures
    Sign,
    /// Streaming encryption
    Stream,
}

/// A signing algorithm.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgorithmArg {
    /// Ed25519 (minisign's)
    Ed25519,
    /// ECDSA P-256 with SHA-256
    EcdsaP256,
    /// ECDSA secp256k1 with SHA-256
    EcdsaSecp256k1,
}

/// A streaming format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFormatArg {
    /// 1 MiB segments (Tink's AES256_GCM_HKDF_1MB)
    #[value(name = "aes256-gcm-hkdf-1mb", alias = "1mb")]
    OneMb,
    /// 4 KiB segments (Tink's AES256_GCM_HKDF_4KB)
    #[value(name = "aes256-gcm-hkdf-4kb", alias = "4kb")]
    FourKb,
}

/// Associated data: authenticated, not encrypted; the same value must be
/// given to decrypt.
#[derive(Args, Debug, Clone)]
pub struct AadArgs {
    /// Associated data (not secret; needed again to decrypt)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub aad: String,
}

/// `seal`
#[derive(Args, Debug)]
pub struct SealArgs {
    /// The secret to seal: a file, or - for stdin
    #[arg(default_value = "-", value_name = "INPUT")]
    pub input: String,
    /// Where to write the ciphertext: a file, or - for stdout
    #[arg(short, long, default_value = "-", value_name = "OUTPUT")]
    pub output: String,
    #[command(flatten)]
    pub aad: AadArgs,
    /// Write the ciphertext as base64 text
    #[arg(long)]
    pub base64: bool,
    /// Write binary output to a terminal anyway
    #[arg(long)]
    pub force: bool,
}

/// `unseal`
#[derive(Args, Debug)]
pub struct UnsealArgs {
    /// The ciphertext: a file, or - for stdin
    #[arg(default_value = "-", value_name = "INPUT")]
    pub input: String,
    /// Where to write the secret: a file (mode 0600), or - for stdout
    #[arg(short, long, default_value = "-", value_name = "OUTPUT")]
    pub output: String,
    #[command(flatten)]
    pub aad: AadArgs,
    /// The ciphertext is base64 text (as `seal --base64` writes it)
    #[arg(long)]
    pub base64: bool,
}

/// `encrypt` and `decrypt`
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// The input: a file, or - for stdin
    #[arg(default_value = "-", value_name = "INPUT")]
    pub input: String,
    /// The output: a file (written atomically), or - for stdout
    #[arg(short, long, default_value = "-", value_name = "OUTPUT")]
    pub output: String,
    #[command(flatten)]
    pub aad: AadArgs,
    /// Write binary output to a terminal anyway
    #[arg(long)]
    pub force: bool,
}

/// `sign`
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The data to sign: a file, or - for stdin (read into memory)
    #[arg(default_value = "-", value_name = "INPUT")]
    pub input: String,
    /// Where to write the signature (default: INPUT.minisig with --minisign, else stdout)
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<String>,
    /// Write a minisign signature (.minisig text) that `minisign -V` verifies
    #[arg(long)]
    pub minisign: bool,
    /// The minisign trusted comment (default: minisign's, timestamp and file name)
    #[arg(long, short = 't', value_name = "TEXT", requires = "minisign")]
    pub trusted_comment: Option<String>,
    /// ECDSA signature encoding (Ed25519 signatures have one)
    #[arg(long, value_enum, default_value_t = SigFormatArg::Der, conflicts_with = "minisign")]
    pub format: SigFormatArg,
    /// Write the signature as base64 text
    #[arg(long, conflicts_with = "minisign")]
    pub base64: bool,
    /// Write binary output to a terminal anyway
    #[arg(long)]
    pub force: bool,
}

/// An ECDSA signature encoding.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigFormatArg {
    /// ASN.1 DER (OpenSSL, AWS KMS)
    Der,
    /// r || s, 64 bytes (JOSE, WebCrypto)
    Raw,
}

/// `verify`
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The signed data: a file, or - for stdin
    #[arg(default_value = "-", value_name = "INPUT")]
    pub input: String,
    /// The signature file: minisign text, or a DER/raw signature (default: INPUT.minisig)
    #[arg(short = 'x', long, value_name = "FILE")]
    pub signature: Option<String>,
    /// The signature file is base64 text (as `sign --base64` writes it)
    #[arg(long)]
    pub base64: bool,
    /// Verify with a public key file (PEM, DER, raw, minisign .pub), not the keychain
    #[arg(long, value_name = "FILE", conflicts_with = "trusted_keys")]
    pub pubkey: Option<String>,
    /// The algorithm of a raw 65-byte ECDSA --pubkey (found by trying both otherwise)
    #[arg(long, value_enum, requires = "pubkey")]
    pub algorithm: Option<AlgorithmArg>,
    /// Verify with a trust file (KEYS.txt, docs/SIGNING.md) instead of the keychain
    #[arg(long, value_name = "KEYS.txt")]
    pub trusted_keys: Option<String>,
    /// Verify with this key of the keychain only
    #[arg(long, value_name = "KEY_ID", conflicts_with_all = ["pubkey", "trusted_keys"])]
    pub key_id: Option<u32>,
}

/// `pubkey`
#[derive(Args, Debug)]
pub struct PubkeyArgs {
    /// The signing key's ID (default: the signing primary)
    pub key_id: Option<u32>,
    /// The encoding
    #[arg(long, value_enum, default_value_t = PubkeyFormatArg::Pem)]
    pub format: PubkeyFormatArg,
    /// Where to write it: a file, or - for stdout
    #[arg(short, long, default_value = "-", value_name = "OUTPUT")]
    pub output: String,
    /// Write binary output (der, raw) to a terminal anyway
    #[arg(long)]
    pub force: bool,
}

/// A public key encoding.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PubkeyFormatArg {
    /// PEM SubjectPublicKeyInfo (openssl)
    Pem,
    /// DER SubjectPublicKeyInfo
    Der,
    /// The bare key: 32 bytes (Ed25519) or the 65-byte point (ECDSA)
    Raw,
    /// A minisign .pub file (Ed25519 only)
    Minisign,
}

/// `derive`
#[derive(Args, Debug)]
pub struct DeriveArgs {
    /// The origin (for example https://app.example)
    #[arg(long)]
    pub origin: String,
    /// The instance within the origin
    #[arg(long)]
    pub instance: String,
    /// The epoch: bump it to rotate the derived key
    #[arg(long)]
    pub epoch: u64,
    /// Bytes to derive, 1 to 8160 (the first 32 are always the same key)
    #[arg(long, default_value_t = 32)]
    pub length: usize,
    /// Derive under this derivation key instead of the derivation primary
    #[arg(long, value_name = "KEY_ID")]
    pub key_id: Option<u32>,
    /// Write raw bytes instead of hex
    #[arg(long)]
    pub raw: bool,
    /// Where to write the key: a file (mode 0600), or - for stdout
    #[arg(short, long, default_value = "-", value_name = "OUTPUT")]
    pub output: String,
    /// Print the secret key on a terminal anyway
    #[arg(long)]
    pub force: bool,
}

/// What a rewrap reads.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewrapKind {
    /// A sealed ciphertext (`seal`; binary)
    Sealed,
    /// An envelope-encrypted blob (Keychain::encrypt; binary)
    Encrypted,
    /// A wrapped key as JSON: the x-amz-meta-encryption-* map, or its 4 fields
    Envelope,
}

/// `rewrap`
#[derive(Args, Debug)]
pub struct RewrapArgs {
    /// What the files hold
    #[arg(long, value_enum)]
    pub kind: RewrapKind,
    /// The files (- for stdin); rewritten in place (atomically) unless -o is given
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Only list which key each file uses; exit 3 if one is not under the current primary
    #[arg(long)]
    pub check: bool,
    /// Write the result here (- for stdout) instead of in place; one input only
    #[arg(short, long, value_name = "OUTPUT", conflicts_with = "check")]
    pub output: Option<String>,
    /// Associated data of sealed ciphertexts (--kind sealed)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub aad: String,
    /// The wrapping context of envelopes (--kind envelope)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub context: String,
    /// The files hold base64 text, as `seal --base64` writes it (written back so)
    #[arg(long)]
    pub base64: bool,
    /// Write binary output to a terminal anyway
    #[arg(long)]
    pub force: bool,
}
