//! Key records in process memory: for one instance, for tests, and for the static set of the
//! configuration file.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt};
use parking_lot::RwLock;

use super::KeyStore;
use crate::AuthError;
use crate::apikey::KeyRecord;

/// Key records in a map behind a read-write lock. Revocation is visible at once, but only to
/// this process.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    records: RwLock<HashMap<String, Arc<KeyRecord>>>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `records`, such as the hashes listed in the configuration file.
    pub fn from_records(records: impl IntoIterator<Item = KeyRecord>) -> Self {
        let records = records
            .into_iter()
            .map(|record| (record.id.clone(), Arc::new(record)))
            .collect();
        Self {
            records: RwLock::new(records),
        }
    }
}

impl KeyStore for MemoryKeyStore {
    fn lookup<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<KeyRecord>>, AuthError>> {
        let found = self.records.read().get(id).cloned();
        futures_util::future::ready(Ok(found)).boxed()
    }

    fn insert(&self, record: KeyRecord) -> BoxFuture<'_, Result<(), AuthError>> {
        self.records
            .write()
            .insert(record.id.clone(), Arc::new(record));
        futures_util::future::ready(Ok(())).boxed()
    }

    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, AuthError>> {
        let mut records = self.records.write();
        let found = match records.get_mut(id) {
            Some(record) => {
                Arc::make_mut(record).revoked = true;
                true
            }
            None => false,
        };
        futures_util::future::ready(Ok(found)).boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, AuthError>> {
        let all = self
            .records
            .read()
            .values()
            .map(|r| (**r).clone())
            .collect();
        futures_util::future::ready(Ok(all)).boxed()
    }
}
