//! The store on the local file system: a directory root and keys below it.
//!
//! Nothing below the root is followed through a symbolic link: every folder of a key is opened
//! relative to the one before it with `O_NOFOLLOW | O_DIRECTORY`, and files with `O_NOFOLLOW`,
//! so a link planted inside the output (say `out/AWSLogs -> /etc`) is refused with an error
//! naming it, never written through. (The root itself may be a link: the user named it.)
//! Files are opened without waiting (`O_NONBLOCK`), so a FIFO in place of a file is refused by
//! its type, never read, and every read is capped.
//!
//! A write goes to a temporary file in the target's folder with an unpredictable name
//! (`.NAME.<128 random bits>.tmp`), created exclusively (`O_EXCL`), then renamed into place
//! (atomic replace) or, for `put_if(Absent)`, hard-linked into place (`linkat` fails if the name
//! exists, so the object is created whole or not at all). `put_if(Matches)` compares and renames
//! under an exclusive `flock` of the folder, so two conditional writers cannot both win.
//! The ETag of a local object is a digest of its bytes.

use super::{Folder, Precondition, Put, StoreError, Tagged, random_token};
use std::ffi::{CStr, CString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a non-plain entry is, as listings and errors name it.
pub const SYMBOLIC_LINK: &str = "a symbolic link";
pub const SPECIAL_FILE: &str = "not a regular file (a FIFO, socket or device)";
pub const NOT_A_FOLDER: &str = "a file where a folder was expected";
pub const NON_UTF8_NAME: &str = "a name that is not UTF-8";
/// The suffix of the temporary files this store writes (removed on error; see
/// `remove_stale_temporaries` for those a killed process left).
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// A local directory as a store.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: PathBuf) -> LocalDir {
        LocalDir { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn io_error(&self, key: &str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            location: self.root.join(key).display().to_string(),
            cause: source,
        }
    }

    /// The root, opened as a folder; created first when `create`. `None` if it does not exist.
    fn open_root(&self, create: bool) -> Result<Option<OwnedFd>, StoreError> {
        if create {
            std::fs::create_dir_all(&self.root).map_err(|e| self.io_error("", e))?;
        }
        let path = CString::new(self.root.as_os_str().as_bytes())
            .map_err(|_| self.io_error("", std::io::ErrorKind::InvalidInput.into()))?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: `path` is NUL-terminated; a returned descriptor is owned by nothing else.
        match cvt(unsafe { libc::open(path.as_ptr(), flags) }) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error("", e)),
        }
    }

    /// The folder of `segments` below the root, each opened without following links; missing
    /// folders are created when `create`, else the answer is `None`.
    fn open_folder(&self, segments: &[&str], create: bool) -> Result<Option<OwnedFd>, StoreError> {
        let Some(mut fd) = self.open_root(create)? else {
            return Ok(None);
        };
        for i in 0..segments.len() {
            match self.open_child(&fd, &segments[..=i], create)? {
                Some(next) => fd = next,
                None => return Ok(None),
            }
        }
        Ok(Some(fd))
    }

    /// The last of `segments` opened in `parent` (the folder of the others) without following
    /// a link; created when missing and `create`, else `None`.
    fn open_child(
        &self,
        parent: &OwnedFd,
        segments: &[&str],
        create: bool,
    ) -> Result<Option<OwnedFd>, StoreError> {
        let here = || segments.join("/");
        let segment = segments.last().copied().unwrap_or_default();
        let name = c_name(segment).map_err(|e| self.io_error(&here(), e))?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let mut opened = openat(parent, &name, flags, 0);
        if create && matches!(&opened, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
            // SAFETY: `parent` is an open folder and `name` NUL-terminated.
            let made = cvt_unit(unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) });
            if let Err(e) = made
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(self.io_error(&here(), e));
            }
            opened = openat(parent, &name, flags, 0);
        }
        match opened {
            Ok(next) => Ok(Some(next)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if is_not_plain(&e) => Err(StoreError::NotPlain {
                location: self.root.join(here()).display().to_string(),
                what: entry_kind(parent, &name).unwrap_or(SYMBOLIC_LINK),
            }),
            Err(e) => Err(self.io_error(&here(), e)),
        }
    }

    pub fn list(&self, folder: &str) -> Result<Folder, StoreError> {
        let segments = split(folder.trim_end_matches('/'));
        let Some(fd) = self.open_folder(&segments, false)? else {
            return Ok(Folder::default());
        };
        let mut listed = Folder::default();
        for_each_entry(&fd, |name, kind| {
            let Ok(text) = std::str::from_utf8(name.to_bytes()) else {
                let lossy = String::from_utf8_lossy(name.to_bytes()).into_owned();
                listed.others.push((lossy, NON_UTF8_NAME));
                return;
            };
            let kind = match kind {
                Kind::Unknown => stat_kind(&fd, name),
                known => known,
            };
            match kind {
                Kind::Folder => listed.folders.push(text.to_owned()),
                Kind::File => {
                    let size = stat_size(&fd, name).unwrap_or(0);
                    listed.objects.push((text.to_owned(), size));
                }
                Kind::Link => listed.others.push((text.to_owned(), SYMBOLIC_LINK)),
                Kind::Special | Kind::Unknown => {
                    listed.others.push((text.to_owned(), SPECIAL_FILE))
                }
            }
        })
        .map_err(|e| self.io_error(folder, e))?;
        listed.folders.sort();
        listed.objects.sort();
        listed.others.sort();
        Ok(listed)
    }

    /// Whether `key` names an entry (of any kind: a link or FIFO in its place counts).
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let (folder, name) = split_key(key);
        let Some(dir) = self.open_folder(&folder, false)? else {
            return Ok(false);
        };
        let c = c_name(name).map_err(|e| self.io_error(key, e))?;
        Ok(lstat(&dir, &c).is_some())
    }

    pub fn get(&self, key: &str, cap: u64) -> Result<Option<Tagged>, StoreError> {
        Ok(self.get_bytes(key, cap)?.map(|bytes| {
            let etag = Some(digest(&bytes));
            Tagged { bytes, etag }
        }))
    }

    /// `get` without the ETag (no digest of the bytes computed).
    pub fn get_bytes(&self, key: &str, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let (folder, name) = split_key(key);
        let Some(dir) = self.open_folder(&folder, false)? else {
            return Ok(None);
        };
        let c = c_name(name).map_err(|e| self.io_error(key, e))?;
        let flags =
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        let fd = match openat(&dir, &c, flags, 0) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_not_plain(&e) => return Err(self.not_plain(key, SYMBOLIC_LINK)),
            Err(e) => return Err(self.io_error(key, e)),
        };
        self.read_capped(std::fs::File::from(fd), key, cap)
            .map(Some)
    }

    fn read_capped(&self, file: std::fs::File, key: &str, cap: u64) -> Result<Vec<u8>, StoreError> {
        let meta = file.metadata().map_err(|e| self.io_error(key, e))?;
        if !meta.is_file() {
            return Err(self.not_plain(key, SPECIAL_FILE));
        }
        let too_large = |size| StoreError::TooLarge {
            location: self.root.join(key).display().to_string(),
            size,
            cap,
        };
        if meta.len() > cap {
            return Err(too_large(meta.len()));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_error(key, e))?;
        if bytes.len() as u64 > cap {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(bytes)
    }

    fn not_plain(&self, key: &str, what: &'static str) -> StoreError {
        StoreError::NotPlain {
            location: self.root.join(key).display().to_string(),
            what,
        }
    }

    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let (folder, name) = split_key(key);
        let dir = self.writable_folder(&folder, key)?;
        let temporary = self.write_temporary(&dir, name, bytes, false, key)?;
        let target = c_name(name).map_err(|e| self.io_error(key, e))?;
        let renamed = renameat(&dir, &temporary, &target);
        if let Err(e) = renamed {
            unlinkat(&dir, &temporary);
            return Err(self.io_error(key, e));
        }
        Ok(())
    }

    pub fn put_if(
        &self,
        key: &str,
        bytes: &[u8],
        precondition: &Precondition,
    ) -> Result<Put, StoreError> {
        let (folder, name) = split_key(key);
        let dir = self.writable_folder(&folder, key)?;
        let target = c_name(name).map_err(|e| self.io_error(key, e))?;
        let etag = digest(bytes);
        match precondition {
            Precondition::Absent => {
                let temporary = self.write_temporary(&dir, name, bytes, true, key)?;
                // SAFETY: `dir` is an open folder; both names are NUL-terminated.
                let linked = cvt_unit(unsafe {
                    libc::linkat(
                        dir.as_raw_fd(),
                        temporary.as_ptr(),
                        dir.as_raw_fd(),
                        target.as_ptr(),
                        0,
                    )
                });
                unlinkat(&dir, &temporary);
                match linked {
                    Ok(()) => Ok(Put::Written(Some(etag))),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Ok(Put::ConditionFailed)
                    }
                    Err(e) => Err(self.io_error(key, e)),
                }
            }
            Precondition::Matches(expected) => {
                let _guard = FolderLock::take(&dir).map_err(|e| self.io_error(key, e))?;
                match self.get(key, u64::MAX)? {
                    Some(current) if current.etag.as_deref() == Some(expected.as_str()) => {}
                    _ => return Ok(Put::ConditionFailed),
                }
                let temporary = self.write_temporary(&dir, name, bytes, true, key)?;
                if let Err(e) = renameat(&dir, &temporary, &target) {
                    unlinkat(&dir, &temporary);
                    return Err(self.io_error(key, e));
                }
                Ok(Put::Written(Some(etag)))
            }
        }
    }

    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let (folder, name) = split_key(key);
        let Some(dir) = self.open_folder(&folder, false)? else {
            return Ok(false);
        };
        self.unlink(&dir, name, key)
    }

    /// Remove each of `keys` if present; whether each was, in their order. A run's cleanup
    /// names thousands of keys, most of them in folders that do not exist: keys are taken in
    /// key order, each folder is opened once for all the keys below it, and nothing below a
    /// folder found missing is looked up again.
    pub fn delete_each(&self, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        let mut removed = vec![false; keys.len()];
        let Some(root) = self.open_root(false)? else {
            return Ok(removed);
        };
        // A stable sort: of a key named twice, the first is the one removed, as by `delete`.
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
        let mut walked = WalkedFolders::default();
        for at in order {
            let (folder, name) = split_key(&keys[at]);
            if let Some(dir) = walked.open(self, &root, &folder)? {
                removed[at] = self.unlink(dir, name, &keys[at])?;
            }
        }
        Ok(removed)
    }

    /// Remove `name` from the open folder `dir`; whether it was there.
    fn unlink(&self, dir: &OwnedFd, name: &str, key: &str) -> Result<bool, StoreError> {
        let c = c_name(name).map_err(|e| self.io_error(key, e))?;
        // SAFETY: `dir` is an open folder and `c` NUL-terminated.
        match cvt_unit(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) }) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error(key, e)),
        }
    }

    /// Remove the temporary files this store's writers left in `folder` (a process killed
    /// between creating one and renaming it) that are older than `min_age`: a concurrent
    /// writer's fresh temporary is never touched. Returns the names removed.
    pub fn remove_stale_temporaries(
        &self,
        folder: &str,
        min_age: std::time::Duration,
    ) -> Result<Vec<String>, StoreError> {
        let segments = split(folder.trim_end_matches('/'));
        let Some(dir) = self.open_folder(&segments, false)? else {
            return Ok(Vec::new());
        };
        let listed = self.list(folder)?;
        let now = std::time::SystemTime::now();
        let mut removed = Vec::new();
        for (name, _) in &listed.objects {
            if !is_temporary_name(name) {
                continue;
            }
            let path = self.root.join(folder).join(name);
            let old = std::fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= min_age));
            if old && let Ok(c) = c_name(name) {
                unlinkat(&dir, &c);
                removed.push(name.clone());
            }
        }
        Ok(removed)
    }

    /// `remove_stale_temporaries`, with each file removed logged and a failure warned of (a
    /// leftover temporary costs only disk space: never an error of the run).
    pub fn sweep_stale_temporaries(&self, folder: &str, min_age: std::time::Duration) {
        let folder = folder.trim_end_matches('/');
        match self.remove_stale_temporaries(folder, min_age) {
            Ok(removed) => {
                for name in removed {
                    tracing::info!(
                        "removed {}: a temporary file an earlier run left",
                        self.root.join(folder).join(name).display()
                    );
                }
            }
            Err(e) => tracing::warn!(
                "could not clean temporary files of {}: {e}",
                self.root.join(folder).display()
            ),
        }
    }

    /// The folder of a key to be written, created if missing.
    fn writable_folder(&self, folder: &[&str], key: &str) -> Result<OwnedFd, StoreError> {
        self.open_folder(folder, true)?
            .ok_or_else(|| self.io_error(key, std::io::ErrorKind::NotFound.into()))
    }

    /// A new temporary file beside `name` holding `bytes` (synced when `durable`); its name.
    fn write_temporary(
        &self,
        dir: &OwnedFd,
        name: &str,
        bytes: &[u8],
        durable: bool,
        key: &str,
    ) -> Result<CString, StoreError> {
        let temporary = c_name(&temporary_name(name)).map_err(|e| self.io_error(key, e))?;
        let flags = libc::O_WRONLY
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_NOFOLLOW
            | libc::O_NOCTTY
            | libc::O_CLOEXEC;
        let fd = openat(dir, &temporary, flags, 0o644).map_err(|e| self.io_error(key, e))?;
        let mut file = std::fs::File::from(fd);
        let written = file
            .write_all(bytes)
            .and_then(|()| if durable { file.sync_all() } else { Ok(()) });
        if let Err(e) = written {
            unlinkat(dir, &temporary);
            return Err(self.io_error(key, e));
        }
        Ok(temporary)
    }
}

/// `.NAME.<random>.tmp`: hidden (Athena and the report skip it) and unpredictable.
fn temporary_name(name: &str) -> String {
    format!(".{name}.{}{TEMPORARY_SUFFIX}", random_token())
}

/// Whether `name` is one of this store's temporary names (or the older `.NAME.PID.tmp`).
pub fn is_temporary_name(name: &str) -> bool {
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMPORARY_SUFFIX))
    else {
        return false;
    };
    inner.rsplit_once('.').is_some_and(|(stem, tag)| {
        !stem.is_empty() && !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A digest of an object's bytes, its local ETag.
fn digest(bytes: &[u8]) -> String {
    crate::model::uuid_v5(&crate::model::ID_NAMESPACE, &[bytes])
        .simple()
        .to_string()
}

/// An exclusive `flock` of a folder, released when dropped (or when the process dies).
struct FolderLock {
    fd: OwnedFd,
}

impl FolderLock {
    fn take(dir: &OwnedFd) -> std::io::Result<FolderLock> {
        let fd = dir.try_clone()?;
        loop {
            // SAFETY: `fd` is an open descriptor.
            match cvt_unit(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) }) {
                Ok(()) => return Ok(FolderLock { fd }),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // SAFETY: `fd` is an open descriptor.
        unsafe { libc::flock(self.fd.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The folders of the last key's path that `LocalDir::delete_each` walked, kept for the next
/// key: each opened, except a last one found missing.
#[derive(Default)]
struct WalkedFolders {
    names: Vec<String>,
    opened: Vec<OwnedFd>,
}

impl WalkedFolders {
    /// The folder of `segments` below `root`, opening only what the last path did not share;
    /// `None` if it (or a folder above it) does not exist.
    fn open<'w>(
        &'w mut self,
        dir: &LocalDir,
        root: &'w OwnedFd,
        segments: &[&str],
    ) -> Result<Option<&'w OwnedFd>, StoreError> {
        let shared = (self.names.iter().zip(segments))
            .take_while(|(walked, segment)| walked == segment)
            .count();
        let missing_above = self.opened.len() < self.names.len() && shared == self.names.len();
        if missing_above {
            return Ok(None);
        }
        self.names.truncate(shared);
        self.opened.truncate(shared);
        for i in shared..segments.len() {
            let parent = self.opened.last().unwrap_or(root);
            let child = dir.open_child(parent, &segments[..=i], false)?;
            self.names.push(segments[i].to_owned());
            match child {
                Some(fd) => self.opened.push(fd),
                None => return Ok(None),
            }
        }
        Ok(Some(self.opened.last().unwrap_or(root)))
    }
}

fn split(folder: &str) -> Vec<&str> {
    folder.split('/').filter(|s| !s.is_empty()).collect()
}

/// A key's folders and its name.
fn split_key(key: &str) -> (Vec<&str>, &str) {
    match key.rsplit_once('/') {
        Some((folder, name)) => (split(folder), name),
        None => (Vec::new(), key),
    }
}

fn c_name(name: &str) -> std::io::Result<CString> {
    CString::new(name).map_err(|_| std::io::ErrorKind::InvalidInput.into())
}

fn cvt(fd: RawFd) -> std::io::Result<OwnedFd> {
    if fd >= 0 {
        // SAFETY: a descriptor just returned by the kernel, owned by nothing else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn cvt_unit(result: libc::c_int) -> std::io::Result<()> {
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn openat(
    dir: &OwnedFd,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::io::Result<OwnedFd> {
    loop {
        // SAFETY: `dir` is an open folder and `name` NUL-terminated.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags,
                libc::c_uint::from(mode),
            )
        };
        match cvt(fd) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn renameat(dir: &OwnedFd, from: &CStr, to: &CStr) -> std::io::Result<()> {
    // SAFETY: `dir` is an open folder; both names are NUL-terminated.
    cvt_unit(unsafe {
        libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr())
    })
}

/// Best-effort removal (of a temporary file).
fn unlinkat(dir: &OwnedFd, name: &CStr) {
    // SAFETY: `dir` is an open folder and `name` NUL-terminated.
    unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
}

/// `O_NOFOLLOW` on a link answers `ELOOP`; `O_DIRECTORY` on a non-folder `ENOTDIR`.
fn is_not_plain(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Folder,
    File,
    Link,
    Special,
    Unknown,
}

fn lstat(dir: &OwnedFd, name: &CStr) -> Option<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is open, `name` NUL-terminated, `st` large enough for a `stat`.
    let ok = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } == 0;
    // SAFETY: filled by a successful `fstatat`.
    ok.then(|| unsafe { st.assume_init() })
}

fn stat_kind(dir: &OwnedFd, name: &CStr) -> Kind {
    match lstat(dir, name).map(|st| st.st_mode & libc::S_IFMT) {
        Some(libc::S_IFDIR) => Kind::Folder,
        Some(libc::S_IFREG) => Kind::File,
        Some(libc::S_IFLNK) => Kind::Link,
        Some(_) => Kind::Special,
        None => Kind::Unknown,
    }
}

fn stat_size(dir: &OwnedFd, name: &CStr) -> Option<u64> {
    lstat(dir, name).map(|st| st.st_size as u64)
}

/// What the entry `name` of `dir` is, for an error message.
fn entry_kind(dir: &OwnedFd, name: &CStr) -> Option<&'static str> {
    match stat_kind(dir, name) {
        Kind::Link => Some(SYMBOLIC_LINK),
        Kind::File => Some(NOT_A_FOLDER),
        Kind::Special => Some(SPECIAL_FILE),
        Kind::Folder | Kind::Unknown => None,
    }
}

/// Call `each` with every entry of the open folder `dir` (not `.` or `..`) and its type as
/// the folder reports it.
fn for_each_entry(dir: &OwnedFd, mut each: impl FnMut(&CStr, Kind)) -> std::io::Result<()> {
    let copy = dir.try_clone()?;
    // SAFETY: `fdopendir` takes ownership of the descriptor on success (released by
    // `closedir` below); on failure it is still ours, so it is dropped normally.
    let stream = unsafe { libc::fdopendir(copy.as_raw_fd()) };
    if stream.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    std::mem::forget(copy);
    loop {
        // SAFETY: `stream` is an open directory stream; an entry is valid until the next call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: `entry` points to a valid `dirent` whose name is NUL-terminated.
        let (name, kind) = unsafe { (CStr::from_ptr((*entry).d_name.as_ptr()), (*entry).d_type) };
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let kind = match kind {
            libc::DT_DIR => Kind::Folder,
            libc::DT_REG => Kind::File,
            libc::DT_LNK => Kind::Link,
            libc::DT_UNKNOWN => Kind::Unknown,
            _ => Kind::Special,
        };
        each(name, kind);
    }
    // SAFETY: `stream` came from `fdopendir` and is closed once.
    unsafe { libc::closedir(stream) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path().join("out"));
        (dir, store)
    }

    #[test]
    fn puts_gets_lists_and_deletes() {
        let (_dir, s) = store();
        assert_eq!(s.get("a/b/c.json", 100).unwrap(), None);
        assert_eq!(s.list("a/").unwrap(), Folder::default());
        s.put("a/b/c.json", b"one").unwrap();
        s.put("a/b/c.json", b"two").unwrap();
        s.put("a/d.json", b"three").unwrap();
        assert_eq!(s.get("a/b/c.json", 100).unwrap().unwrap().bytes, b"two");
        let listed = s.list("a/").unwrap();
        assert_eq!(listed.folders, ["b"]);
        assert_eq!(listed.objects, [("d.json".to_owned(), 5)]);
        assert!(listed.others.is_empty());
        assert!(s.delete("a/d.json").unwrap());
        assert!(!s.delete("a/d.json").unwrap());
        assert!(!s.delete("x/y.json").unwrap());
        // No temporary file is left behind.
        assert_eq!(s.list("a/b/").unwrap().objects.len(), 1);
    }

    #[test]
    fn delete_each_answers_as_delete_does_in_the_keys_order() {
        let (dir, s) = store();
        assert_eq!(s.delete_each(&["a/b.json".to_owned()]).unwrap(), [false]);
        let present = [
            "a/b/1.json",
            "a/b/2.json",
            "a/c/3.json",
            "top.json",
            "z/y/x/4.json",
        ];
        let keys = [
            "z/y/x/4.json",
            "a/b/2.json",
            "a/missing/deeper/5.json",
            "a/b/1.json",
            "a/missing/6.json",
            "a/b/1.json",
            "a/bb/7.json",
            "top.json",
            "a/c/3.json",
            "a/c/nothing.json",
            "z/y/8.json",
        ]
        .map(str::to_owned);
        let fresh = tempfile::tempdir().unwrap();
        let one_by_one = LocalDir::new(fresh.path().to_owned());
        for key in present {
            s.put(key, b"x").unwrap();
            one_by_one.put(key, b"x").unwrap();
        }
        let expected: Vec<bool> = (keys.iter())
            .map(|key| one_by_one.delete(key).unwrap())
            .collect();
        // Each key as `delete` answers it, a key named twice removed once, whatever the order.
        let removed = s.delete_each(&keys).unwrap();
        assert_eq!(removed, expected);
        assert_eq!(removed.iter().filter(|r| **r).count(), 5);
        assert!(s.list("a/b/").unwrap().objects.is_empty());
        // A link on the way is refused by its name, as by `delete`; its target is untouched.
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("v.json"), b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, s.root().join("l")).unwrap();
        let err = s
            .delete_each(&["a/x.json".to_owned(), "l/v.json".to_owned()])
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::NotPlain { what: SYMBOLIC_LINK, location } if location.ends_with("/l")),
            "{err}"
        );
        assert!(victim.join("v.json").exists());
    }

    #[test]
    fn reads_are_capped() {
        let (_dir, s) = store();
        s.put("f", &[7; 10]).unwrap();
        assert!(s.get("f", 10).is_ok());
        assert!(matches!(
            s.get("f", 9),
            Err(StoreError::TooLarge {
                size: 10,
                cap: 9,
                ..
            })
        ));
    }

    #[test]
    fn links_inside_the_store_are_never_followed() {
        let (dir, s) = store();
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("file"), b"precious").unwrap();
        std::fs::create_dir_all(s.root()).unwrap();
        std::os::unix::fs::symlink(&victim, s.root().join("AWSLogs")).unwrap();
        std::os::unix::fs::symlink(victim.join("file"), s.root().join("f.json")).unwrap();
        let err = s.put("AWSLogs/x.json.gz", b"x").unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotPlain {
                    what: SYMBOLIC_LINK,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("AWSLogs"), "{err}");
        assert!(!victim.join("x.json.gz").exists());
        assert!(matches!(
            s.get("f.json", 100),
            Err(StoreError::NotPlain { .. })
        ));
        assert!(matches!(
            s.get("AWSLogs/file", 100),
            Err(StoreError::NotPlain { .. })
        ));
        // Replacing a planted link replaces the link, never its target.
        s.put("f.json", b"new").unwrap();
        assert_eq!(std::fs::read(victim.join("file")).unwrap(), b"precious");
        let listed = s.list("").unwrap();
        assert_eq!(listed.others, [("AWSLogs".to_owned(), SYMBOLIC_LINK)]);
    }

    #[test]
    fn fifos_are_named_and_never_opened() {
        let (_dir, s) = store();
        std::fs::create_dir_all(s.root()).unwrap();
        let fifo = s.root().join("p.json.gz");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo here
        }
        assert!(matches!(
            s.get("p.json.gz", 100),
            Err(StoreError::NotPlain {
                what: SPECIAL_FILE,
                ..
            })
        ));
        assert_eq!(
            s.list("").unwrap().others,
            [("p.json.gz".to_owned(), SPECIAL_FILE)]
        );
    }

    #[test]
    fn conditional_puts_create_whole_or_replace_only_what_was_read() {
        let (_dir, s) = store();
        let first = s.put_if("lock", b"mine", &Precondition::Absent).unwrap();
        let Put::Written(Some(tag)) = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            s.put_if("lock", b"theirs", &Precondition::Absent).unwrap(),
            Put::ConditionFailed
        );
        assert_eq!(s.get("lock", 100).unwrap().unwrap().etag, Some(tag.clone()));
        let stale = Precondition::Matches("0".repeat(32));
        assert_eq!(
            s.put_if("lock", b"theirs", &stale).unwrap(),
            Put::ConditionFailed
        );
        assert!(matches!(
            s.put_if("lock", b"next", &Precondition::Matches(tag))
                .unwrap(),
            Put::Written(_)
        ));
        assert_eq!(s.get("lock", 100).unwrap().unwrap().bytes, b"next");
        assert_eq!(
            s.put_if("none", b"x", &Precondition::Matches("1".into()))
                .unwrap(),
            Put::ConditionFailed
        );
    }

    #[test]
    fn of_many_racing_creators_exactly_one_wins() {
        let (_dir, s) = store();
        for round in 0..20 {
            let key = format!("locks/l{round}");
            let winners: usize = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..8)
                    .map(|i| {
                        let (s, key) = (&s, &key);
                        scope.spawn(move || {
                            let body = format!("racer {i}\n");
                            matches!(
                                s.put_if(key, body.as_bytes(), &Precondition::Absent),
                                Ok(Put::Written(_))
                            )
                        })
                    })
                    .collect();
                racers
                    .into_iter()
                    .map(|r| usize::from(r.join().unwrap()))
                    .sum()
            });
            assert_eq!(winners, 1, "round {round}");
            let body = s.get(&key, 100).unwrap().unwrap().bytes;
            assert!(
                body.starts_with(b"racer ") && body.ends_with(b"\n"),
                "{body:?}"
            );
        }
    }

    #[test]
    fn temporary_names_are_unpredictable_and_recognised() {
        let a = temporary_name("x.json.gz");
        assert_ne!(a, temporary_name("x.json.gz"));
        assert!(is_temporary_name(&a), "{a}");
        assert!(
            is_temporary_name(".x.json.gz.12345.tmp"),
            "the older pid form"
        );
        for other in [
            "x.json.gz",
            ".x.tmp",
            "x.1.tmp",
            ".hidden",
            ".x.json.gz.zz.tmp",
        ] {
            assert!(!is_temporary_name(other), "{other}");
        }
    }

    #[test]
    fn stale_temporaries_are_removed_but_fresh_ones_kept() {
        let (_dir, s) = store();
        s.put("d/keep.json", b"x").unwrap();
        std::fs::write(
            s.root().join("d/.keep.json.123.tmp"),
            b"left by a killed run",
        )
        .unwrap();
        assert!(
            s.remove_stale_temporaries("d/", std::time::Duration::from_secs(3600))
                .unwrap()
                .is_empty()
        );
        let removed = s
            .remove_stale_temporaries("d/", std::time::Duration::ZERO)
            .unwrap();
        assert_eq!(removed, [".keep.json.123.tmp"]);
        assert_eq!(s.list("d/").unwrap().objects, [("keep.json".to_owned(), 1)]);
    }
}
