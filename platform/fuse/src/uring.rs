//! FUSE over io_uring (Linux 6.14+, `fuse.enable_uring=Y`): requests arrive in ring
//! entries the daemon registered on per-CPU queues, and each reply goes back in the
//! entry that brought the request, with the same submission fetching the next one
//! (`FUSE_IO_URING_CMD_COMMIT_AND_FETCH`): no read(2) and writev(2) of /dev/fuse per
//! request, and a request is served by the thread of the CPU that made it.
//!
//! Only the transport is here: each request is handed, as /dev/fuse would have given it,
//! to fuser's dispatcher (`fuser::RawDispatcher`, our vendored extension), which calls
//! the same `FuseFs` handlers. FORGET, INTERRUPT, and every request made before the ring
//! is complete still come through /dev/fuse, served by fuser's threads as before.
//!
//! Kernel ABI (include/uapi/linux/fuse.h, protocol 7.42): each entry is two buffers, a
//! `fuse_uring_req_header` (the `fuse_in_header`/`fuse_out_header`, the operation's own
//! header, and the entry's commit id and payload size) and a payload buffer at least as
//! big as the largest request (`max_write`, `max_pages`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use fuser::{PageBuf, RawDispatcher};
use io_uring::{cqueue, opcode, squeue, types, IoUring};

/// `FUSE_OVER_IO_URING` in the INIT flags (bit 9 of `flags2`).
pub(crate) const FUSE_OVER_IO_URING: u64 = 1 << 41;
const CMD_REGISTER: u32 = 1;
const CMD_COMMIT_AND_FETCH: u32 = 2;
const IN_HEADER: usize = 40;
const OUT_HEADER: usize = 16;
/// The header areas of an entry (`FUSE_URING_IN_OUT_HEADER_SZ`, `FUSE_URING_OP_IN_OUT_SZ`).
const HEADER_AREA: usize = 128;
/// Entries registered on each queue: requests one CPU may have waiting at once.
const ENTRIES_PER_QUEUE: usize = 4;

/// `struct fuse_uring_ent_in_out`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct EntInOut {
    flags: u64,
    commit_id: u64,
    payload_sz: u32,
    padding: u32,
    reserved: u64,
}

/// `struct fuse_uring_req_header`.
#[repr(C)]
struct ReqHeader {
    in_out: [u8; HEADER_AREA],
    op_in: [u8; HEADER_AREA],
    ent: EntInOut,
}

/// One registered entry: the buffers the kernel fills and reads, at stable addresses
/// for as long as the ring lives.
struct Entry {
    qid: u16,
    header: Box<ReqHeader>,
    /// Mapped, not a Vec: only the pages a request or reply has used take memory
    /// (`PageBuf`), where a zeroed Vec could make all 16 MiB of each entry resident.
    payload: PageBuf,
    iov: Box<[libc::iovec; 2]>,
}

// The iovecs point into the entry's own box and mapping, which do not move.
unsafe impl Send for Entry {}

impl Entry {
    fn new(qid: u16, payload_cap: usize) -> io::Result<Entry> {
        let mut header = Box::new(ReqHeader {
            in_out: [0; HEADER_AREA],
            op_in: [0; HEADER_AREA],
            ent: EntInOut::default(),
        });
        let mut payload = PageBuf::new(payload_cap)?;
        let iov = Box::new([
            libc::iovec {
                iov_base: std::ptr::from_mut(&mut *header).cast(),
                iov_len: std::mem::size_of::<ReqHeader>(),
            },
            libc::iovec {
                iov_base: payload.as_mut_ptr().cast(),
                iov_len: payload_cap,
            },
        ]);
        Ok(Entry {
            qid,
            header,
            payload,
            iov,
        })
    }

    /// The REGISTER or COMMIT_AND_FETCH command for this entry (an SQE128: the
    /// `fuse_uring_cmd_req` in its command area, the iovecs in `addr` and `len`).
    fn command(&self, fd: i32, op: u32, commit_id: u64, user_data: u64) -> squeue::Entry128 {
        let mut cmd = [0u8; 80];
        cmd[8..16].copy_from_slice(&commit_id.to_ne_bytes());
        cmd[16..18].copy_from_slice(&self.qid.to_ne_bytes());
        let sqe = opcode::UringCmd80::new(types::Fd(fd), op)
            .cmd(cmd)
            .addr(Some(self.iov.as_ptr() as u64))
            .build()
            .user_data(user_data);
        // `len` (the number of iovecs, at byte 24 of the SQE) has no setter.
        // SAFETY: Entry128 is `repr(C)`, 128 bytes: an io_uring_sqe and its extra 64.
        let mut bytes: [u8; 128] = unsafe { std::mem::transmute(sqe) };
        bytes[24..28].copy_from_slice(&2u32.to_ne_bytes());
        unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(bytes) }
    }

    /// The request as /dev/fuse would have given it: the in header, the operation's own
    /// header, the rest of its arguments. None when the sizes do not add up.
    fn request(&self, out: &mut Vec<u8>) -> Option<()> {
        let h = &self.header;
        let len = u32::from_ne_bytes(h.in_out[0..4].try_into().ok()?) as usize;
        let payload = h.ent.payload_sz as usize;
        let op = len.checked_sub(IN_HEADER + payload)?;
        if op > HEADER_AREA || payload > self.payload.len() {
            return None;
        }
        out.clear();
        out.extend_from_slice(&h.in_out[..IN_HEADER]);
        out.extend_from_slice(&h.op_in[..op]);
        out.extend_from_slice(&self.payload[..payload]);
        Some(())
    }

    /// Puts `reply` (out header and data) in the entry, or an EIO error when there is
    /// none or it does not fit.
    fn set_reply(&mut self, reply: Option<&[u8]>) {
        let fits =
            reply.filter(|r| r.len() >= OUT_HEADER && r.len() - OUT_HEADER <= self.payload.len());
        if let Some(r) = fits {
            self.header.in_out[..OUT_HEADER].copy_from_slice(&r[..OUT_HEADER]);
            let body = &r[OUT_HEADER..];
            self.payload[..body.len()].copy_from_slice(body);
            self.header.ent.payload_sz = u32::try_from(body.len()).unwrap_or(0);
            return;
        }
        let unique: [u8; 8] = self.header.in_out[8..16].try_into().unwrap_or([0; 8]);
        let h = &mut self.header.in_out;
        h[0..4].copy_from_slice(&(OUT_HEADER as u32).to_ne_bytes());
        h[4..8].copy_from_slice(&(-libc::EIO).to_ne_bytes());
        h[8..16].copy_from_slice(&unique);
        self.header.ent.payload_sz = 0;
    }
}

/// The ring's serving threads, one per kernel queue (one queue per possible CPU).
pub(crate) struct Rings {
    threads: Vec<JoinHandle<()>>,
    /// Requests served through the rings (diagnostics).
    served: Arc<AtomicU64>,
}

impl Rings {
    /// Registers `ENTRIES_PER_QUEUE` entries on every queue, each queue served by a thread
    /// pinned to its CPU. Returns once every queue is registered, or the first error (the
    /// mount then goes on through /dev/fuse alone).
    pub(crate) fn start(
        dev: OwnedFd,
        dispatcher: RawDispatcher,
        payload_cap: usize,
    ) -> io::Result<Rings> {
        let queues = possible_cpus()?;
        let dev = Arc::new(dev);
        let served = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready) = mpsc::channel();
        let mut threads = Vec::new();
        for qid in 0..queues {
            let (dev, dispatcher, ready_tx) = (dev.clone(), dispatcher.clone(), ready_tx.clone());
            let served = Arc::clone(&served);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("tandem-uring-{qid}"))
                    .spawn(move || {
                        let q = u16::try_from(qid).unwrap_or(u16::MAX);
                        let queue = Queue {
                            dispatcher: &dispatcher,
                            served: &served,
                        };
                        serve(&dev, q, &queue, payload_cap, &ready_tx);
                    })?,
            );
        }
        drop(ready_tx);
        for _ in 0..queues {
            ready
                .recv()
                .map_err(|_| io::Error::other("a ring thread ended before registering"))??;
        }
        Ok(Rings { threads, served })
    }

    pub(crate) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// The serving threads end by themselves when the connection goes (their commands
    /// complete with an error): not waited for (a mount detached lazily lives on).
    pub(crate) fn detach(self) {
        drop(self.threads);
    }

    /// Waits for the serving threads, once the connection is gone (unmounted).
    pub(crate) fn join(self) {
        for thread in self.threads {
            if thread.join().is_err() {
                tracing::error!("an io_uring queue thread panicked");
            }
        }
    }
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`, "0-N" or a list):
/// the kernel makes one queue for each.
fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let mut n = 0;
    for part in text.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| s.trim().parse::<usize>().map_err(io::Error::other);
        n += parse(b)? - parse(a)? + 1;
    }
    Ok(n)
}

fn pin_to(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        tracing::debug!(cpu, error = %e, "io_uring queue thread not pinned");
    }
}

/// What a queue's thread serves with.
struct Queue<'a> {
    dispatcher: &'a RawDispatcher,
    served: &'a AtomicU64,
}

/// One queue's thread: registers its entries, says so on `ready`, then serves until
/// the connection ends.
fn serve(
    dev: &OwnedFd,
    qid: u16,
    queue: &Queue<'_>,
    payload_cap: usize,
    ready: &mpsc::Sender<io::Result<()>>,
) {
    pin_to(usize::from(qid));
    let fd = dev.as_raw_fd();
    let mut entries: Vec<Entry> = match (0..ENTRIES_PER_QUEUE)
        .map(|_| Entry::new(qid, payload_cap))
        .collect()
    {
        Ok(entries) => entries,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
        .build(u32::try_from(2 * ENTRIES_PER_QUEUE).unwrap_or(16))
        .and_then(|mut ring| {
            for (i, e) in entries.iter().enumerate() {
                push(&mut ring, &e.command(fd, CMD_REGISTER, 0, i as u64))?;
            }
            ring.submit()?;
            Ok(ring)
        });
    let mut ring = match ring {
        Ok(ring) => ring,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    if let Err(e) = serve_loop(&mut ring, &mut entries, fd, queue) {
        tracing::debug!(qid, error = %e, "io_uring queue stopped");
    }
}

fn push(
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    sqe: &squeue::Entry128,
) -> io::Result<()> {
    // SAFETY: every buffer the command names lives in `entries`, which outlive the ring.
    unsafe { ring.submission().push(sqe) }.map_err(|_| io::Error::other("submission queue full"))
}

fn serve_loop(
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    entries: &mut [Entry],
    fd: i32,
    queue: &Queue<'_>,
) -> io::Result<()> {
    let (mut request, mut reply) = (Vec::new(), Vec::new());
    loop {
        ring.submit_and_wait(1)?;
        let done: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (i, res) in done {
            if res < 0 {
                // The connection is gone (unmount), or the kernel refused the entry.
                return Err(io::Error::from_raw_os_error(-res));
            }
            let Some(e) = usize::try_from(i).ok().and_then(|i| entries.get_mut(i)) else {
                continue;
            };
            let served = e.request(&mut request).and_then(|()| {
                queue
                    .dispatcher
                    .dispatch(&request, std::mem::take(&mut reply))
            });
            queue.served.fetch_add(1, Ordering::Relaxed);
            e.set_reply(served.as_deref());
            reply = served.unwrap_or_default();
            let commit = e.command(fd, CMD_COMMIT_AND_FETCH, e.header.ent.commit_id, i);
            if push(ring, &commit).is_err() {
                ring.submit()?;
                push(ring, &commit)?;
            }
        }
    }
}
