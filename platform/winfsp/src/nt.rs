//! The handle calls the passthrough makes on the source (every `unsafe` of the crate
//! outside WinFsp's own bindings).
//!
//! Confinement (invariant 6): a path is opened one folder at a time, each relative to the
//! handle of the one before (the source's own handle first), always with
//! `FILE_OPEN_REPARSE_POINT`; a folder met on the way that is a reparse point (a junction,
//! a symbolic link) is refused, so nothing outside the source is reached through one. The
//! last component is opened itself, never followed.

use std::ffi::c_void;
use std::mem::size_of;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use tandem_core::path::RelPath;
use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{
    FileFsSizeInformation, NtCreateFile, NtQueryVolumeInformationFile, FILE_DIRECTORY_FILE,
    FILE_OPEN, FILE_OPEN_FOR_BACKUP_INTENT, FILE_OPEN_REPARSE_POINT, FILE_SYNCHRONOUS_IO_NONALERT,
};
use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_INSUFFICIENT_BUFFER, ERROR_NO_MORE_FILES, HANDLE, OBJ_CASE_INSENSITIVE,
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, UNICODE_STRING,
};
use windows_sys::Win32::Security::{
    GetKernelObjectSecurity, GetSecurityDescriptorLength, SetKernelObjectSecurity,
    DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    SACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileAllocationInfo, FileBasicInfo, FileDispositionInfo, FileDispositionInfoEx,
    FileEndOfFileInfo, FileIdBothDirectoryInfo, FileIdBothDirectoryRestartInfo, FileRenameInfoEx,
    FileStandardInfo, FlushFileBuffers, GetFileInformationByHandle, GetFileInformationByHandleEx,
    ReadFile, SetFileInformationByHandle, WriteFile, BY_HANDLE_FILE_INFORMATION,
    FILE_ALLOCATION_INFO, FILE_ATTRIBUTE_REPARSE_POINT, FILE_BASIC_INFO,
    FILE_DISPOSITION_FLAG_DELETE, FILE_DISPOSITION_FLAG_POSIX_SEMANTICS, FILE_DISPOSITION_INFO,
    FILE_DISPOSITION_INFO_EX, FILE_END_OF_FILE_INFO, FILE_ID_BOTH_DIR_INFO,
    FILE_INFO_BY_HANDLE_CLASS, FILE_READ_ATTRIBUTES, FILE_RENAME_INFO, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO, FILE_TRAVERSE, READ_CONTROL,
    SYNCHRONIZE, WRITE_DAC, WRITE_OWNER,
};
use windows_sys::Win32::System::IO::{IO_STATUS_BLOCK, OVERLAPPED};
use winfsp::filesystem::FileInfo;
use winfsp::{FspError, Result};

use crate::names::{nt_relative, BasicInfo};

const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
/// `FILE_RENAME_FLAG_REPLACE_IF_EXISTS`, `FILE_RENAME_FLAG_POSIX_SEMANTICS`.
const RENAME_REPLACE: u32 = 0x1;
const RENAME_POSIX: u32 = 0x2;

fn last_error() -> FspError {
    // SAFETY: reads the calling thread's last error.
    FspError::WIN32(unsafe { GetLastError() })
}

fn raw(h: &OwnedHandle) -> HANDLE {
    h.as_raw_handle()
}

/// How a file is opened under the source: access, `NtCreateFile` disposition and options,
/// attributes and security for one it creates.
pub struct OpenHow {
    pub access: u32,
    pub disposition: u32,
    pub options: u32,
    pub attributes: u32,
    pub security: Option<*const c_void>,
}

/// `NtCreateFile` of one component `name` (or, empty, `dir` itself) relative to `dir`.
fn create_at(dir: HANDLE, name: &[u16], how: &OpenHow) -> Result<OwnedHandle> {
    let len = u16::try_from(name.len() * 2).map_err(|_| FspError::WIN32(206))?;
    let us = UNICODE_STRING {
        Length: len,
        MaximumLength: len,
        Buffer: name.as_ptr().cast_mut(),
    };
    let attrs = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: dir,
        ObjectName: &us,
        Attributes: OBJ_CASE_INSENSITIVE,
        SecurityDescriptor: how.security.unwrap_or(std::ptr::null()).cast(),
        SecurityQualityOfService: std::ptr::null(),
    };
    let mut h: HANDLE = std::ptr::null_mut();
    let mut iosb = IO_STATUS_BLOCK::default();
    let options = how.options
        | FILE_SYNCHRONOUS_IO_NONALERT
        | FILE_OPEN_REPARSE_POINT
        | FILE_OPEN_FOR_BACKUP_INTENT;
    // SAFETY: every pointer is to a live local or to `name`; `h` is ours on success.
    let status = unsafe {
        NtCreateFile(
            &mut h,
            how.access | SYNCHRONIZE,
            &attrs,
            &mut iosb,
            std::ptr::null(),
            how.attributes,
            SHARE_ALL,
            how.disposition,
            options,
            std::ptr::null(),
            0,
        )
    };
    if status < 0 {
        return Err(FspError::NTSTATUS(status));
    }
    // SAFETY: a handle just opened, owned by nothing else.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// The folder holding `path` (the source itself for a name at its root), opened one
/// folder at a time, refusing a reparse point on the way.
fn open_parent(root: &OwnedHandle, path: &RelPath) -> Result<Option<OwnedHandle>> {
    let how = OpenHow {
        access: FILE_TRAVERSE | FILE_READ_ATTRIBUTES,
        disposition: FILE_OPEN,
        options: FILE_DIRECTORY_FILE,
        attributes: 0,
        security: None,
    };
    let Some(parent) = path.parent().filter(|p| !p.is_root()) else {
        return Ok(None);
    };
    let mut dir: Option<OwnedHandle> = None;
    for name in parent.components() {
        let name: Vec<u16> = nt_relative(&RelPath::new(name.to_vec()).map_err(|_| bad_name())?);
        let at = dir.as_ref().map_or(raw(root), raw);
        let next = create_at(at, &name, &how)?;
        if attributes(&next)? & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(FspError::NTSTATUS(STATUS_ACCESS_DENIED));
        }
        dir = Some(next);
    }
    Ok(dir)
}

fn bad_name() -> FspError {
    // STATUS_OBJECT_NAME_INVALID
    FspError::NTSTATUS(0xC000_0033_u32 as i32)
}

/// Opens (or creates, per `how`) `path` below the source.
pub fn open(root: &OwnedHandle, path: &RelPath, how: &OpenHow) -> Result<OwnedHandle> {
    if path.is_root() {
        return create_at(raw(root), &[], how);
    }
    let parent = open_parent(root, path)?;
    let at = parent.as_ref().map_or(raw(root), raw);
    let name: Vec<u16> =
        nt_relative(&RelPath::new(path.file_name().to_vec()).map_err(|_| bad_name())?);
    create_at(at, &name, how)
}

fn get_info<T: Default>(h: &OwnedHandle, class: FILE_INFO_BY_HANDLE_CLASS) -> Result<T> {
    let mut info = T::default();
    // SAFETY: `info` is a `T` of the size given, the class's structure.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            raw(h),
            class,
            (&mut info as *mut T).cast(),
            size_of::<T>() as u32,
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(info)
}

fn set_info<T>(
    h: &OwnedHandle,
    class: FILE_INFO_BY_HANDLE_CLASS,
    info: &T,
    size: usize,
) -> Result<()> {
    // SAFETY: `info` points to at least `size` bytes of the class's structure.
    let ok = unsafe {
        SetFileInformationByHandle(raw(h), class, (info as *const T).cast(), size as u32)
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(())
}

pub fn attributes(h: &OwnedHandle) -> Result<u32> {
    Ok(get_info::<FILE_BASIC_INFO>(h, FileBasicInfo)?.FileAttributes)
}

/// What WinFsp reports of an open file: attributes, sizes, times and the file ID.
pub fn file_info(h: &OwnedHandle, out: &mut FileInfo) -> Result<()> {
    let basic: FILE_BASIC_INFO = get_info(h, FileBasicInfo)?;
    let standard: FILE_STANDARD_INFO = get_info(h, FileStandardInfo)?;
    let mut by_handle = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `by_handle` is the structure the call fills.
    if unsafe { GetFileInformationByHandle(raw(h), &mut by_handle) } == 0 {
        return Err(last_error());
    }
    out.file_attributes = basic.FileAttributes;
    out.reparse_tag = 0;
    out.allocation_size = standard.AllocationSize as u64;
    out.file_size = standard.EndOfFile as u64;
    out.creation_time = basic.CreationTime as u64;
    out.last_access_time = basic.LastAccessTime as u64;
    out.last_write_time = basic.LastWriteTime as u64;
    out.change_time = basic.ChangeTime as u64;
    out.index_number =
        (u64::from(by_handle.nFileIndexHigh) << 32) | u64::from(by_handle.nFileIndexLow);
    out.hard_links = 0;
    out.ea_size = 0;
    Ok(())
}

/// The owner, group and DACL of an open file, into `buf` when it is large enough.
/// Returns the descriptor's size.
pub fn security(h: &OwnedHandle, buf: Option<&mut [c_void]>) -> Result<u64> {
    let info = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    let (ptr, len) = match buf {
        Some(b) => (b.as_mut_ptr(), b.len() as u32),
        None => (std::ptr::null_mut(), 0),
    };
    let mut needed = 0u32;
    // SAFETY: `ptr` is null (len 0) or `len` writable bytes.
    let ok = unsafe { GetKernelObjectSecurity(raw(h), info, ptr, len, &mut needed) };
    if ok != 0 {
        // SAFETY: the call just wrote a valid descriptor at `ptr`.
        return Ok(u64::from(unsafe { GetSecurityDescriptorLength(ptr) }));
    }
    // SAFETY: reads the calling thread's last error.
    match unsafe { GetLastError() } {
        ERROR_INSUFFICIENT_BUFFER if len == 0 => Ok(u64::from(needed)),
        ERROR_INSUFFICIENT_BUFFER => Err(FspError::NTSTATUS(STATUS_BUFFER_OVERFLOW)),
        e => Err(FspError::WIN32(e)),
    }
}

/// Security needs `READ_CONTROL` on the handle it is read from.
pub const SECURITY_ACCESS: u32 = READ_CONTROL | FILE_READ_ATTRIBUTES;

fn overlapped(offset: u64) -> OVERLAPPED {
    let mut o = OVERLAPPED::default();
    o.Anonymous.Anonymous.Offset = offset as u32;
    o.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    o
}

/// Reads at `offset`; the end of the file is `STATUS_END_OF_FILE`, as WinFsp expects.
pub fn read_at(h: &OwnedHandle, buf: &mut [u8], offset: u64) -> Result<u32> {
    let mut o = overlapped(offset);
    let mut done = 0u32;
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: `buf` holds `len` writable bytes; the handle is synchronous.
    let ok = unsafe { ReadFile(raw(h), buf.as_mut_ptr(), len, &mut done, &mut o) };
    if ok == 0 {
        // ERROR_HANDLE_EOF becomes STATUS_END_OF_FILE.
        return Err(last_error());
    }
    Ok(done)
}

/// Writes at `offset`, or at the end of the file (`to_end`).
pub fn write_at(h: &OwnedHandle, data: &[u8], offset: u64, to_end: bool) -> Result<u32> {
    // FILE_WRITE_TO_END_OF_FILE: both halves of the offset all ones.
    let mut o = overlapped(if to_end { u64::MAX } else { offset });
    let mut done = 0u32;
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    // SAFETY: `data` holds `len` bytes; the handle is synchronous.
    if unsafe { WriteFile(raw(h), data.as_ptr(), len, &mut done, &mut o) } == 0 {
        return Err(last_error());
    }
    Ok(done)
}

pub fn flush(h: &OwnedHandle) -> Result<()> {
    // SAFETY: a plain call on an open handle.
    if unsafe { FlushFileBuffers(raw(h)) } == 0 {
        return Err(last_error());
    }
    Ok(())
}

pub fn set_basic(h: &OwnedHandle, b: &BasicInfo) -> Result<()> {
    let info = FILE_BASIC_INFO {
        CreationTime: b.creation as i64,
        LastAccessTime: b.last_access as i64,
        LastWriteTime: b.last_write as i64,
        ChangeTime: b.change as i64,
        // 0: unchanged.
        FileAttributes: b.attributes.unwrap_or(0),
    };
    set_info(h, FileBasicInfo, &info, size_of::<FILE_BASIC_INFO>())
}

pub fn set_size(h: &OwnedHandle, size: u64, allocation: bool) -> Result<()> {
    if allocation {
        let info = FILE_ALLOCATION_INFO {
            AllocationSize: size as i64,
        };
        set_info(
            h,
            FileAllocationInfo,
            &info,
            size_of::<FILE_ALLOCATION_INFO>(),
        )
    } else {
        let info = FILE_END_OF_FILE_INFO {
            EndOfFile: size as i64,
        };
        set_info(
            h,
            FileEndOfFileInfo,
            &info,
            size_of::<FILE_END_OF_FILE_INFO>(),
        )
    }
}

/// Marks the file for deletion at its last close (or clears the mark): the file system
/// says here whether it can be deleted (a folder not empty, a read-only file).
pub fn set_delete(h: &OwnedHandle, delete: bool) -> Result<()> {
    let info = FILE_DISPOSITION_INFO { DeleteFile: delete };
    set_info(
        h,
        FileDispositionInfo,
        &info,
        size_of::<FILE_DISPOSITION_INFO>(),
    )
}

/// Deletes the file's name now (POSIX semantics: other handles keep the file), where the
/// file system can; otherwise the mark set by `set_delete` deletes it at its last close.
pub fn delete_now(h: &OwnedHandle) -> Result<()> {
    let info = FILE_DISPOSITION_INFO_EX {
        Flags: FILE_DISPOSITION_FLAG_DELETE | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS,
    };
    set_info(
        h,
        FileDispositionInfoEx,
        &info,
        size_of::<FILE_DISPOSITION_INFO_EX>(),
    )
}

/// Renames the open file `h` to `to` below the source (its folder opened as `open_parent`
/// does: never through a reparse point).
pub fn rename(root: &OwnedHandle, h: &OwnedHandle, to: &RelPath, replace: bool) -> Result<()> {
    let parent = open_parent(root, to)?;
    let name: Vec<u16> =
        nt_relative(&RelPath::new(to.file_name().to_vec()).map_err(|_| bad_name())?);
    let header = std::mem::offset_of!(FILE_RENAME_INFO, FileName);
    let size = header + name.len() * 2;
    // u64 words: aligned for the structure's handle.
    let mut buf = vec![0u64; size.div_ceil(8) + 1];
    let info = buf.as_mut_ptr().cast::<FILE_RENAME_INFO>();
    // SAFETY: `buf` is large enough for the header and the name, and aligned.
    unsafe {
        (*info).Anonymous.Flags = if replace {
            RENAME_REPLACE | RENAME_POSIX
        } else {
            RENAME_POSIX
        };
        (*info).RootDirectory = parent.as_ref().map_or(raw(root), raw);
        (*info).FileNameLength = (name.len() * 2) as u32;
        std::ptr::copy_nonoverlapping(
            name.as_ptr(),
            std::ptr::addr_of_mut!((*info).FileName).cast::<u16>(),
            name.len(),
        );
    }
    // SAFETY: as above; `info` lives in `buf` through the call.
    let ok =
        unsafe { SetFileInformationByHandle(raw(h), FileRenameInfoEx, info.cast(), size as u32) };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(())
}

/// One entry of a folder listing.
pub struct DirEntry {
    pub name: Vec<u16>,
    pub info: FileInfo,
}

/// Every entry of the open folder `h`, from its start.
pub fn list(h: &OwnedHandle) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    let mut buf = vec![0u64; 8192];
    let mut class = FileIdBothDirectoryRestartInfo;
    loop {
        // SAFETY: `buf` holds the byte count given.
        let ok = unsafe {
            GetFileInformationByHandleEx(
                raw(h),
                class,
                buf.as_mut_ptr().cast(),
                (buf.len() * 8) as u32,
            )
        };
        if ok == 0 {
            // SAFETY: reads the calling thread's last error.
            return match unsafe { GetLastError() } {
                ERROR_NO_MORE_FILES => Ok(out),
                e => Err(FspError::WIN32(e)),
            };
        }
        class = FileIdBothDirectoryInfo;
        let base = buf.as_ptr().cast::<u8>();
        let mut at = 0usize;
        loop {
            // SAFETY: the call laid out entries from `base`, each at an 8-byte aligned
            // offset given by the one before.
            let e = unsafe { &*base.add(at).cast::<FILE_ID_BOTH_DIR_INFO>() };
            // SAFETY: the name follows the entry, `FileNameLength` bytes long.
            let name = unsafe {
                std::slice::from_raw_parts(e.FileName.as_ptr(), e.FileNameLength as usize / 2)
            };
            out.push(DirEntry {
                name: name.to_vec(),
                info: entry_info(e),
            });
            if e.NextEntryOffset == 0 {
                break;
            }
            at += e.NextEntryOffset as usize;
        }
    }
}

fn entry_info(e: &FILE_ID_BOTH_DIR_INFO) -> FileInfo {
    FileInfo {
        file_attributes: e.FileAttributes,
        allocation_size: e.AllocationSize as u64,
        file_size: e.EndOfFile as u64,
        creation_time: e.CreationTime as u64,
        last_access_time: e.LastAccessTime as u64,
        last_write_time: e.LastWriteTime as u64,
        change_time: e.ChangeTime as u64,
        index_number: e.FileId as u64,
        ..FileInfo::default()
    }
}

/// `FILE_FS_SIZE_INFORMATION`.
#[repr(C)]
#[derive(Default)]
struct FsSize {
    total_units: i64,
    available_units: i64,
    sectors_per_unit: u32,
    bytes_per_sector: u32,
}

/// The total and free bytes of the volume holding the source.
pub fn volume_size(root: &OwnedHandle) -> Result<(u64, u64)> {
    let mut s = FsSize::default();
    let mut iosb = IO_STATUS_BLOCK::default();
    // SAFETY: `s` is the class's structure, of the size given.
    let status = unsafe {
        NtQueryVolumeInformationFile(
            raw(root),
            &mut iosb,
            (&mut s as *mut FsSize).cast(),
            size_of::<FsSize>() as u32,
            FileFsSizeInformation,
        )
    };
    if status < 0 {
        return Err(FspError::NTSTATUS(status));
    }
    let unit = u64::from(s.sectors_per_unit) * u64::from(s.bytes_per_sector);
    Ok((s.total_units as u64 * unit, s.available_units as u64 * unit))
}

/// `ACCESS_SYSTEM_SECURITY`: the right to change a SACL.
const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;

/// What `History` needs to know of a file: its size, its hard links, whether a folder.
pub struct Standard {
    pub size: u64,
    pub links: u32,
    pub is_dir: bool,
}

pub fn standard(h: &OwnedHandle) -> Result<Standard> {
    let s: FILE_STANDARD_INFO = get_info(h, FileStandardInfo)?;
    Ok(Standard {
        size: s.EndOfFile.max(0) as u64,
        links: s.NumberOfLinks,
        is_dir: s.Directory,
    })
}

/// Applies a security change WinFsp hands over (`SetSecurity`: the parts named in `info`
/// of `descriptor`) to the file open as `h`, through a handle opened again with the rights
/// that change needs.
pub fn set_security(h: &OwnedHandle, info: u32, descriptor: *mut c_void) -> Result<()> {
    let mut access = READ_CONTROL;
    if info & (OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION) != 0 {
        access |= WRITE_OWNER;
    }
    if info & DACL_SECURITY_INFORMATION != 0 {
        access |= WRITE_DAC;
    }
    if info & SACL_SECURITY_INFORMATION != 0 {
        access |= ACCESS_SYSTEM_SECURITY;
    }
    let how = OpenHow {
        access,
        disposition: FILE_OPEN,
        options: 0,
        attributes: 0,
        security: None,
    };
    let writable = create_at(raw(h), &[], &how)?;
    // SAFETY: `descriptor` is the valid descriptor WinFsp passed for this request.
    if unsafe { SetKernelObjectSecurity(raw(&writable), info, descriptor) } == 0 {
        return Err(last_error());
    }
    Ok(())
}
