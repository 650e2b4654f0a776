//! tandem's extension: requests received other than by reading /dev/fuse (FUSE over
//! io_uring, where each request arrives in a ring entry and its reply goes back in the
//! same entry), dispatched to the session's filesystem, their replies captured.

use std::cell::RefCell;
use std::io::IoSlice;
use std::sync::Arc;

thread_local! {
    /// Set while `RawDispatcher::dispatch` runs on this thread: replies sent then are kept
    /// here instead of being written to /dev/fuse.
    static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Keeps `bufs` when this thread is dispatching a raw request; false otherwise.
pub(crate) fn capture(bufs: &[IoSlice<'_>]) -> bool {
    CAPTURE.with(|c| match c.borrow_mut().as_mut() {
        Some(out) => {
            for b in bufs {
                out.extend_from_slice(b);
            }
            true
        }
        None => false,
    })
}

/// Dispatches raw requests (a `fuse_in_header` and its arguments, as read from
/// /dev/fuse) to the session's filesystem. Cheap to clone; does nothing once the
/// session has ended.
#[derive(Clone)]
pub struct RawDispatcher(Arc<dyn Fn(&[u8]) -> bool + Send + Sync>);

impl std::fmt::Debug for RawDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawDispatcher")
    }
}

impl RawDispatcher {
    pub(crate) fn new(f: impl Fn(&[u8]) -> bool + Send + Sync + 'static) -> Self {
        RawDispatcher(Arc::new(f))
    }

    /// Serves `request` and returns the reply (a `fuse_out_header` and its data) when the
    /// filesystem replied before returning; None when it did not (or the request could
    /// not be parsed, or the session has ended). `reply` is reused as the buffer.
    pub fn dispatch(&self, request: &[u8], mut reply: Vec<u8>) -> Option<Vec<u8>> {
        reply.clear();
        CAPTURE.with(|c| *c.borrow_mut() = Some(reply));
        let served = (self.0)(request);
        let out = CAPTURE.with(|c| c.borrow_mut().take());
        out.filter(|r| served && !r.is_empty())
    }
}
