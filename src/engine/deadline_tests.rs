use std::cell::Cell;
use std::future::pending;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::LocalSet;

use super::*;

/// Runs `f` on a current-thread runtime and `LocalSet`, as an engine thread does,
/// with this thread's sweeper running when `sweeping`.
fn on_thread<F: Future<Output = ()>>(sweeping: bool, f: impl FnOnce() -> F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let sweeping = sweeping.then(|| tokio::task::spawn_local(sweeper()));
        tokio::time::timeout(Duration::from_secs(60), f())
            .await
            .expect("the test ends within a minute");
        if let Some(task) = sweeping {
            task.abort();
        }
    });
}

fn listed() -> usize {
    LIST.with_borrow(|list| list.entries.len())
}

/// A request that never answers, and a flag set when it is dropped (its connection
/// closed).
fn stalled(dropped: &Rc<Cell<bool>>) -> Pin<Box<impl Future<Output = ()>>> {
    struct OnDrop(Rc<Cell<bool>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let guard = OnDrop(Rc::clone(dropped));
    Box::pin(async move {
        let _guard = guard;
        pending::<()>().await;
    })
}

#[test]
fn a_stalled_request_times_out_at_its_deadline_and_is_dropped() {
    for sweeping in [true, false] {
        on_thread(sweeping, || async move {
            let dropped = Rc::new(Cell::new(false));
            let start = Instant::now();
            let deadline = start + Duration::from_millis(100);
            let mut timeout = timeout_at(Some(deadline), stalled(&dropped));
            assert_eq!((&mut timeout).await, Err(Elapsed), "sweeping: {sweeping}");
            assert!(Instant::now() >= deadline, "not before its deadline");
            assert!(
                matches!(
                    (&timeout.timer, sweeping),
                    (Timer::Listed(_), true) | (Timer::Tokio(_), false)
                ),
                "in the thread's list exactly when a sweeper runs"
            );
            drop(timeout);
            assert!(dropped.get(), "the request is dropped with its timeout");
            assert_eq!(listed(), 0, "and leaves the list");
        });
    }
}

#[test]
fn a_request_that_ends_in_time_leaves_the_list_and_the_sweeper_asleep() {
    on_thread(true, || async {
        let (tx, rx) = oneshot::channel();
        let far = Instant::now() + Duration::from_secs(30);
        let mut request = Box::pin(timeout_at(Some(far), rx));
        // Waiting: its deadline is listed, and the sweeper armed for it.
        assert!(futures_poll(request.as_mut()).is_pending());
        assert_eq!(listed(), 1);
        tokio::task::yield_now().await;
        assert_eq!(LIST.with_borrow(|list| list.armed), Some(far));
        tx.send(7).unwrap();
        assert_eq!(request.await, Ok(Ok(7)));
        assert_eq!(listed(), 0);
        // Unbounded: never listed.
        let (tx, rx) = oneshot::channel();
        let mut request = Box::pin(timeout_at(None, rx));
        assert!(futures_poll(request.as_mut()).is_pending());
        assert_eq!(listed(), 0);
        tx.send(8).unwrap();
        assert_eq!(request.await, Ok(Ok(8)));
    });
}

#[test]
fn an_earlier_deadline_rearms_the_sweeper_and_only_the_overdue_request_fails() {
    on_thread(true, || async {
        let start = Instant::now();
        let long = Rc::new(Cell::new(false));
        let short = Rc::new(Cell::new(false));
        let mut slow = Box::pin(timeout_at(
            Some(start + Duration::from_secs(30)),
            stalled(&long),
        ));
        assert!(futures_poll(slow.as_mut()).is_pending());
        tokio::task::yield_now().await;
        // A shorter timeout, listed after the sweeper armed for the longer one.
        let deadline = start + Duration::from_millis(100);
        let quick = timeout_at(Some(deadline), stalled(&short));
        assert_eq!(quick.await, Err(Elapsed));
        assert!(Instant::now() >= deadline);
        assert!(short.get());
        assert!(futures_poll(slow.as_mut()).is_pending(), "not yet overdue");
        assert!(!long.get());
        assert_eq!(listed(), 1);
        drop(slow);
        assert_eq!(listed(), 0);
    });
}

#[test]
fn a_response_ready_at_the_deadline_still_counts() {
    on_thread(true, || async {
        let deadline = Instant::now() + Duration::from_millis(50);
        let (tx, rx) = oneshot::channel();
        let mut request = Box::pin(timeout_at(Some(deadline), rx));
        assert!(futures_poll(request.as_mut()).is_pending());
        // Past the deadline, and swept (the request is marked overdue)...
        tokio::time::sleep_until((deadline + Duration::from_millis(20)).into()).await;
        let Timer::Listed(key) = request.timer else {
            panic!("listed");
        };
        for _ in 0..100 {
            if LIST.with_borrow(|list| list.entries[key].overdue) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(LIST.with_borrow(|list| list.entries[key].overdue));
        // ...yet the response arrived first: the request is polled before its timer.
        tx.send(1).unwrap();
        assert_eq!(request.await, Ok(Ok(1)));
    });
}

#[test]
fn a_second_sweeper_on_a_thread_does_nothing_and_the_first_one_leaves_when_dropped() {
    on_thread(true, || async {
        assert!(LIST.with_borrow(|list| list.running));
        tokio::time::timeout(Duration::from_secs(5), sweeper())
            .await
            .expect("a second sweeper returns at once");
        assert!(LIST.with_borrow(|list| list.running));
    });
    // The first was dropped with its runtime: requests here use tokio timers.
    assert!(!LIST.with_borrow(|list| list.running));
    on_thread(false, || async {
        let dropped = Rc::new(Cell::new(false));
        let mut request = Box::pin(timeout_at(
            Some(Instant::now() + Duration::from_secs(30)),
            stalled(&dropped),
        ));
        assert!(futures_poll(request.as_mut()).is_pending());
        assert!(matches!(request.timer, Timer::Tokio(_)));
    });
}

/// Polls a future once, with a waker that does nothing (later polls bring the
/// task's own).
fn futures_poll<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::noop();
    f.poll(&mut Context::from_waker(waker))
}
