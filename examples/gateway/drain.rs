//! Graceful shutdown of open connections.
//!
//! hyper-util's `GracefulShutdown` polls a `watch` receiver every time a connection is
//! polled, and each of those polls takes the channel's waiter lock: several times per request
//! on a keep-alive connection. Here a connection reads one atomic flag per poll and hands over
//! its waker only when it changes (for a tokio task, once), so the lock is taken when a
//! connection opens, closes, and once at shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::mpsc;

/// The shutdown signal and the connections that must hear it.
#[derive(Debug)]
pub(crate) struct Drain {
    shared: Arc<Shared>,
    /// Each watched connection holds a clone; `recv` returns `None` once all are dropped.
    open_tx: mpsc::Sender<()>,
    open_rx: mpsc::Receiver<()>,
}

#[derive(Debug, Default)]
struct Shared {
    closing: AtomicBool,
    next_key: AtomicU64,
    /// The waker of each open connection's task, by connection.
    wakers: Mutex<HashMap<u64, Waker>>,
}

impl Drain {
    pub(crate) fn new() -> Self {
        let (open_tx, open_rx) = mpsc::channel(1);
        Self {
            shared: Arc::default(),
            open_tx,
            open_rx,
        }
    }

    /// Wraps a connection so that [`Self::shutdown`] reaches it; `close` asks it to finish
    /// its in-flight request and close.
    pub(crate) fn watch<C>(&self, connection: C, close: fn(Pin<&mut C>)) -> Watched<C> {
        Watched {
            connection,
            close,
            shared: self.shared.clone(),
            key: self.shared.next_key.fetch_add(1, Ordering::Relaxed),
            registered: None,
            told: false,
            _open: self.open_tx.clone(),
        }
    }

    /// Tells every open connection to finish its in-flight request and close, then waits
    /// until all have closed.
    pub(crate) async fn shutdown(self) {
        let Self {
            shared,
            open_tx,
            mut open_rx,
        } = self;
        // Set before the wakers are taken: a connection registering after this sees the
        // flag when it checks again (see `Watched::poll`).
        shared.closing.store(true, Ordering::Release);
        for waker in lock(&shared.wakers).drain().map(|(_, waker)| waker) {
            waker.wake();
        }
        drop(open_tx);
        while open_rx.recv().await.is_some() {}
    }
}

pin_project_lite::pin_project! {
    /// A connection that closes gracefully when its [`Drain`] shuts down.
    pub(crate) struct Watched<C> {
        #[pin]
        connection: C,
        close: fn(Pin<&mut C>),
        shared: Arc<Shared>,
        key: u64,
        registered: Option<Waker>,
        told: bool,
        _open: mpsc::Sender<()>,
    }

    impl<C> PinnedDrop for Watched<C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.registered.is_some() {
                lock(&this.shared.wakers).remove(this.key);
            }
        }
    }
}

impl<C: Future> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.told {
            let mut closing = this.shared.closing.load(Ordering::Acquire);
            let known = this
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()));
            if !closing && !known {
                lock(&this.shared.wakers).insert(*this.key, cx.waker().clone());
                *this.registered = Some(cx.waker().clone());
                // Shutdown may have taken the wakers between the load and the insert.
                closing = this.shared.closing.load(Ordering::Acquire);
            }
            if closing {
                *this.told = true;
                (this.close)(this.connection.as_mut());
            }
        }
        this.connection.poll(cx)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A map of wakers stays usable whatever panicked while it was held.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
