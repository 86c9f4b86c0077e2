//! rampart-webhook: work in progress.
