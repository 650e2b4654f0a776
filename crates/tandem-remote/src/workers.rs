//! The agent's workers: the threads that receive, send and sum files, kept for the next
//! file once one is done, instead of a thread started for each (a first sync of 30,000
//! small files started 30,000 threads).
//!
//! A file is never queued behind another: every job starts at once, on an idle worker or on
//! a new one, as each had its own thread before. A worker receiving a file waits for its
//! data, which the client sends whatever the other files do; a job held back behind it
//! would have its data pile up in memory instead of on disk. How many workers there are
//! follows how many files the client keeps in flight; a worker idle for [`IDLE`] ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};

/// How long a worker waits for its next job before it ends.
pub(crate) const IDLE: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct Workers {
    jobs: Option<Sender<Job>>,
    queue: Receiver<Job>,
    /// Workers waiting for a job and not yet promised one: each job given to the queue
    /// takes one first, so that it is sure to be taken at once.
    idle: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
    idle_for: Duration,
}

impl Default for Workers {
    fn default() -> Self {
        Workers::new(IDLE)
    }
}

impl Workers {
    pub(crate) fn new(idle_for: Duration) -> Workers {
        let (jobs, queue) = unbounded();
        Workers {
            jobs: Some(jobs),
            queue,
            idle: Arc::default(),
            threads: Vec::new(),
            idle_for,
        }
    }

    /// Runs `job` at once: on an idle worker, or on a new one.
    pub(crate) fn run(&mut self, job: impl FnOnce() + Send + 'static) {
        let Some(jobs) = &self.jobs else { return };
        if take_one(&self.idle) {
            // Never fails: `queue` is kept here.
            let _ = jobs.send(Box::new(job));
            return;
        }
        self.threads.retain(|t| !t.is_finished());
        let (queue, idle, idle_for) = (self.queue.clone(), Arc::clone(&self.idle), self.idle_for);
        self.threads.push(std::thread::spawn(move || {
            job();
            work(&queue, &idle, idle_for);
        }));
    }

    /// How many workers there are now.
    #[cfg(test)]
    pub(crate) fn count(&mut self) -> usize {
        self.threads.retain(|t| !t.is_finished());
        self.threads.len()
    }

    /// Waits for every job given to end.
    pub(crate) fn finish(&mut self) {
        drop(self.jobs.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Takes an idle worker for a job, if there is one.
fn take_one(idle: &AtomicUsize) -> bool {
    idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// A worker's life after its first job: idle, a job, idle again; it ends when no job came
/// for `idle_for` and none is promised to it, or when the agent ends.
fn work(queue: &Receiver<Job>, idle: &AtomicUsize, idle_for: Duration) {
    loop {
        idle.fetch_add(1, Ordering::SeqCst);
        let job = loop {
            match queue.recv_timeout(idle_for) {
                Ok(job) => break job,
                // Ends only if it can take itself off the idle ones: else a job was
                // promised to an idle worker and is on its way.
                Err(crossbeam_channel::RecvTimeoutError::Timeout) if take_one(idle) => return,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    /// Jobs that wait for each other all run at once (none queued behind another), and a
    /// worker that finished is used again rather than a new thread started.
    #[test]
    fn issue_17_jobs_run_at_once_on_workers_used_again() {
        let mut w = Workers::new(Duration::from_secs(30));
        for _ in 0..3 {
            let all = Arc::new(Barrier::new(9));
            for _ in 0..8 {
                let all = Arc::clone(&all);
                w.run(move || {
                    all.wait();
                });
            }
            all.wait();
            // The workers are back to idle before the next round.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while w.idle.load(Ordering::SeqCst) < 8 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert_eq!(w.count(), 8, "24 jobs, 8 at a time");
        w.finish();
        assert_eq!(w.count(), 0);
    }

    /// An idle worker ends after its time; a job after that gets a new one.
    #[test]
    fn issue_17_an_idle_worker_ends() {
        let mut w = Workers::new(Duration::from_millis(50));
        let (tx, rx) = unbounded();
        let t = tx.clone();
        w.run(move || {
            let _ = t.send(1);
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while w.count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(w.count(), 0);
        w.run(move || {
            let _ = tx.send(2);
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(2));
    }
}
