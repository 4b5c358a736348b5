//! Ed25519 key pairs in PKCS#8 / SPKI PEM, generated or read from files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};

/// A private key (for the auth service) and its public half (for everyone).
#[derive(Clone)]
pub struct KeyPair {
    /// PKCS#8 PEM of the private key.
    pub private_pem: String,
    /// SPKI PEM of the public key.
    pub public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("public_pem", &self.public_pem).finish_non_exhaustive()
    }
}

/// A fresh Ed25519 key pair from the OS random generator.
pub fn generate_keypair() -> anyhow::Result<KeyPair> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private_pem = key.to_pkcs8_pem(LineEnding::LF).context("encoding the private key")?.to_string();
    let public_pem = key.verifying_key().to_public_key_pem(LineEnding::LF).context("encoding the public key")?;
    Ok(KeyPair { private_pem, public_pem })
}

/// The SPKI PEM public half of a PKCS#8 PEM private key: the auth service
/// checks the tokens it issued without a second key file.
pub fn public_pem_of(private_pem: &str) -> anyhow::Result<String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    let key = SigningKey::from_pkcs8_pem(private_pem).context("reading the private key")?;
    key.verifying_key().to_public_key_pem(LineEnding::LF).context("encoding the public key")
}

/// Names of the key files inside a directory.
fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("jwt-private.pem"), dir.join("jwt-public.pem"))
}

/// Reads the pair kept in `dir`, generating and saving one on first start
/// (embedded mode). The private key file is readable by its owner only.
pub fn load_or_generate_keypair(dir: &Path) -> anyhow::Result<KeyPair> {
    let (private, public) = paths(dir);
    if private.exists() && public.exists() {
        return Ok(KeyPair {
            private_pem: std::fs::read_to_string(&private).with_context(|| format!("reading {}", private.display()))?,
            public_pem: std::fs::read_to_string(&public).with_context(|| format!("reading {}", public.display()))?,
        });
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pair = generate_keypair()?;
    write_private(&private, &pair.private_pem)?;
    // Owner-only too: like everything in the data dir, nobody else's business.
    // (A public key left without its private half is replaced.)
    let _ = std::fs::remove_file(&public);
    write_private(&public, &pair.public_pem)?;
    Ok(pair)
}

/// Reads a public key file (distributed mode).
pub fn load_public_key(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the public key {}", path.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate_keypair(dir.path()).unwrap();
        let second = load_or_generate_keypair(dir.path()).unwrap();
        assert_eq!(first.private_pem, second.private_pem);
        assert!(first.public_pem.contains("BEGIN PUBLIC KEY"));
    }

    #[test]
    fn the_public_half_is_derived_from_the_private_key() {
        let pair = generate_keypair().unwrap();
        assert_eq!(public_pem_of(&pair.private_pem).unwrap(), pair.public_pem);
        assert!(public_pem_of("not a key").is_err());
    }
}
