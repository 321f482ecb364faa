//! The threads client sessions run on: one single-threaded event loop per thread (a tokio
//! current-thread runtime), each session pinned to one of them for its whole life.
//!
//! Why not the shared multi-thread runtime: a session is two sockets and a strict order
//! between them, so it gains nothing from work stealing, and pays for it on every message
//! (a task woken by the I/O driver of one worker is often run by another, with a futex
//! wake-up between them). On this 2-core machine one pinned loop cost about 15% less proxy
//! CPU per statement than the shared runtime under `pgbench -S -c 8` (two loops were no
//! better than the shared runtime there: one loop gathers more readiness per wake-up).
//!
//! A new session goes to the loop with the fewest live sessions. Everything a session
//! spawns (timers, approval waits) runs on its own loop. `serve` stops the loops only after
//! the audit writer has drained, so statements already forwarded are still answered and
//! recorded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Starts a session on the loop's own thread.
type Job = Box<dyn FnOnce() + Send>;

struct Loop {
    jobs: mpsc::UnboundedSender<Job>,
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
            let (jobs, mut queued) = mpsc::unbounded_channel::<Job>();
            let (stop, mut stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("gatehouse-session-{i}"))
                .spawn(move || {
                    // Starts the sessions handed to it and runs them until told to stop;
                    // the runtime (and every session task still on it) is dropped on this
                    // thread, outside any async context.
                    runtime.block_on(async {
                        loop {
                            tokio::select! {
                                job = queued.recv() => match job {
                                    Some(job) => job(),
                                    None => break,
                                },
                                _ = &mut stopped => break,
                            }
                        }
                    });
                })?;
            loops.push(Loop {
                jobs,
                live: Arc::new(AtomicUsize::new(0)),
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(SessionThreads { loops })
    }

    /// Runs the session `make` returns on the loop with the fewest live sessions. `make` is
    /// called on that loop's thread, so the session's memory comes from that thread's
    /// allocator arena (allocated on the accepting thread, idle sessions used ~12 KB more
    /// each) and the sockets it registers belong to that loop's I/O driver.
    pub fn spawn<F, Fut>(&self, make: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
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
        let job: Job = Box::new(move || {
            // The future is made inside the task: an async block awaiting a future it
            // captured would keep two copies of it.
            tokio::spawn(async move {
                let _live = live;
                make().await;
            });
        });
        // A loop that has stopped drops the job, and with it the connection.
        let _ = l.jobs.send(job);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Sessions spread over the loops by live count, run on the loops' own threads (with
    /// timers), and stopping ends the threads.
    #[tokio::test]
    async fn sessions_go_to_the_least_loaded_loop_and_stop_ends_them() {
        let threads = SessionThreads::start(2).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (release, released) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let tx = tx.clone();
            let mut released = released.clone();
            threads.spawn(move || async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send(name);
                let _ = released.wait_for(|r| *r).await;
            });
        }
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(rx.recv().await.flatten().unwrap());
        }
        names.sort();
        assert_eq!(
            names,
            [
                "gatehouse-session-0",
                "gatehouse-session-0",
                "gatehouse-session-1",
                "gatehouse-session-1"
            ]
        );
        let live: Vec<usize> = threads
            .loops
            .iter()
            .map(|l| l.live.load(Ordering::Relaxed))
            .collect();
        assert_eq!(live, [2, 2]);
        release.send(true).unwrap();
        // Ended sessions no longer count.
        for _ in 0..100 {
            if threads
                .loops
                .iter()
                .all(|l| l.live.load(Ordering::Relaxed) == 0)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(threads
            .loops
            .iter()
            .all(|l| l.live.load(Ordering::Relaxed) == 0));
        tokio::time::timeout(Duration::from_secs(5), threads.stop())
            .await
            .expect("the session threads stop");
    }
}
