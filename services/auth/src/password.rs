//! Password hashing with Argon2id at OWASP's parameters (m=19 MiB, t=2, p=1,
//! the crate's defaults), always on the blocking pool and never more than a
//! few at once, so a login burst can neither stall the async threads nor
//! allocate unbounded memory.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chatterbox_errors::Error;
use tokio::sync::Semaphore;

/// Hashes and verifies passwords, rate-limited by a semaphore.
#[derive(Debug, Clone)]
pub(crate) struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the email is
    /// unknown so that both paths cost the same time.
    decoy: Arc<str>,
}

impl PasswordHasherPool {
    pub(crate) async fn new() -> Result<Self, Error> {
        let permits = Arc::new(Semaphore::new(std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(4)));
        let random: [u8; 16] = rand::random();
        let decoy = blocking_hash(format!("{random:x?}")).await?;
        Ok(Self { permits, decoy: decoy.into() })
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub(crate) async fn hash(&self, password: &str) -> Result<String, Error> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        blocking_hash(password.to_owned()).await
    }

    /// Whether `password` matches `hash`; with `None`, checks the decoy and
    /// answers false, taking the same time as a real check.
    pub(crate) async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Error> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let real = hash.is_some();
        let hash = hash.unwrap_or(&self.decoy).to_owned();
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| Error::internal(anyhow::anyhow!("stored hash: {e}")))?;
            Ok::<_, Error>(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(Error::internal)??;
        Ok(real && matches)
    }
}

async fn blocking_hash(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(anyhow::anyhow!("hashing: {e}")))
    })
    .await
    .map_err(Error::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let pool = PasswordHasherPool::new().await.unwrap();
        let hash = pool.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(pool.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("correct horse", None).await.unwrap());
    }
}
