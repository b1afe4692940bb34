//! What one component of a process costs, measured inside the process: the CPU time its
//! future spends being polled (the thread's own CPU clock around each poll) and the heap it
//! holds (allocations made while it is polled, less those freed while it is polled), for
//! the campus day, which runs the meters, the bridge and the keeper in one process.
//!
//! The heap figure needs [`CountingAllocator`] as the binary's global allocator; without it
//! it reads zero. Both figures leave out work the component hands to tasks of its own (the
//! keeper's HTTP connection driver) and the chain's execution of what it sends.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

thread_local! {
    static METERED: Cell<bool> = const { Cell::new(false) };
}

static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

/// The system allocator, counting the bytes a [`Metered`] future allocates and frees.
pub struct CountingAllocator;

fn metered() -> bool {
    // During thread teardown the flag may be gone: not metered.
    METERED.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && metered() {
            let live =
                LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed) + layout.size() as i64;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if metered() {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && metered() {
            let delta = new_size as i64 - layout.size() as i64;
            let live = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes metered futures hold now and at most so far (zero without [`CountingAllocator`]).
pub fn heap() -> (i64, i64) {
    (LIVE.load(Ordering::Relaxed), PEAK.load(Ordering::Relaxed))
}

/// CPU time the calling thread has used.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `inner`, adding the CPU time spent polling it to `spent`, and counting its heap.
pub struct Metered<'a, F> {
    inner: Pin<Box<F>>,
    spent: &'a mut Duration,
}

impl<'a, F: Future> Metered<'a, F> {
    pub fn new(inner: F, spent: &'a mut Duration) -> Self {
        Self {
            inner: Box::pin(inner),
            spent,
        }
    }
}

impl<F: Future> Future for Metered<'_, F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = thread_cpu();
        METERED.with(|m| m.set(true));
        let out = self.inner.as_mut().poll(cx);
        METERED.with(|m| m.set(false));
        let used = thread_cpu().saturating_sub(started);
        *self.spent += used;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_future_is_charged_its_cpu_and_an_idle_one_nothing() {
        let mut busy = Duration::ZERO;
        let work = async {
            let mut x = 0u64;
            for i in 0..30_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x)
        };
        futures_lite_block_on(Metered::new(work, &mut busy));
        assert!(busy > Duration::from_millis(1), "{busy:?}");
        let mut idle = Duration::ZERO;
        futures_lite_block_on(Metered::new(
            async { std::thread::sleep(Duration::from_millis(50)) },
            &mut idle,
        ));
        assert!(idle < Duration::from_millis(20), "{idle:?}");
    }

    fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
