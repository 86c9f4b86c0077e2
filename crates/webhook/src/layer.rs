//! The layers: verification of inbound webhooks, signing of outbound ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Key, Label, Level, Metadata};
use rampart_core::telemetry::{LABEL_OUTCOME, LABEL_ROUTE};
use tower_layer::Layer;

use crate::backend::{MemoryReplayStore, ReplayStore};
use crate::body::BodyLimits;
use crate::clock::{Clock, SystemClock};
use crate::config::{SignConfig, StoreErrorPolicy, VerifyConfig};
use crate::error::{Outcome, WebhookError};
use crate::service::{SignWebhook, VerifyWebhook};
use crate::sign::Signer;
use crate::verify::Verifier;

/// Verifies inbound webhooks before the inner service sees them.
///
/// The layer reads the signature headers first and answers 401 at once when they are
/// missing, malformed or out of the tolerance window, without reading the body. Otherwise it
/// buffers the body (413 past `max_body_bytes`, 408 when it takes longer than
/// `body_timeout`), checks the signature, checks the replay store, and passes the inner
/// service a request with the same bytes as a [`http_body_util::Full`] body and a
/// [`crate::VerifiedWebhook`] extension.
///
/// It sheds in `call` rather than pushing back: `poll_ready` is the inner service's.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use rampart_webhook::{VerifyConfig, VerifyWebhookLayer};
/// use tower::{ServiceBuilder, service_fn};
///
/// let layer = VerifyWebhookLayer::new(&VerifyConfig {
///     secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
///     ..VerifyConfig::default()
/// })?;
/// let service = ServiceBuilder::new()
///     .layer(layer)
///     .service(service_fn(|request: Request<Full<Bytes>>| async move {
///         // Only verified webhooks get here.
///         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("thanks"))))
///     }));
/// # let _: &dyn std::any::Any = &service;
/// # Ok::<(), rampart_webhook::WebhookError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VerifyWebhookLayer {
    shared: Arc<Shared>,
}

/// What every service of one layer shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) verifier: Verifier,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) body: BodyLimits,
    pub(crate) replay: Option<Replay>,
    /// The `ok` counter's key for the first route seen, built once.
    pub(crate) ok_key: OnceLock<RouteKey>,
}

/// A counter key with the route it was built for.
#[derive(Debug, Clone)]
pub(crate) struct RouteKey {
    route: Arc<str>,
    key: Key,
}

const VERIFICATIONS: &str = "rampart_webhook_verifications_total";

/// What `metrics::counter!` would attach from this module.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The replay part of [`Shared`].
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) namespace: String,
    pub(crate) tolerance_past: u64,
    pub(crate) window: Duration,
    pub(crate) policy: StoreErrorPolicy,
    pub(crate) timeout: Duration,
    /// Set while the store is failing, so only the change is logged at `warn`.
    pub(crate) down: Arc<AtomicBool>,
}

impl VerifyWebhookLayer {
    /// Checks `config` and builds the layer, with an in-memory replay store when replay
    /// protection is on.
    pub fn new(config: &VerifyConfig) -> Result<Self, WebhookError> {
        let verifier = Verifier::new(config)?;
        let body = BodyLimits::new(config.max_body_bytes, config.body_timeout)?;
        let replay = if config.replay.enabled {
            let replay = &config.replay;
            if replay.store_timeout.is_zero() {
                return Err(WebhookError::config(
                    "replay.store_timeout",
                    "must be positive",
                ));
            }
            if replay.namespace.is_empty() {
                return Err(WebhookError::config(
                    "replay.namespace",
                    "must not be empty",
                ));
            }
            let window = replay.window.unwrap_or(config.tolerance_past);
            if window.is_zero() {
                return Err(WebhookError::config("replay.window", "must be positive"));
            }
            Some(Replay {
                store: Arc::new(MemoryReplayStore::new(replay.max_entries)),
                namespace: replay.namespace.clone(),
                tolerance_past: config.tolerance_past.as_secs(),
                window,
                policy: replay.on_store_error,
                timeout: replay.store_timeout,
                down: Arc::new(AtomicBool::new(false)),
            })
        } else {
            None
        };

        Ok(Self {
            shared: Arc::new(Shared {
                verifier,
                clock: Arc::new(SystemClock),
                body,
                replay,
                ok_key: OnceLock::new(),
            }),
        })
    }

    /// Remembers seen ids in `store` (Redis, to share them across gateways) instead of
    /// memory. Has no effect when replay protection is off.
    #[must_use]
    pub fn with_store(mut self, store: impl ReplayStore) -> Self {
        if let Some(replay) = &mut Arc::make_mut(&mut self.shared).replay {
            replay.store = Arc::new(store);
        }
        self
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        Arc::make_mut(&mut self.shared).clock = Arc::new(clock);
        self
    }

    /// The verifier the layer applies.
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }
}

impl<S> Layer<S> for VerifyWebhookLayer {
    type Service = VerifyWebhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook::new(inner, self.shared.clone())
    }
}

impl Shared {
    /// Counts one outcome in `rampart_webhook_verifications_total`.
    ///
    /// Building a key allocates its label list and hashes it, so the key of the hot path,
    /// `ok` on the route this layer serves, is built once and kept; the recorder still
    /// receives the same key and metadata as from `metrics::counter!`.
    /// Limitation: only the first route seen is kept; a layer shared by several routes
    /// builds the key per request for the others, as refusals always do.
    pub(crate) fn record(&self, route: &Arc<str>, outcome: Outcome) {
        if outcome == Outcome::Ok {
            let cached = self.ok_key.get_or_init(|| RouteKey {
                route: Arc::clone(route),
                key: self.key(route, outcome),
            });
            if Arc::ptr_eq(&cached.route, route) || cached.route == *route {
                metrics::with_recorder(|recorder| {
                    recorder
                        .register_counter(&cached.key, &METADATA)
                        .increment(1);
                });
                return;
            }
        }
        let key = self.key(route, outcome);
        metrics::with_recorder(|recorder| {
            recorder.register_counter(&key, &METADATA).increment(1);
        });
    }

    fn key(&self, route: &Arc<str>, outcome: Outcome) -> Key {
        let labels = vec![
            Label::new(LABEL_ROUTE, Arc::clone(route)),
            Label::new("scheme", self.verifier.scheme().as_str()),
            Label::new(LABEL_OUTCOME, outcome.as_str()),
        ];
        Key::from_parts(VERIFICATIONS, labels)
    }
}

impl Replay {
    /// Notes a store failure; returns whether it is news (the store was healthy before).
    pub(crate) fn mark_down(&self) -> bool {
        !self.down.swap(true, Ordering::Relaxed)
    }

    /// Notes a store success; returns whether the store just came back.
    pub(crate) fn mark_up(&self) -> bool {
        self.down.swap(false, Ordering::Relaxed)
    }
}

/// Signs outbound requests: buffers the body (413 past `max_body_bytes`, 408 past
/// `body_timeout`), adds the scheme's headers with the current time and a fresh id, and
/// passes the request on with the same bytes as a [`http_body_util::Full`] body.
///
/// It sheds nothing and pushes back only as the inner service does.
#[derive(Debug, Clone)]
pub struct SignWebhookLayer {
    pub(crate) signer: Arc<Signer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) body: BodyLimits,
}

impl SignWebhookLayer {
    /// Checks `config` and builds the layer.
    pub fn new(config: &SignConfig) -> Result<Self, WebhookError> {
        let signer = Signer::new(config)?;
        Ok(Self {
            signer: Arc::new(signer),
            clock: Arc::new(SystemClock),
            body: BodyLimits::new(config.max_body_bytes, config.body_timeout)?,
        })
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The signer the layer applies.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

impl<S> Layer<S> for SignWebhookLayer {
    type Service = SignWebhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignWebhook::new(inner, self.clone())
    }
}
