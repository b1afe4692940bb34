//! The bridge's periodic work (attestation, pruning) through one helper: a task that runs a
//! step every period until shutdown, logs how each step ended, and never overlaps itself.
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// When a periodic task first runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstRun {
    /// At start, then every period.
    AtStart,
    /// One period after start.
    AfterOnePeriod,
}

/// Runs `step` every `period` until `shutdown` changes. A step that takes longer than the
/// period delays the next one (steps never overlap); a step that fails is logged with
/// `name` and the next runs on time: one failed pass never stops the task.
pub async fn run<F, Fut>(
    name: &'static str,
    period: Duration,
    first: FirstRun,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut ticker = tokio::time::interval(period);
    if first == FirstRun::AfterOnePeriod {
        // An interval's first tick is immediate.
        ticker.tick().await;
    }
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = step().await {
            tracing::error!(
                task = name,
                error = format!("{e:#}"),
                "periodic task failed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// Starts a task whose first step fails, counting its steps.
    fn start(
        period: Duration,
        first: FirstRun,
    ) -> (
        Arc<AtomicU32>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ) {
        let runs = Arc::new(AtomicU32::new(0));
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn({
            let runs = runs.clone();
            run("test", period, first, shutdown, move || {
                let runs = runs.clone();
                async move {
                    let n = runs.fetch_add(1, Ordering::SeqCst);
                    anyhow::ensure!(n != 0, "the first step fails");
                    Ok(())
                }
            })
        });
        (runs, stop, task)
    }

    #[tokio::test]
    async fn runs_every_period_and_survives_a_failed_step_until_shutdown() {
        let (runs, stop, task) = start(Duration::from_millis(20), FirstRun::AtStart);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 3 {
            assert!(tokio::time::Instant::now() < deadline, "the task stopped");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
        task.await.unwrap();
        let stopped_at = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            stopped_at,
            "no step after shutdown"
        );
    }

    #[tokio::test]
    async fn runs_at_start_or_one_period_later() {
        let period = Duration::from_secs(3600);
        let (at_start, stop_a, a) = start(period, FirstRun::AtStart);
        let (later, stop_b, b) = start(period, FirstRun::AfterOnePeriod);
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop_a.send(true).unwrap();
        stop_b.send(true).unwrap();
        a.await.unwrap();
        b.await.unwrap();
        assert_eq!(at_start.load(Ordering::SeqCst), 1);
        assert_eq!(later.load(Ordering::SeqCst), 0);
    }
}
