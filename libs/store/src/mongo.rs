//! MongoDB for the distributed mode: the seed's pool of 10 connections per
//! instance, majority + journaled writes, and unique indexes made at start.

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Database, IndexModel};

use crate::StoreError;

/// Connects to `uri` and returns database `name`. The client connects lazily;
/// the caller's first operation (index creation) proves the server is there.
pub async fn mongo_database(uri: &str, name: &str) -> Result<Database, StoreError> {
    let mut options = ClientOptions::parse(uri).await?;
    options.max_pool_size = Some(10);
    options.server_selection_timeout = Some(Duration::from_secs(5));
    options.connect_timeout = Some(Duration::from_secs(5));
    options.write_concern = Some(
        WriteConcern::builder().w(Acknowledgment::Majority).journal(true).w_timeout(Duration::from_secs(5)).build(),
    );
    options.app_name = Some("chatterbox".into());
    let client = Client::with_options(options)?;
    Ok(client.database(name))
}

/// A unique index on `keys`, named so that duplicate-key errors say which.
pub fn unique_index(name: &str, keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).unique(true).build()).build()
}

/// Whether an error is a duplicate key, with the server's message.
///
/// MongoDB answers E11000. FerretDB 1.x on SQLite answers E11000 to inserts
/// but an `InternalError` quoting SQLite's "UNIQUE constraint failed" to
/// findAndModify; both count. Which key clashed is not reliably in the
/// message, so stores that need it look it up afterwards.
pub fn is_duplicate_key(e: &mongodb::error::Error) -> Option<String> {
    use mongodb::error::{ErrorKind, WriteFailure};
    let (code, message) = match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => (w.code, w.message.clone()),
        ErrorKind::Command(c) => (c.code, c.message.clone()),
        _ => return None,
    };
    (code == 11000 || message.contains("UNIQUE constraint failed")).then_some(message)
}
