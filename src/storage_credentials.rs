//! S3 credentials for the MinIO that `docker-compose.yml` runs, generated on
//! first start instead of written into the file: MinIO reads them as Docker
//! secrets (`access_key` and `secret_key`, its image's defaults for
//! `MINIO_ROOT_USER_FILE` / `MINIO_ROOT_PASSWORD_FILE`, under
//! `/run/secrets`), the bucket job with `cat`, and the media service as an
//! AWS shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`).

use std::path::Path;

use anyhow::Context as _;
use rand::Rng as _;

/// MinIO's root user (and the S3 access key id).
pub const ACCESS_KEY_FILE: &str = "access_key";
/// MinIO's root password (and the S3 secret key).
pub const SECRET_KEY_FILE: &str = "secret_key";
/// The same pair as an AWS shared credentials file, profile `default`.
pub const AWS_CREDENTIALS_FILE: &str = "aws-credentials";

/// A generated access key and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageCredentials {
    /// 20 upper-case letters and digits.
    pub access_key: String,
    /// 40 letters and digits.
    pub secret_key: String,
}

impl std::fmt::Debug for StorageCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageCredentials").field("access_key", &self.access_key).finish_non_exhaustive()
    }
}

fn random(length: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..length).map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())])).collect()
}

/// Reads the credentials kept in `dir`, or generates and writes them (all
/// three files, readable by their owner alone) when any is missing.
pub fn load_or_generate(dir: &Path) -> anyhow::Result<StorageCredentials> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).map(|s| s.trim().to_owned());
    if let (Ok(access_key), Ok(secret_key), true) =
        (read(ACCESS_KEY_FILE), read(SECRET_KEY_FILE), dir.join(AWS_CREDENTIALS_FILE).exists())
        && !access_key.is_empty()
        && !secret_key.is_empty()
    {
        return Ok(StorageCredentials { access_key, secret_key });
    }
    let credentials = StorageCredentials {
        access_key: random(20, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
        secret_key: random(40, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
    };
    chatterbox_store::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let aws = format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        credentials.access_key, credentials.secret_key
    );
    for (name, text) in [
        (ACCESS_KEY_FILE, credentials.access_key.clone()),
        (SECRET_KEY_FILE, credentials.secret_key.clone()),
        (AWS_CREDENTIALS_FILE, aws),
    ] {
        write_private(&dir.join(name), &text)?;
    }
    Ok(credentials)
}

/// Replaces `path` with `text`, readable by its owner alone.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("replacing {}", path.display())),
    }
    chatterbox_store::create_private_file(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
