//! Decoding untrusted envelope bytes must never panic, and whatever decodes must
//! re-encode to exactly the input (the encoding is canonical).
#![no_main]

use custos_ledger::message::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::decode(data) {
        assert_eq!(envelope.leaf_bytes(), data, "decoding is not canonical");
    }
});
