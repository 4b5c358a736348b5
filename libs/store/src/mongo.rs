//! MongoDB for the distributed mode: the seed's pool of 10 connections per
//! instance, safe defaults for what the URI leaves unsaid (majority and
//! journaled writes, reads from the primary, retryable writes and reads),
//! and unique indexes made at start.

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, ReadPreference, SelectionCriteria, WriteConcern};
use mongodb::{Client, Database, IndexModel};

use crate::StoreError;

/// How long a majority write may wait for its acknowledgement.
const MAJORITY_TIMEOUT: Duration = Duration::from_secs(5);

/// The driver's options for `uri`: what the URI says (`w`, `journal`,
/// `wtimeoutMS`, `readPreference`, `retryWrites`, `retryReads`,
/// `replicaSet`, TLS, ...) wins; where it is silent, writes wait for a
/// journaled majority (an acknowledged message survives a primary's loss),
/// reads go to the primary (a sender reads its own message back at once) and
/// both are retried once across a failover.
pub async fn mongo_client_options(uri: &str) -> Result<ClientOptions, StoreError> {
    let mut options = ClientOptions::parse(uri).await?;
    options.max_pool_size.get_or_insert(10);
    // Short enough that a call finds the server gone (503) well within the
    // callers' 5 s deadline, rather than hanging until it.
    options.server_selection_timeout.get_or_insert(Duration::from_secs(2));
    options.connect_timeout.get_or_insert(Duration::from_secs(2));
    let said = options.write_concern.take().unwrap_or_default();
    options.write_concern = Some(
        WriteConcern::builder()
            .w(said.w.unwrap_or(Acknowledgment::Majority))
            .journal(said.journal.unwrap_or(true))
            .w_timeout(said.w_timeout.unwrap_or(MAJORITY_TIMEOUT))
            .build(),
    );
    options.selection_criteria.get_or_insert(SelectionCriteria::ReadPreference(ReadPreference::Primary));
    options.retry_writes.get_or_insert(true);
    options.retry_reads.get_or_insert(true);
    options.app_name.get_or_insert_with(|| "chatterbox".into());
    Ok(options)
}

/// Connects to `uri` and returns database `name`. The client connects lazily;
/// the caller's first operation (index creation) proves the server is there.
pub async fn mongo_database(uri: &str, name: &str) -> Result<Database, StoreError> {
    let options = mongo_client_options(uri).await?;
    if options.retry_writes == Some(false) {
        tracing::warn!("retryWrites=false: a write cut by a failover fails instead of being retried once");
    }
    let client = Client::with_options(options)?;
    Ok(client.database(name))
}

/// Whether `e` says the server could not be reached (none selectable, a
/// broken connection, a pool cleared after one) or that the server itself
/// labels the operation retryable, rather than that it refused it.
pub(crate) fn is_outage(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, RETRYABLE_WRITE_ERROR, TRANSIENT_TRANSACTION_ERROR};
    matches!(
        e.kind.as_ref(),
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label(RETRYABLE_WRITE_ERROR)
        || e.contains_label(TRANSIENT_TRANSACTION_ERROR)
}

/// Succeeds when the server behind `db` answers a `ping`.
pub async fn ping(db: &Database) -> Result<(), StoreError> {
    db.run_command(mongodb::bson::doc! {"ping": 1}).await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_uri_that_says_nothing_gets_the_safe_defaults() {
        let options = mongo_client_options("mongodb://db.example:27017/?replicaSet=rs0").await.unwrap();
        let concern = options.write_concern.unwrap();
        assert_eq!(concern.w, Some(Acknowledgment::Majority));
        assert_eq!(concern.journal, Some(true));
        assert_eq!(concern.w_timeout, Some(MAJORITY_TIMEOUT));
        assert!(matches!(options.selection_criteria, Some(SelectionCriteria::ReadPreference(ReadPreference::Primary))));
        assert_eq!((options.retry_writes, options.retry_reads), (Some(true), Some(true)));
        assert_eq!(options.max_pool_size, Some(10));
        assert_eq!(options.repl_set_name.as_deref(), Some("rs0"));
    }

    #[tokio::test]
    async fn what_the_uri_says_wins() {
        let uri = "mongodb://db.example:27017/?w=2&journal=false&wtimeoutMS=900\
                   &readPreference=secondaryPreferred&retryWrites=false&maxPoolSize=50";
        let options = mongo_client_options(uri).await.unwrap();
        let concern = options.write_concern.unwrap();
        assert_eq!(concern.w, Some(Acknowledgment::Nodes(2)));
        assert_eq!(concern.journal, Some(false));
        assert_eq!(concern.w_timeout, Some(Duration::from_millis(900)));
        assert!(matches!(
            options.selection_criteria,
            Some(SelectionCriteria::ReadPreference(ReadPreference::SecondaryPreferred { .. }))
        ));
        assert_eq!(options.retry_writes, Some(false));
        assert_eq!(options.max_pool_size, Some(50));
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_an_outage_answered_unavailable() {
        // A port nothing listens on any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let db = mongo_database(&format!("mongodb://127.0.0.1:{port}/?directConnection=true"), "x").await.unwrap();
        let started = std::time::Instant::now();
        let e = ping(&db).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(4), "found out within the server selection timeout");
        assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
        assert_eq!(chatterbox_errors::Error::from(e).code(), chatterbox_errors::Code::Unavailable);
        let refused = StoreError::backend("a bad document");
        assert_eq!(chatterbox_errors::Error::from(refused).code(), chatterbox_errors::Code::Internal);
    }
}
