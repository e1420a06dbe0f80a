//! Reading stored clients back: one undecodable record affects only its own client.

use std::future::Future;
use std::sync::Arc;

use super::{ClientRecord, StoreError};
use crate::metadata::ClientMetadata;

/// Decodes the metadata JSON a store kept for `client_id`
/// ([`ClientMetadata::from_trusted_json`]). An error is [`StoreError::Undecodable`], naming the
/// client and never repeating the stored text.
pub fn decode_metadata(client_id: &str, json: Arc<str>) -> Result<ClientMetadata, StoreError> {
    ClientMetadata::from_trusted_json(json).map_err(|e| {
        let reason = if e.is_data() {
            // A data error may quote a stored value: say only what was wrong.
            "the metadata is not a JSON object".to_owned()
        } else {
            e.to_string()
        };
        StoreError::Undecodable {
            client_id: client_id.to_owned(),
            reason,
        }
    })
}

/// One page of [`ClientStore::list_clients`](super::ClientStore::list_clients) that leaves out
/// the clients whose records cannot be decoded, logging an error naming each, and still holds
/// `limit` clients when that many decodable ones follow `after`.
///
/// `fetch(after, n)` answers at most `n` clients after `after` in client id order, each decoded
/// or [`StoreError::Undecodable`]; any other error ends the listing.
pub async fn list_decodable<F, Fut>(
    after: Option<&str>,
    limit: usize,
    mut fetch: F,
) -> Result<Vec<ClientRecord>, StoreError>
where
    F: FnMut(Option<String>, usize) -> Fut,
    Fut: Future<Output = Result<Vec<Result<ClientRecord, StoreError>>, StoreError>>,
{
    let mut page = Vec::new();
    let mut cursor = after.map(str::to_owned);
    while page.len() < limit {
        let wanted = limit - page.len();
        let batch = fetch(cursor.clone(), wanted).await?;
        let fetched = batch.len();
        for item in batch {
            match item {
                Ok(client) => {
                    cursor = Some(client.client_id.clone());
                    page.push(client);
                }
                Err(StoreError::Undecodable { client_id, reason }) => {
                    tracing::error!(client_id = %client_id, reason = %reason,
                        "stored client cannot be decoded; left out of the listing");
                    cursor = Some(client_id);
                }
                Err(other) => return Err(other),
            }
        }
        if fetched < wanted {
            break;
        }
    }
    Ok(page)
}
