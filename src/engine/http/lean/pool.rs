//! Per-thread scratch buffers, borrowed only while a request is in flight.
//!
//! A user that thinks holds no buffer at all: the request bytes and the response
//! (head and body) live in a [`Scratch`] taken from this thread's pool when the
//! request starts and given back when its [`Response`] is dropped. Users are tasks on
//! current-thread runtimes, so a thread-local pool needs no lock. A scratch is boxed,
//! so taking and giving it back moves a pointer, not its three fields.

use std::cell::RefCell;
use std::ops::Range;

/// Capacity a fresh read buffer starts with.
const INITIAL_READ: usize = 8 * 1024;
/// Buffers that grew past this are shrunk before going back to the pool, so one huge
/// response does not pin its memory for the rest of the run.
const KEEP_CAPACITY: usize = 64 * 1024;
/// Idle scratches kept per thread; more in flight at once are simply freed afterwards.
const KEEP_IDLE: usize = 256;

thread_local! {
    #[allow(clippy::vec_box)] // the boxes move in and out; see the module's doc
    static POOL: RefCell<Vec<Box<Scratch>>> = const { RefCell::new(Vec::new()) };
}

/// The memory one in-flight request needs.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The request as written to the socket.
    pub(crate) out: Vec<u8>,
    /// The response: head first, then the (de-chunked) body.
    pub(crate) buf: Vec<u8>,
    /// Where the response's header lines sit in `buf` (HTTP/2's are written there
    /// as HTTP/1.1 writes them), scanned again when a header is asked for.
    pub(crate) fields: Range<usize>,
}

impl Scratch {
    fn clear(&mut self) {
        self.out.clear();
        self.buf.clear();
        self.fields = 0..0;
    }
}

/// A scratch borrowed from this thread's pool; it goes back on drop.
#[derive(Debug)]
pub(crate) struct Pooled(Option<Box<Scratch>>);

impl Pooled {
    /// Takes a scratch from the pool, or makes one.
    pub(crate) fn take() -> Pooled {
        let scratch = POOL
            .try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                Box::new(Scratch {
                    out: Vec::with_capacity(512),
                    buf: Vec::with_capacity(INITIAL_READ),
                    fields: 0..0,
                })
            });
        Pooled(Some(scratch))
    }

    pub(crate) fn get(&mut self) -> &mut Scratch {
        self.0.get_or_insert_with(Box::default)
    }

    pub(crate) fn get_ref(&self) -> Option<&Scratch> {
        self.0.as_deref()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(mut s) = self.0.take() else { return };
        s.clear();
        if s.buf.capacity() > KEEP_CAPACITY {
            s.buf.shrink_to(INITIAL_READ);
        }
        if s.out.capacity() > KEEP_CAPACITY {
            s.out.shrink_to(512);
        }
        // During thread teardown the pool may be gone; the scratch is then just freed.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < KEEP_IDLE {
                p.push(s);
            }
        });
    }
}

/// A complete HTTP response. Its memory belongs to the thread's pool and returns there
/// when the response is dropped, so keep it only as long as the checks need it.
#[derive(Debug)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) version: crate::metrics::stats::HttpVersionUsed,
    pub(crate) scratch: Pooled,
    /// Where the body starts in the scratch buffer (the head comes before).
    pub(crate) body_start: usize,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The HTTP version the response came in.
    pub fn version(&self) -> crate::metrics::stats::HttpVersionUsed {
        self.version
    }

    /// The response body, de-chunked.
    pub fn body(&self) -> &[u8] {
        match self.scratch.get_ref() {
            Some(s) => s.buf.get(self.body_start..).unwrap_or_default(),
            None => &[],
        }
    }

    /// Every header as (name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let s = self.scratch.get_ref();
        s.into_iter()
            .flat_map(|s| super::head::fields(s.buf.get(s.fields.clone()).unwrap_or_default()))
    }

    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratches_are_reused_and_cleared() {
        let mut a = Pooled::take();
        a.get().buf.extend_from_slice(b"hello");
        let ptr = a.get().buf.as_ptr();
        drop(a);
        let mut b = Pooled::take();
        assert!(b.get().buf.is_empty());
        assert_eq!(
            b.get().buf.as_ptr(),
            ptr,
            "the buffer came back from the pool"
        );
    }

    #[test]
    fn huge_buffers_are_shrunk_before_pooling() {
        let mut a = Pooled::take();
        a.get().buf.reserve(1024 * 1024);
        drop(a);
        let mut b = Pooled::take();
        assert!(b.get().buf.capacity() <= KEEP_CAPACITY);
    }
}
