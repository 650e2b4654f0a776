//! A test-only FUSE file system for tandem's power-loss and injected-error campaigns
//! (issue 20). It is never shipped (`publish = false`) and knows nothing of tandem: a
//! plain passthrough over a backing directory, with two twists.
//!
//! - **Power loss**, as LazyFS models it: file data written through the mount is kept in
//!   this process's memory until the file is `fsync`ed (or `fdatasync`ed); reads are
//!   served from that memory, the backing file holds only what was synced. A file's size
//!   and modification time follow its data. [`TestFs::cut_power`] drops every unsynced
//!   byte and makes every later operation fail with EIO; [`TestFs::reboot`] remounts with
//!   only the synced data present.
//! - **Injected errors**: [`TestFs::set_fault`] makes the Nth read, write, fsync, rename
//!   or mkdir (counted from the mount, or from [`TestFs::reset_counts`]) fail with an
//!   errno of the test's choosing, once or from then on.
//!
//! - **Namespace operations are volatile too**, as on a real disk (ext4, `data=ordered`)
//!   read strictly: a create, mkdir, link, symlink, unlink, rmdir or rename is durable
//!   only once the folder it changed is fsynced (a rename between two folders: both), or
//!   once [`TestFs::sync_all`] runs (a disk's writeback, or `sync(2)`). A power cut
//!   undoes every namespace operation not yet durable, newest first: a file created and
//!   fsynced in a folder that was not is gone; a name removed, or renamed over, comes back
//!   with its durable content; a rename goes back. fsync of a file makes its data durable,
//!   never its name (unless that name was durable already). A folder created and not made
//!   durable goes with everything in it, as `fsck` would leave it in `lost+found`. (Real
//!   ext4 is kinder: one fsync commits its whole journal. Tandem must not count on that.)
//!   Removed names wait in an attic folder next to the backing one (`.NAME.testfs-attic`)
//!   until their removal is durable; it goes with the mount.
//!
//! What it does not model, so that a test reads its results honestly:
//! - Metadata (mode, owner, times set explicitly) reaches the backing directory at once,
//!   durable without an fsync.
//! - An undo that no longer applies (its name taken or moved since by an operation that
//!   is durable) is skipped rather than forced ([`TestFs::undo_skipped`] counts them):
//!   the cut never replaces a name.
//! - `syncfs(2)` (and `sync(2)`) never reach a FUSE daemon: Linux sends `FUSE_SYNCFS`
//!   only to virtiofs. On this file system, as on every FUSE file system mounted through
//!   `/dev/fuse` (sshfs, ntfs-3g, rclone), `syncfs` makes nothing durable; only `fsync`
//!   and `fdatasync` of each file do.

// A FUSE file system mounted with Linux calls; the tests that use it run on Linux.
#![cfg(target_os = "linux")]

mod fs;
mod namespace;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use fs::{Fault, Op, OpCounts};

use fs::{Core, Shared};

/// A mounted test file system. Dropping it unmounts (without syncing anything).
pub struct TestFs {
    backing: PathBuf,
    mountpoint: PathBuf,
    shared: Arc<Shared>,
    session: Option<fuser::BackgroundSession>,
}

impl TestFs {
    /// Mounts `backing` (an existing directory) at `mountpoint` (an existing, empty one).
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<TestFs> {
        let backing = backing.canonicalize()?;
        let (Some(dir), Some(name)) = (backing.parent(), backing.file_name()) else {
            return Err(io::Error::other("the backing folder cannot be the root"));
        };
        let mut hidden = std::ffi::OsString::from(".");
        hidden.push(name);
        hidden.push(".testfs-attic");
        let attic = dir.join(hidden);
        let mut fs = TestFs {
            backing,
            mountpoint: mountpoint.to_path_buf(),
            shared: Arc::new(Shared::new(attic)),
            session: None,
        };
        fs.start()?;
        Ok(fs)
    }

    fn start(&mut self) -> io::Result<()> {
        let core = Core::new(&self.backing, Arc::clone(&self.shared))?;
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("tandem-testfs".into()),
            fuser::MountOption::Subtype("tandem-testfs".into()),
            fuser::MountOption::DefaultPermissions,
        ];
        let session = fuser::Session::new(core, &self.mountpoint, &config)?;
        self.session = Some(session.spawn()?);
        Ok(())
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// The power goes: every write not yet fsynced is gone, and every operation fails
    /// with EIO until [`TestFs::reboot`]. An fsync under way either completed before the
    /// cut or never happens.
    pub fn cut_power(&self) {
        self.shared.cut_power();
    }

    /// Comes back up after a power cut (cutting it first if that was not done): unmounts
    /// and mounts again, with only what was synced. Counters and the fault are kept.
    pub fn reboot(&mut self) -> io::Result<()> {
        self.cut_power();
        self.stop()?;
        self.shared.power_on();
        self.start()
    }

    /// From now on, the `fault.nth` operation of kind `fault.op` fails (and every later
    /// one, when `fault.sticky`). `None` lifts the fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.set_fault(fault);
    }

    /// How many operations of each kind were asked for since the mount or the last reset.
    pub fn counts(&self) -> OpCounts {
        self.shared.counts()
    }

    pub fn reset_counts(&self) {
        self.shared.reset_counts();
    }

    /// Makes everything written so far durable, as the kernel's periodic writeback of
    /// a real disk would (a test's own setup, before the run under test).
    pub fn sync_all(&self) -> io::Result<()> {
        self.shared.sync_all(&self.backing)
    }

    /// How many namespace operations a power cut could not take back, since the mount
    /// (their names were taken or moved since by durable operations).
    pub fn undo_skipped(&self) -> u64 {
        self.shared.undo_skipped()
    }

    /// How many namespace operations a power cut would undo now.
    pub fn unsynced_names(&self) -> usize {
        self.shared.unsynced_names()
    }

    /// How many files hold data that a power cut would lose.
    pub fn unsynced_files(&self) -> usize {
        self.shared.unsynced_files()
    }

    fn stop(&mut self) -> io::Result<()> {
        match self.session.take().map(|s| s.umount_and_join()) {
            // The kernel may abort the connection as the mount goes (a request of a killed
            // process in flight): the session ends with ECONNABORTED, unmounted all the same.
            Some(Err(e)) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
            Some(r) => r,
            None => Ok(()),
        }
    }

    /// Unmounts, reporting a failure (a busy mount point) instead of ignoring it.
    pub fn unmount(mut self) -> io::Result<()> {
        self.stop()?;
        self.shared.remove_attic();
        Ok(())
    }
}

impl Drop for TestFs {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if s.umount_and_join().is_err() {
                // Busy: detach it, so that the test's temporary folder can go.
                let _ =
                    rustix::mount::unmount(&self.mountpoint, rustix::mount::UnmountFlags::DETACH);
            }
        }
        self.shared.remove_attic();
    }
}
