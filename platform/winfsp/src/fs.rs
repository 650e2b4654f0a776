//! `PassthroughFs`: WinFsp's requests served from the source's handle, each mutating one
//! reported to the sink right after it succeeded, with the records the FUSE backend sends
//! (`names` says which). A request handler never panics (WinFsp would fail the request
//! with `STATUS_NONCONTINUABLE_EXCEPTION`): every failure is an `FspError`.

use std::collections::HashMap;
use std::ffi::c_void;
use std::os::windows::io::OwnedHandle;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tandem_core::change::{Change, ChangeOp, ChangeSink, Version};
use tandem_core::path::RelPath;
use windows_sys::Wdk::Storage::FileSystem::{
    FILE_CREATE, FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE, FILE_OPEN, FILE_WRITE_THROUGH,
};
use windows_sys::Win32::Storage::FileSystem::{FILE_ATTRIBUTE_DIRECTORY, FILE_READ_ATTRIBUTES};
use winfsp::filesystem::{
    DirBuffer, DirInfo, DirMarker, FileInfo, FileSecurity, FileSystemContext,
    ModificationDescriptor, OpenFileInfo, VolumeInfo, WideNameInfo,
};
use winfsp::{FspError, Result, U16CStr};

use crate::history::{History, Taken};
use crate::names::{self, rel_path};
use crate::nt::{self, OpenHow};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn path_of(name: &U16CStr) -> Result<RelPath> {
    // STATUS_OBJECT_NAME_INVALID
    rel_path(name.as_slice()).map_err(|_| FspError::NTSTATUS(0xC000_0033_u32 as i32))
}

/// The process that made the current request, where WinFsp knows it (create, open and
/// rename); 0 otherwise.
fn caller_pid() -> u32 {
    // SAFETY: reads the current request's header, on the thread serving it.
    unsafe { winfsp_sys::FspFileSystemOperationProcessIdF() }
}

/// One open of a file or folder through the mount.
pub struct OpenFile {
    id: u64,
    handle: OwnedHandle,
    /// Follows renames of the file or of a folder above it (`OpenFiles::renamed`).
    path: Mutex<RelPath>,
    is_dir: bool,
    /// Opened with the right to change the content: `OpenWrite` at open, `CloseWrite` at
    /// cleanup.
    writes: bool,
    wrote: AtomicBool,
    /// Who opened it: the records of later requests on it carry this process.
    pid: u32,
    dir: DirBuffer,
    /// What its writes may destroy was kept already, or needs no keeping (created here,
    /// opened without the right to write, or overwritten on open).
    kept: AtomicBool,
    /// Held while its old content is being kept: a second writer waits for the copy.
    keeping: Mutex<()>,
    /// Kept when the delete flag was set (the file cannot be opened again once it is
    /// marked): reported at cleanup with the `Unlink`, dropped if the flag is cleared.
    kept_for_delete: Mutex<Option<Taken>>,
}

impl OpenFile {
    fn path(&self) -> RelPath {
        lock(&self.path).clone()
    }
}

/// The files open through the mount, so that a rename (through the mount, or a reverse
/// merge underneath it) moves the paths their later requests are recorded under.
#[derive(Default)]
pub struct OpenFiles {
    next: AtomicU64,
    files: Mutex<HashMap<u64, Weak<OpenFile>>>,
}

impl OpenFiles {
    pub fn renamed(&self, from: &RelPath, to: &RelPath) {
        for f in lock(&self.files).values().filter_map(Weak::upgrade) {
            let mut path = lock(&f.path);
            if let Some(moved) = names::renamed(&path, from, to) {
                *path = moved;
            }
        }
    }
}

pub struct PassthroughFs {
    root: OwnedHandle,
    sink: Arc<dyn ChangeSink>,
    open: Arc<OpenFiles>,
    /// Keeps what requests destroy (`history`); `None`: `--no-history`.
    history: Option<History>,
}

/// What `open` and `create` learned, to make the open file from.
struct Opened {
    handle: OwnedHandle,
    path: RelPath,
    granted_access: u32,
    /// Made by this request: nothing of it to keep.
    created: bool,
}

impl PassthroughFs {
    pub fn new(
        root: OwnedHandle,
        sink: Arc<dyn ChangeSink>,
        open: Arc<OpenFiles>,
        history_max_file: Option<u64>,
    ) -> Self {
        PassthroughFs {
            root,
            sink,
            open,
            history: history_max_file.map(History::new),
        }
    }

    fn record(&self, op: ChangeOp, path: RelPath, to: Option<RelPath>, pid: u32) {
        self.sink.record(Change {
            op,
            path,
            to,
            pid,
            uid: 0,
        });
    }

    /// Hands what was kept of `path` before request `op` of process `pid` to the sink,
    /// before the request's own record (as the FUSE backend does).
    fn report_kept(&self, op: ChangeOp, path: RelPath, taken: Option<Taken>, pid: u32) {
        if let Some((size, kept)) = taken {
            self.sink.kept(Version {
                path,
                size,
                kept,
                op,
                pid,
                uid: 0,
            });
        }
    }

    /// Drops a version kept for a request that then failed (nothing was destroyed).
    fn discard(&self, taken: Option<Taken>) {
        if let (Some(h), Some((_, Ok(version)))) = (&self.history, taken) {
            h.discard(&version);
        }
    }

    /// Before the first request through `f` that destroys content (request `op`): keeps
    /// it, once per open.
    fn keep_once(&self, op: ChangeOp, f: &OpenFile) {
        let Some(h) = &self.history else {
            return;
        };
        if f.kept.load(Ordering::Acquire) {
            return;
        }
        let _copying = lock(&f.keeping);
        if f.kept.load(Ordering::Acquire) {
            return;
        }
        let path = f.path();
        let taken = h.keep(&self.root, &f.handle, &path, false);
        self.report_kept(op, path, taken, f.pid);
        f.kept.store(true, Ordering::Release);
    }

    /// Before a write of `len` bytes at `offset` through `f`: only what it overwrites is
    /// destroyed (a write past the end, or at the end of the file, destroys nothing).
    fn keep_before_write(&self, f: &OpenFile, offset: u64, to_end: bool) {
        if self.history.is_none() || to_end || f.kept.load(Ordering::Relaxed) {
            return;
        }
        if nt::standard(&f.handle).map_or(true, |st| offset < st.size) {
            self.keep_once(ChangeOp::Write, f);
        }
    }

    /// Fills `info` and keeps the open file among those a rename moves.
    fn track(&self, o: Opened, info: &mut FileInfo) -> Result<Arc<OpenFile>> {
        nt::file_info(&o.handle, info)?;
        let is_dir = info.file_attributes & FILE_ATTRIBUTE_DIRECTORY != 0;
        let writes = !is_dir && names::on_open(o.granted_access).is_some();
        let file = Arc::new(OpenFile {
            id: self.open.next.fetch_add(1, Ordering::Relaxed),
            handle: o.handle,
            path: Mutex::new(o.path),
            is_dir,
            writes,
            wrote: AtomicBool::new(false),
            pid: caller_pid(),
            dir: DirBuffer::new(),
            kept: AtomicBool::new(o.created || !writes),
            keeping: Mutex::new(()),
            kept_for_delete: Mutex::new(None),
        });
        lock(&self.open.files).insert(file.id, Arc::downgrade(&file));
        Ok(file)
    }

    /// Reports the first write through an open (the record says "look at this path";
    /// once is enough until the writer closes).
    fn wrote(&self, f: &OpenFile) {
        if !f.wrote.swap(true, Ordering::Relaxed) {
            self.record(ChangeOp::Write, f.path(), None, f.pid);
        }
    }

    /// The underlying open for a request's access: what WinFsp granted the caller (it
    /// checked it against the file's security), plus reading attributes.
    fn how(create_options: u32, granted_access: u32, disposition: u32) -> OpenHow {
        OpenHow {
            access: granted_access | FILE_READ_ATTRIBUTES,
            disposition,
            // Buffering and delete-on-close are WinFsp's business, not the source's.
            options: create_options
                & (FILE_DIRECTORY_FILE | FILE_NON_DIRECTORY_FILE | FILE_WRITE_THROUGH),
            attributes: 0,
            security: None,
        }
    }
}

impl FileSystemContext for PassthroughFs {
    type FileContext = Arc<OpenFile>;

    fn get_security_by_name(
        &self,
        file_name: &U16CStr,
        security_descriptor: Option<&mut [c_void]>,
        _reparse_point_resolver: impl FnOnce(&U16CStr) -> Option<FileSecurity>,
    ) -> Result<FileSecurity> {
        let path = path_of(file_name)?;
        let how = OpenHow {
            access: nt::SECURITY_ACCESS,
            disposition: FILE_OPEN,
            options: 0,
            attributes: 0,
            security: None,
        };
        let h = nt::open(&self.root, &path, &how)?;
        Ok(FileSecurity {
            reparse: false,
            attributes: nt::attributes(&h)?,
            sz_security_descriptor: nt::security(&h, security_descriptor)?,
        })
    }

    fn open(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted_access: u32,
        file_info: &mut OpenFileInfo,
    ) -> Result<Self::FileContext> {
        let path = path_of(file_name)?;
        let how = Self::how(create_options, granted_access, FILE_OPEN);
        let handle = nt::open(&self.root, &path, &how)?;
        let opened = Opened {
            handle,
            path,
            granted_access,
            created: false,
        };
        let f = self.track(opened, file_info.as_mut())?;
        if f.writes {
            self.record(ChangeOp::OpenWrite, f.path(), None, f.pid);
        }
        Ok(f)
    }

    fn close(&self, context: Self::FileContext) {
        lock(&self.open.files).remove(&context.id);
    }

    fn create(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        granted_access: u32,
        file_attributes: u32,
        security_descriptor: Option<&[c_void]>,
        allocation_size: u64,
        _extra_buffer: Option<&[u8]>,
        _extra_buffer_is_reparse_point: bool,
        file_info: &mut OpenFileInfo,
    ) -> Result<Self::FileContext> {
        let path = path_of(file_name)?;
        let is_dir = create_options & FILE_DIRECTORY_FILE != 0;
        let mut how = Self::how(create_options, granted_access, FILE_CREATE);
        // The directory bit says what is made; NtCreateFile takes that from the options.
        how.attributes = names::create_attributes(file_attributes, is_dir) & !names::ATTR_DIRECTORY;
        how.security = security_descriptor.map(|sd| sd.as_ptr());
        let handle = nt::open(&self.root, &path, &how)?;
        if allocation_size > 0 {
            // A hint: the file is made all the same.
            if let Err(e) = nt::set_size(&handle, allocation_size, true) {
                tracing::debug!("allocating {allocation_size} bytes for {path}: {e:?}");
            }
        }
        let opened = Opened {
            handle,
            path: path.clone(),
            granted_access,
            created: true,
        };
        let f = self.track(opened, file_info.as_mut())?;
        for op in names::on_create(is_dir, granted_access) {
            self.record(op, path.clone(), None, f.pid);
        }
        Ok(f)
    }

    fn cleanup(&self, context: &Self::FileContext, _file_name: Option<&U16CStr>, flags: u32) {
        let f = context;
        let kept = lock(&f.kept_for_delete).take();
        if flags & names::CLEANUP_DELETE == 0 {
            // The delete flag was set, then the file was not deleted after all.
            self.discard(kept);
        } else {
            // Kept when the flag was set; or, deleted on close without it, kept now.
            let kept = match (&self.history, kept) {
                (_, Some(k)) => Some(k),
                (Some(h), None) if !f.is_dir => h.keep(&self.root, &f.handle, &f.path(), true),
                _ => None,
            };
            // Marked by set_delete; gone now rather than at our handle's close.
            if let Err(e) = nt::delete_now(&f.handle) {
                // No POSIX delete here (FAT): marked, the file goes when our handle
                // closes, right after.
                tracing::debug!("deleting {} at once: {e:?}", f.path());
                if let Err(e) = nt::set_delete(&f.handle, true) {
                    tracing::warn!("deleting {}: {e:?}", f.path());
                    self.discard(kept);
                    return;
                }
            }
            let op = if f.is_dir {
                ChangeOp::Rmdir
            } else {
                ChangeOp::Unlink
            };
            self.report_kept(op, f.path(), kept, f.pid);
        }
        if let Some(op) = names::on_cleanup(flags, f.is_dir, f.writes) {
            self.record(op, f.path(), None, f.pid);
        }
    }

    fn flush(&self, context: Option<&Self::FileContext>, file_info: &mut FileInfo) -> Result<()> {
        match context {
            Some(f) => {
                nt::flush(&f.handle)?;
                nt::file_info(&f.handle, file_info)
            }
            None => Ok(()),
        }
    }

    fn get_file_info(&self, context: &Self::FileContext, file_info: &mut FileInfo) -> Result<()> {
        nt::file_info(&context.handle, file_info)
    }

    fn get_security(
        &self,
        context: &Self::FileContext,
        security_descriptor: Option<&mut [c_void]>,
    ) -> Result<u64> {
        let how = OpenHow {
            access: nt::SECURITY_ACCESS,
            disposition: FILE_OPEN,
            options: 0,
            attributes: 0,
            security: None,
        };
        let h = nt::open(&self.root, &context.path(), &how)?;
        nt::security(&h, security_descriptor)
    }

    fn overwrite(
        &self,
        context: &Self::FileContext,
        file_attributes: u32,
        replace_file_attributes: bool,
        _allocation_size: u64,
        _extra_buffer: Option<&[u8]>,
        file_info: &mut FileInfo,
    ) -> Result<()> {
        let f = context;
        // A truncation on open (FUSE's O_TRUNC): what it destroys is kept first, and the
        // open's later writes destroy nothing more.
        self.keep_once(ChangeOp::OpenWrite, f);
        nt::set_size(&f.handle, 0, false)?;
        let attributes = if replace_file_attributes {
            Some(names::create_attributes(file_attributes, false))
        } else {
            (file_attributes != 0).then(|| file_attributes | nt::attributes(&f.handle).unwrap_or(0))
        };
        if let Some(b) = attributes.and_then(|a| names::basic_info(a, false, 0, 0, 0, 0)) {
            nt::set_basic(&f.handle, &b)?;
        }
        // A truncation on open: FUSE's O_TRUNC, reported with the open's OpenWrite and,
        // here, as the open's first write.
        self.wrote(f);
        nt::file_info(&f.handle, file_info)
    }

    fn read_directory(
        &self,
        context: &Self::FileContext,
        _pattern: Option<&U16CStr>,
        marker: DirMarker,
        buffer: &mut [u8],
    ) -> Result<u32> {
        let f = context;
        if let Ok(filling) = f.dir.acquire(marker.is_none(), None) {
            let at_root = f.path().is_root();
            for e in nt::list(&f.handle)? {
                let dots = e.name == [46] || e.name == [46, 46];
                if at_root && dots {
                    // The source's own `.` and `..`: a volume's root has neither.
                    continue;
                }
                let mut entry: DirInfo = DirInfo::new();
                if entry.set_name_raw(e.name.as_slice()).is_err() {
                    continue;
                }
                *entry.file_info_mut() = e.info;
                filling.write(&mut entry)?;
            }
        }
        Ok(f.dir.read(marker, buffer))
    }

    fn rename(
        &self,
        context: &Self::FileContext,
        file_name: &U16CStr,
        new_file_name: &U16CStr,
        replace_if_exists: bool,
    ) -> Result<()> {
        let (from, to) = (path_of(file_name)?, path_of(new_file_name)?);
        let pid = caller_pid();
        // What a rename over a file destroys is kept first (a rename onto a name that
        // differs only in case is the same file: nothing destroyed).
        let same = from.as_bytes().eq_ignore_ascii_case(to.as_bytes());
        let kept = match &self.history {
            Some(h) if replace_if_exists && !same => h.keep_path(&self.root, &to),
            _ => None,
        };
        if let Err(e) = nt::rename(&self.root, &context.handle, &to, replace_if_exists) {
            self.discard(kept);
            return Err(e);
        }
        self.open.renamed(&from, &to);
        self.report_kept(ChangeOp::Rename, to.clone(), kept, pid);
        self.record(ChangeOp::Rename, from, Some(to), pid);
        Ok(())
    }

    fn set_basic_info(
        &self,
        context: &Self::FileContext,
        file_attributes: u32,
        creation_time: u64,
        last_access_time: u64,
        last_write_time: u64,
        last_change_time: u64,
        file_info: &mut FileInfo,
    ) -> Result<()> {
        let f = context;
        let change = names::basic_info(
            file_attributes,
            f.is_dir,
            creation_time,
            last_access_time,
            last_write_time,
            last_change_time,
        );
        if let Some(b) = change {
            nt::set_basic(&f.handle, &b)?;
            self.record(ChangeOp::SetAttr, f.path(), None, f.pid);
        }
        nt::file_info(&f.handle, file_info)
    }

    fn set_delete(
        &self,
        context: &Self::FileContext,
        _file_name: &U16CStr,
        delete: bool,
    ) -> Result<()> {
        // Recorded at cleanup, once the file is gone. Kept now: once marked, the file
        // cannot be opened again to be read.
        let f = context;
        let old = lock(&f.kept_for_delete).take();
        self.discard(old);
        let kept = match &self.history {
            Some(h) if delete && !f.is_dir => h.keep(&self.root, &f.handle, &f.path(), true),
            _ => None,
        };
        if let Err(e) = nt::set_delete(&f.handle, delete) {
            self.discard(kept);
            return Err(e);
        }
        *lock(&f.kept_for_delete) = kept;
        Ok(())
    }

    fn set_security(
        &self,
        context: &Self::FileContext,
        security_information: u32,
        modification_descriptor: ModificationDescriptor,
    ) -> Result<()> {
        // FUSE's chmod and chown: a SetAttr.
        let f = context;
        nt::set_security(
            &f.handle,
            security_information,
            modification_descriptor.as_mut_ptr(),
        )?;
        self.record(ChangeOp::SetAttr, f.path(), None, f.pid);
        Ok(())
    }

    fn set_file_size(
        &self,
        context: &Self::FileContext,
        new_size: u64,
        set_allocation_size: bool,
        file_info: &mut FileInfo,
    ) -> Result<()> {
        let f = context;
        if !set_allocation_size && nt::standard(&f.handle).is_ok_and(|st| new_size < st.size) {
            // A truncate that destroys content: kept first.
            self.keep_once(ChangeOp::SetAttr, f);
        }
        nt::set_size(&f.handle, new_size, set_allocation_size)?;
        if !set_allocation_size {
            // A truncate, as FUSE's setattr of the size.
            self.record(ChangeOp::SetAttr, f.path(), None, f.pid);
        }
        nt::file_info(&f.handle, file_info)
    }

    fn read(&self, context: &Self::FileContext, buffer: &mut [u8], offset: u64) -> Result<u32> {
        nt::read_at(&context.handle, buffer, offset)
    }

    fn write(
        &self,
        context: &Self::FileContext,
        buffer: &[u8],
        offset: u64,
        write_to_eof: bool,
        constrained_io: bool,
        file_info: &mut FileInfo,
    ) -> Result<u32> {
        let f = context;
        let mut data = buffer;
        if constrained_io {
            // The paging writer may not extend the file.
            nt::file_info(&f.handle, file_info)?;
            let room = file_info.file_size.saturating_sub(offset);
            data = &buffer[..buffer
                .len()
                .min(usize::try_from(room).unwrap_or(usize::MAX))];
            if data.is_empty() {
                return Ok(0);
            }
        }
        self.keep_before_write(f, offset, write_to_eof);
        let done = nt::write_at(&f.handle, data, offset, write_to_eof)?;
        self.wrote(f);
        nt::file_info(&f.handle, file_info)?;
        Ok(done)
    }

    fn get_volume_info(&self, out_volume_info: &mut VolumeInfo) -> Result<()> {
        let (total, free) = nt::volume_size(&self.root)?;
        out_volume_info.total_size = total;
        out_volume_info.free_size = free;
        out_volume_info.set_volume_label("tandem");
        Ok(())
    }
}
