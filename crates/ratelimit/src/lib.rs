//! rampart-ratelimit: work in progress.
