//! Following the change notices of the schema's triggers (see
//! [`crate::changes`]) with a connection of its own.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::PostgresMetadataStore;
use crate::changes::{Change, CHANGES_CHANNEL};

/// How long to wait before connecting again after the database refused.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// Notices not yet taken by the receiver; past that the follower waits.
const BACKLOG: usize = 1024;

impl PostgresMetadataStore {
    /// The changes committed to the database from now on, by any server
    /// (this one included), in commit order. The first item is
    /// [`Change::Everything`], and so is the item after every loss of the
    /// connection that follows them (what changed meanwhile is unknown),
    /// sent once it listens again; the follower connects again by itself,
    /// every half second while the database refuses. It stops when the receiver is dropped.
    pub fn changes(&self) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        let pool = self.pool().clone();
        tokio::spawn(async move {
            let mut first = true;
            while !tx.is_closed() {
                if !first {
                    tokio::time::sleep(RECONNECT_AFTER).await;
                }
                first = false;
                let mut listener = match PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot follow the database's change notices; trying again");
                        continue;
                    }
                };
                if let Err(e) = listener.listen(CHANGES_CHANNEL).await {
                    tracing::warn!(error = %e, "cannot listen for the database's change notices; trying again");
                    continue;
                }
                // Listening from here on: whatever changed before is unknown.
                if tx.send(Change::Everything).await.is_err() {
                    return;
                }
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notice)) => {
                            if tx
                                .send(Change::from_payload(notice.payload()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        // The connection was lost: listen again on a new one,
                        // then tell the receiver to drop everything.
                        Ok(None) => {
                            tracing::warn!("lost the database connection that follows change notices; reconnecting");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "following the database's change notices failed; reconnecting");
                            break;
                        }
                    }
                }
            }
        });
        rx
    }
}
