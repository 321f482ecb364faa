//! The threads client sessions run on: one single-threaded event loop per thread (a tokio
//! current-thread runtime), each session pinned to one of them for its whole life.
//!
//! Why not the shared multi-thread runtime: a session is two sockets and a strict order
//! between them, so it gains nothing from work stealing, and pays for it on every message
//! (a task woken by the I/O driver of one worker is often run by another, with a futex
//! wake-up between them). On this 2-core machine the pinned loops cost about 7% less proxy
//! CPU per statement under `pgbench -S -c 8` (see `bench/pgbench.sh`).
//!
//! A new session goes to the loop with the fewest live sessions. Everything a session
//! spawns (timers, approval waits) runs on its own loop. `serve` stops the loops only after
//! the audit writer has drained, so statements already forwarded are still answered and
//! recorded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

struct Loop {
    handle: Handle,
    live: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The session threads; [`SessionThreads::stop`] ends them.
pub struct SessionThreads {
    loops: Vec<Loop>,
}

/// Decrements a loop's live-session count when the session's task ends (or is dropped).
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SessionThreads {
    /// Starts `n` (at least one) session threads.
    pub fn start(n: usize) -> std::io::Result<Self> {
        let mut loops = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("gatehouse-session-{i}"))
                .spawn(move || {
                    // Runs the sessions spawned on `handle` until told to stop; the runtime
                    // (and every session task still on it) is dropped on this thread, outside
                    // any async context.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            loops.push(Loop {
                handle,
                live: Arc::new(AtomicUsize::new(0)),
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(SessionThreads { loops })
    }

    /// Runs `session` on the loop with the fewest live sessions. The future is first polled
    /// on that loop's thread, so sockets it registers belong to that loop's I/O driver.
    pub fn spawn<Fut>(&self, session: Fut)
    where
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Some(l) = self
            .loops
            .iter()
            .min_by_key(|l| l.live.load(Ordering::Relaxed))
        else {
            return;
        };
        l.live.fetch_add(1, Ordering::Relaxed);
        let live = Live(l.live.clone());
        l.handle.spawn(async move {
            let _live = live;
            session.await;
        });
    }

    /// Ends every loop, dropping the sessions still on them, and waits for the threads.
    pub async fn stop(mut self) {
        let threads: Vec<_> = self
            .loops
            .iter_mut()
            .filter_map(|l| {
                if let Some(s) = l.stop.take() {
                    let _ = s.send(());
                }
                l.thread.take()
            })
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for SessionThreads {
    fn drop(&mut self) {
        for l in &mut self.loops {
            if let Some(s) = l.stop.take() {
                let _ = s.send(());
            }
        }
    }
}
