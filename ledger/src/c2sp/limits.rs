//! Limits on untrusted C2SP input, kept in one place with the reason for each.
//!
//! Every parser in this module checks the relevant limit before it allocates or verifies
//! anything, so a hostile note or proof costs at most a bounded amount of memory and a
//! bounded number of Ed25519 verifications. The assertions at the bottom state how the
//! limits relate to each other and to the minimums the specifications require.

/// The fewest signature lines c2sp.org/signed-note says a verifier MUST accept.
pub const NOTE_SIGNATURES_SPEC_MIN: usize = 16;

/// Most signature lines accepted in one note.
///
/// signed-note requires accepting at least [`NOTE_SIGNATURES_SPEC_MIN`]. A Custos
/// checkpoint carries one cosignature per validator, possibly a log signature, and lines
/// that outside witnesses or relays add; 256 leaves room for [`POLICY_COSIGNERS_MAX`]
/// cosigners plus as many foreign lines, and bounds the Ed25519 verifications one note can
/// make a verifier do.
pub const NOTE_SIGNATURES_MAX: usize = 256;

/// Longest signature line (with its newline) of any algorithm signed-note names today: an
/// ML-DSA-87 signature is 4627 bytes, so `— ` (4 bytes), a [`KEY_NAME_BYTES_MAX`] name,
/// a space, base64 of the 4-byte key id plus signature (6176 bytes) and a newline.
pub const POST_QUANTUM_SIGNATURE_LINE_BYTES_MAX: usize = 4 + KEY_NAME_BYTES_MAX + 1 + 6176 + 1;

/// Most bytes in one signed note, text and signature lines together.
///
/// signed-note reminds verifiers that post-quantum signatures run to nearly 5 kB, and
/// [`NOTE_SIGNATURES_SPEC_MIN`] of those must fit. A checkpoint text is about 100 bytes, so
/// 1 MiB is generous for every real note while keeping a hostile one cheap to reject.
pub const NOTE_BYTES_MAX: usize = 1 << 20;

/// Longest key name, in bytes, accepted in a verifier or signer key.
///
/// c2sp.org/tlog-cosignature's ML-DSA-44 format encodes the cosigner name with a one-byte
/// length, so 255 is the longest name that works with every cosignature type. Signature
/// lines of unknown keys are not held to it (the spec says to ignore them, not to reject
/// the note); [`NOTE_BYTES_MAX`] bounds those.
pub const KEY_NAME_BYTES_MAX: usize = 255;

/// Most cosigners in one quorum policy.
///
/// c2sp.org/tlog-policy recommends supporting at least 32 witnesses; a Custos network has
/// one cosigner per validator, and BFT networks of more than 100 validators are rare.
pub const POLICY_COSIGNERS_MAX: usize = 128;

/// Most extension lines in a checkpoint.
///
/// tlog-checkpoint calls extension lines NOT RECOMMENDED (monitors cannot audit them) and
/// Custos writes none; the cap only bounds what a parsed checkpoint holds.
pub const CHECKPOINT_EXTENSION_LINES_MAX: usize = 32;

/// Most hashes in an inclusion proof: a tree of at most 2^64 leaves is 64 levels deep, and
/// an RFC 9162 inclusion proof has at most one hash per level.
pub const PROOF_HASHES_MAX: usize = 64;

/// Most bytes of opaque extra data in a tlog-proof.
///
/// The extra data is unauthenticated context (file names, a VRF proof, a record's missing
/// fields); 64 KiB holds any of those many times over.
pub const PROOF_EXTRA_BYTES_MAX: usize = 64 * 1024;

/// Most bytes in one tlog-proof file: every line before the checkpoint at its longest, plus
/// the longest checkpoint note.
pub const TLOG_PROOF_BYTES_MAX: usize = "c2sp.org/tlog-proof@v1\n".len()
    + "extra \n".len()
    + PROOF_EXTRA_BYTES_MAX.div_ceil(3) * 4
    + "index 18446744073709551615\n".len()
    + PROOF_HASHES_MAX * "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".len()
    + 1
    + NOTE_BYTES_MAX;

const _: () = assert!(NOTE_SIGNATURES_MAX >= NOTE_SIGNATURES_SPEC_MIN);
const _: () =
    assert!(NOTE_SIGNATURES_SPEC_MIN * POST_QUANTUM_SIGNATURE_LINE_BYTES_MAX < NOTE_BYTES_MAX);
// Every configured cosigner, and a log key, can sign one note.
const _: () = assert!(POLICY_COSIGNERS_MAX < NOTE_SIGNATURES_MAX);
const _: () = assert!(PROOF_HASHES_MAX == u64::BITS as usize);
