//! Key files: one Ed25519 key per JSON file, written readable by its owner only.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use custos_ledger::crypto::{KeyId, PublicKey, SecretKey};

/// What a key is for. The same Ed25519 key type serves all; the label keeps operators
/// from putting a collector key where a validator key belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// A validator's consensus, cosigning and libp2p identity key.
    Validator,
    /// An organisation's signing key (incidents, warnings, insurance, membership).
    Organisation,
    /// A collector agent's signing key.
    Collector,
}

/// The JSON form of a key file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// What the key is for.
    pub kind: KeyKind,
    /// Public key, hex.
    pub public_key: PublicKey,
    /// Key id, hex (derived; checked on load).
    pub key_id: KeyId,
    /// The 32-byte secret seed, hex.
    pub secret_seed: String,
}

impl KeyFile {
    /// A new random key.
    pub fn generate(kind: KeyKind) -> (Self, SecretKey) {
        let secret = SecretKey::generate();
        (Self::from_secret(kind, &secret), secret)
    }

    /// The file form of `secret`.
    pub fn from_secret(kind: KeyKind, secret: &SecretKey) -> Self {
        let public_key = secret.public();
        Self {
            kind,
            public_key,
            key_id: public_key.key_id(),
            secret_seed: hex::encode(secret.seed()),
        }
    }

    /// Writes the file, refusing to overwrite an existing key, with mode 0600.
    pub fn write_new(&self, path: &Path) -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).with_context(|| {
            format!(
                "creating key file {} (it must not exist yet)",
                path.display()
            )
        })?;
        let json = serde_json::to_string_pretty(self).expect("key files serialize");
        file.write_all(json.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        Ok(())
    }

    /// Reads a key file and checks that it is consistent and of the expected kind.
    pub fn load(path: &Path, expected: KeyKind) -> anyhow::Result<SecretKey> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        let file: KeyFile = serde_json::from_str(&text)
            .with_context(|| format!("key file {} is not a Custos key file", path.display()))?;
        if file.kind != expected {
            bail!(
                "key file {} holds a {:?} key, but a {:?} key is needed here",
                path.display(),
                file.kind,
                expected
            );
        }
        let seed: [u8; 32] = hex::decode(&file.secret_seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| {
                format!(
                    "key file {}: secret_seed must be 64 hex digits",
                    path.display()
                )
            })?;
        let secret = SecretKey::from_seed(&seed);
        if secret.public() != file.public_key || file.public_key.key_id() != file.key_id {
            bail!(
                "key file {} is inconsistent: its public key or key id does not match its secret",
                path.display()
            );
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let (file, secret) = KeyFile::generate(KeyKind::Collector);
        file.write_new(&path).unwrap();
        assert_eq!(
            KeyFile::load(&path, KeyKind::Collector).unwrap().public(),
            secret.public()
        );
        // Wrong kind, overwrite and tampering are refused.
        assert!(KeyFile::load(&path, KeyKind::Validator).is_err());
        assert!(file.write_new(&path).is_err());
        let mut tampered = file.clone();
        tampered.public_key = SecretKey::generate().public();
        let other = dir.path().join("t.json");
        tampered.write_new(&other).unwrap();
        assert!(KeyFile::load(&other, KeyKind::Collector).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
