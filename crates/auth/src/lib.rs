//! rampart-auth: work in progress.
