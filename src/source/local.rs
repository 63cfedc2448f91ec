//! A local directory laid out exactly as CloudTrail delivers to S3.
//!
//! The walker finds every `AWSLogs/` folder under the root (behind any prefix), then descends
//! only through folders the layout allows (organization, account, `CloudTrail`, region) and
//! opens only the day folders a run asks for. Symbolic links are followed, also when they lead out
//! of the root (an archive assembled from links to other disks is read as it looks; the source is
//! only ever read, and nothing is written from its paths). Every prefix folder is visited at most
//! once and the layout below `AWSLogs/` has a fixed depth, so a link loop cannot make the walk
//! endless; in a day folder, a link that loops or leads nowhere, a sub-folder, a FIFO or a
//! device is named and ignored, never opened. A day folder's files are listed by the type its
//! entries give, without asking each for its size (a system call an object, as much as reading
//! a small one costs); objects are read with a cap on their size.

use super::layout::{self, AWSLOGS, CLOUDTRAIL, PartitionFilter};
use super::{Listing, ListingBuilder, SourceError};
use crate::model::problem::SkipReason;
use crate::model::{ObjectRef, Partition};
use chrono::NaiveDate;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// How deep below the root an `AWSLogs/` folder may sit (the depth of the trail's prefix).
pub const MAX_PREFIX_DEPTH: usize = 8;

#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub fn new(root: PathBuf) -> LocalSource {
        LocalSource { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every (prefix, organization, account, region) under the root that the filter wants.
    pub async fn partitions(
        &self,
        filter: &PartitionFilter,
    ) -> Result<Vec<Partition>, SourceError> {
        let mut found = BTreeSet::new();
        for (prefix, awslogs) in self.find_awslogs().await? {
            for (org_id, account_dir, account) in self.accounts(&awslogs).await? {
                if !filter.wants_account(&account) {
                    continue;
                }
                let trail_dir = account_dir.join(CLOUDTRAIL);
                for region in self.child_dirs(&trail_dir).await? {
                    if layout::is_region(&region) && filter.wants(&account, &region) {
                        found.insert(Partition {
                            prefix: prefix.clone(),
                            org_id: org_id.clone(),
                            account: account.clone(),
                            region,
                        });
                    }
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    /// The delivery days present for a partition.
    pub async fn days(&self, partition: &Partition) -> Result<Vec<NaiveDate>, SourceError> {
        let region_dir = self.root.join(partition.log_prefix());
        let mut days = Vec::new();
        for year in self.child_dirs(&region_dir).await? {
            for month in self.child_dirs(&region_dir.join(&year)).await? {
                for day in self
                    .child_dirs(&region_dir.join(&year).join(&month))
                    .await?
                {
                    if let Some(date) = layout::parse_folder_day(&year, &month, &day) {
                        days.push(date);
                    }
                }
            }
        }
        days.sort();
        Ok(days)
    }

    /// The files of one delivery day folder, sorted by key. A missing folder is an empty day.
    /// The folder is read in one blocking call: a day folder holds hundreds of files, and one
    /// thread hand-off per file costs more than the reading.
    pub async fn objects(
        &self,
        partition: &Partition,
        day: NaiveDate,
    ) -> Result<Listing, SourceError> {
        let mut listed = self.objects_of(&[(partition, day)]).await;
        listed.pop().unwrap_or_else(|| Ok(Listing::default()))
    }

    /// `objects` of each of `folders` (a partition and a day), in their order, in one blocking
    /// call: an organization's day is a thousand folders of a few dozen files, and a thread
    /// handoff for each cost as much as listing it.
    pub async fn objects_of(
        &self,
        folders: &[(&Partition, NaiveDate)],
    ) -> Vec<Result<Listing, SourceError>> {
        let dirs: Vec<(PathBuf, String)> = folders
            .iter()
            .map(|(partition, day)| {
                let prefix = partition.day_prefix(*day);
                (self.root.join(&prefix), prefix)
            })
            .collect();
        let count = dirs.len();
        let listed = tokio::task::spawn_blocking(move || {
            dirs.iter()
                .map(|(dir, prefix)| {
                    let _waiting = crate::telemetry::waiting::on_folder(dir);
                    list_folder(dir, prefix)
                })
                .collect()
        });
        listed.await.unwrap_or_else(|e| {
            let failed = || SourceError::list(String::new(), std::io::Error::other(e.to_string()));
            (0..count).map(|_| Err(failed())).collect()
        })
    }

    /// The path of an object, for reading it on a blocking thread with its decoding.
    pub fn path(&self, object: &ObjectRef) -> PathBuf {
        let mut path = self.root.join(&object.folder().key);
        path.push(object.name());
        path
    }

    /// The bytes of one object, read on a blocking thread by `read_object` (at most `cap`).
    pub async fn fetch(&self, object: &ObjectRef, cap: u64) -> Result<Vec<u8>, ReadError> {
        let path = self.path(object);
        tokio::task::spawn_blocking(move || read_object(&path, cap))
            .await
            .map_err(|e| ReadError::Io(std::io::Error::other(e)))?
    }

    /// Breadth-first search for `AWSLogs` folders, returning (prefix, path).
    async fn find_awslogs(&self) -> Result<Vec<(String, PathBuf)>, SourceError> {
        let mut found = Vec::new();
        let mut visited = HashSet::new();
        let mut level = vec![(String::new(), self.root.clone())];
        for _ in 0..=MAX_PREFIX_DEPTH {
            let mut next = Vec::new();
            for (prefix, dir) in level {
                let canonical = tokio::fs::canonicalize(&dir).await.unwrap_or(dir.clone());
                if !visited.insert(canonical) {
                    continue;
                }
                for name in self.child_dirs(&dir).await? {
                    if name == AWSLOGS {
                        found.push((prefix.clone(), dir.join(&name)));
                    } else if !name.starts_with('.') {
                        next.push((format!("{prefix}{name}/"), dir.join(&name)));
                    }
                }
            }
            level = next;
        }
        found.sort();
        Ok(found)
    }

    /// The accounts under an `AWSLogs` folder: (org, account folder, account).
    async fn accounts(
        &self,
        awslogs: &Path,
    ) -> Result<Vec<(Option<String>, PathBuf, String)>, SourceError> {
        let mut accounts = Vec::new();
        for name in self.child_dirs(awslogs).await? {
            if layout::is_account(&name) {
                accounts.push((None, awslogs.join(&name), name));
            } else if layout::is_org_id(&name) {
                let org_dir = awslogs.join(&name);
                for account in self.child_dirs(&org_dir).await? {
                    if layout::is_account(&account) {
                        accounts.push((Some(name.clone()), org_dir.join(&account), account));
                    }
                }
            }
        }
        Ok(accounts)
    }

    /// Names of the sub-folders of `dir` (following links), sorted; none if it does not exist.
    async fn child_dirs(&self, dir: &Path) -> Result<Vec<String>, SourceError> {
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
            Err(e) => return Err(SourceError::list(dir.display().to_string(), e)),
        };
        let mut names = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| SourceError::list(dir.display().to_string(), e))?
        {
            let is_dir = tokio::fs::metadata(entry.path())
                .await
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if is_dir {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Why an entry of a day folder that cannot be followed (a dangling or looping link) is ignored.
pub const BROKEN_LINK: &str = "a broken or looping symbolic link";
/// Why a sub-folder of a day folder is ignored (CloudTrail writes only files there).
pub const DIRECTORY: &str = "a directory, not a log file";
/// Why a FIFO, socket or device in a day folder is ignored: never opened, so it cannot hang a run.
pub const SPECIAL_FILE: &str = "not a regular file (a FIFO, socket or device)";
/// Why a file whose name is not UTF-8 is ignored: it has no S3 key and no stable name.
pub const NON_UTF8_NAME: &str = "a file name that is not UTF-8";

/// List one day folder (blocking). Links are followed; anything that is not a regular file
/// (a folder, a FIFO, a device, a link that leads nowhere or in a circle) is ignored and named,
/// never opened. A regular file is listed without its size (0: `ObjectRef::size`), from the
/// type its entry gives; a link's target with its size, as that is looked up anyway.
fn list_folder(dir: &Path, prefix: &str) -> Result<Listing, SourceError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing::default()),
        Err(e) => return Err(SourceError::list(dir.display().to_string(), e)),
    };
    let dir_display = dir.display().to_string();
    let mut listing = ListingBuilder::new(
        prefix.to_owned(),
        format!("{}/", dir_display.trim_end_matches('/')),
    );
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::list(dir_display.clone(), e))?;
        let mut ignore = |reason: &str| listing.ignore(entry.path().display().to_string(), reason);
        let Ok(name) = entry.file_name().into_string() else {
            ignore(NON_UTF8_NAME);
            continue;
        };
        // The entry's own type (from the folder's listing itself on most file systems), except
        // that a link is followed to what it points to.
        let (file_type, size) = match entry.file_type() {
            Ok(t) if t.is_symlink() => match std::fs::metadata(entry.path()) {
                Ok(meta) => (meta.file_type(), meta.len()),
                Err(_) => {
                    ignore(BROKEN_LINK);
                    continue;
                }
            },
            Ok(t) => (t, 0),
            Err(_) => {
                ignore(BROKEN_LINK);
                continue;
            }
        };
        if file_type.is_dir() {
            ignore(DIRECTORY);
            continue;
        }
        if !file_type.is_file() {
            ignore(SPECIAL_FILE);
            continue;
        }
        listing.add(&name, size);
    }
    Ok(listing.finish())
}

/// Why a local object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Larger on disk than the per-object cap: skipped without reading it.
    #[error(
        "the file is {size} bytes, more than the per-object limit of {cap} bytes \
         (--max-object-bytes); raise it if the file is genuine"
    )]
    TooLarge { size: u64, cap: u64 },
    /// It is no longer a regular file (replaced since the listing): not opened.
    #[error("not a regular file any more (replaced since it was listed?)")]
    NotAFile,
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// A short, stable reason for the run summary (`over the size limit` as for a decompression
    /// bomb); an I/O error is the pipeline's `fetch failed`.
    pub fn reason(&self) -> SkipReason {
        match self {
            ReadError::TooLarge { .. } => SkipReason::OverSizeLimit,
            ReadError::NotAFile => SkipReason::NotARegularFile,
            ReadError::Io(_) => SkipReason::FetchFailed,
        }
    }
}

/// Read one object's bytes, at most `cap` of them: a file larger than the cap is never loaded
/// into memory, and a path that is no longer a regular file (a FIFO put in its place) is opened
/// without waiting (`O_NONBLOCK`) and refused by its type, never read, so the read cannot
/// block. One path lookup: the type and size come from the open file.
pub fn read_object(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    read_open_file(open_object(path)?, cap, Listed::No, &mut bytes)?;
    Ok(bytes)
}

/// Open an object by its whole path, without waiting and never as a controlling terminal.
fn open_object(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Reads objects one after another on one thread, as `read_object` does, but keeps the last
/// object's folder open and opens each file relative to it (a day folder's objects come one
/// after another), so the kernel looks up one name per object, not every folder of the path,
/// and a listed object is read without building its path (`read_listed`).
#[derive(Default)]
pub struct FolderReader {
    /// The open folder: its root and its key below the root (compared as bytes), and its
    /// descriptor.
    folder: Option<(PathBuf, String, std::os::fd::OwnedFd)>,
    name: Vec<u8>,
}

impl FolderReader {
    /// The object at `path`, into `bytes` (replacing what they held), at most `cap` of them.
    pub fn read(&mut self, path: &Path, cap: u64, bytes: &mut Vec<u8>) -> Result<(), ReadError> {
        use std::os::unix::ffi::OsStrExt;
        match (path.parent(), path.file_name()) {
            (Some(folder), Some(name)) => {
                self.read_in(folder, "", &[name.as_bytes()], cap, Listed::No, bytes)
            }
            _ => read_open_file(open_object(path)?, cap, Listed::No, bytes),
        }
    }

    /// A listed object of the local archive at `root` (`LocalSource`), into `bytes` as `read`
    /// does.
    pub fn read_listed(
        &mut self,
        root: &Path,
        object: &ObjectRef,
        cap: u64,
        bytes: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        let name = object.name_parts().map(str::as_bytes);
        let listed = match object.size {
            0 => Listed::File,
            size => Listed::Size(size),
        };
        self.read_in(root, &object.folder().key, &name, cap, listed, bytes)
    }

    /// The object named by the concatenated `name` in the folder `key` below `root`, as
    /// `listed`.
    fn read_in(
        &mut self,
        root: &Path,
        key: &str,
        name: &[&[u8]],
        cap: u64,
        listed: Listed,
        bytes: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        let file = match self.open_folder(root, key) {
            Some(folder) => open_in(folder, name, &mut self.name)?,
            None => {
                use std::os::unix::ffi::OsStrExt;
                let name = name.concat();
                open_object(&root.join(key).join(std::ffi::OsStr::from_bytes(&name)))?
            }
        };
        read_open_file(file, cap, listed, bytes)
    }

    /// The open folder, opened now unless it is the last one; `None` if it cannot be opened
    /// (the object is then opened by its whole path, which names the error).
    fn open_folder(&mut self, root: &Path, key: &str) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        let is_open = |(open_root, open_key, _): &(PathBuf, String, _)| {
            open_key == key && open_root.as_os_str() == root.as_os_str()
        };
        if !self.folder.as_ref().is_some_and(is_open) {
            self.folder = None;
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(root.join(key))
                .ok()?;
            self.folder = Some((root.to_owned(), key.to_owned(), opened.into()));
        }
        self.folder.as_ref().map(|(_, _, fd)| fd.as_raw_fd())
    }
}

/// `openat(folder, name)` (the parts of `name` joined) with `open_object`'s flags.
fn open_in(
    folder: std::os::fd::RawFd,
    name: &[&[u8]],
    buffer: &mut Vec<u8>,
) -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    buffer.clear();
    name.iter().for_each(|part| buffer.extend_from_slice(part));
    buffer.push(0);
    let name = std::ffi::CStr::from_bytes_with_nul(buffer)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    loop {
        // SAFETY: `folder` is an open descriptor (its owner, the `FolderReader`, outlives the
        // call) and `name` a NUL-terminated string; a descriptor returned by `openat` is owned
        // by nothing else.
        let fd = unsafe { libc::openat(folder, name.as_ptr(), flags) };
        if fd >= 0 {
            return Ok(unsafe { std::fs::File::from_raw_fd(fd) });
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// What a listing said of an object about to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    /// Listed at this many bytes.
    Size(u64),
    /// Listed as a regular file, its size not asked for.
    File,
    /// Not listed: read by its path.
    No,
}

/// The first read of an object listed without its size asks for this many bytes at least (or
/// as many as the reading thread's buffer holds, when more): most CloudTrail objects are
/// smaller, so one call reads them whole.
const FIRST_READ: usize = 64 << 10;

/// Read an opened object into `bytes`: refused unless it is a regular file of at most `cap`
/// bytes (by its size now, and by what it yields). A listed object is first read without
/// asking for its type and size, and that is the object when the reads end where its end must
/// be (`read_listed_whole`: a small object costs three system calls with its listed size, four
/// without, where a read by path costs five). Anything else
/// (an error, fewer bytes, more) goes on as for an object read by path, from where those reads
/// stopped.
fn read_open_file(
    file: std::fs::File,
    cap: u64,
    listed: Listed,
    bytes: &mut Vec<u8>,
) -> Result<(), ReadError> {
    use std::io::Read;
    bytes.clear();
    if read_listed_whole(&file, cap, listed, bytes) {
        return Ok(());
    }
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    bytes.reserve((meta.len() as usize).saturating_sub(bytes.len()));
    let left = cap.saturating_add(1).saturating_sub(bytes.len() as u64);
    file.take(left).read_to_end(bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(())
}

/// Whether reading a listed object, at most `cap` bytes of it, got all of it into `bytes`:
/// - listed with its size (at most the cap): one read of a byte more than that, which must end
///   exactly there (a short read, so the end of the file);
/// - listed as a regular file: one read of `FIRST_READ` bytes or more, which must end short of
///   that, then one that must find the end (a short read alone does not prove it on every file
///   system: FUSE and network mounts may return fewer bytes than asked). An empty first read
///   is left to the type check: a FIFO put in the file's place reads as empty too.
fn read_listed_whole(file: &std::fs::File, cap: u64, listed: Listed, bytes: &mut Vec<u8>) -> bool {
    let room_for = |n: usize| n.min(usize::try_from(cap).unwrap_or(usize::MAX).saturating_add(1));
    match listed {
        Listed::Size(size) if size <= cap => {
            read_once(file, size as usize + 1, bytes).is_ok_and(|n| n as u64 == size)
        }
        Listed::File => {
            let room = room_for(bytes.capacity().max(FIRST_READ));
            read_once(file, room, bytes).is_ok_and(|n| n > 0 && n < room)
                && read_once(file, 1, bytes).is_ok_and(|n| n == 0)
        }
        Listed::Size(_) | Listed::No => false,
    }
}

/// One `read` of at most `most` bytes, appended to `bytes` (retried if interrupted before
/// reading anything): how many it read. Into the vector's spare room, so the buffer is not
/// zeroed first.
fn read_once(file: &std::fs::File, most: usize, bytes: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    bytes.reserve(most);
    let room = &mut bytes.spare_capacity_mut()[..most];
    loop {
        // SAFETY: `room` is writable memory of `room.len()` bytes owned by `bytes`, and `file`
        // an open descriptor; `read` writes at most that many bytes into it.
        let n = unsafe { libc::read(file.as_raw_fd(), room.as_mut_ptr().cast(), room.len()) };
        if n >= 0 {
            let n = n as usize;
            // SAFETY: `read` initialised the first `n` bytes of the spare room.
            unsafe { bytes.set_len(bytes.len() + n) };
            return Ok(n);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_regular_files_and_names_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("good.json.gz"), b"x").unwrap();
        std::fs::write(d.join("a b \u{65e5}.json.gz"), b"x").unwrap();
        std::fs::write(d.join("1_CloudTrail-Digest_x.json.gz"), b"x").unwrap();
        std::fs::create_dir(d.join("folder.json.gz")).unwrap();
        std::os::unix::fs::symlink("loop2.json.gz", d.join("loop1.json.gz")).unwrap();
        std::os::unix::fs::symlink("loop1.json.gz", d.join("loop2.json.gz")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", d.join("dangling.json.gz")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join("pipe.json.gz"))
            .status();
        let non_utf8 =
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad\xff.json.gz");
        std::fs::write(d.join(non_utf8), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("good.json.gz"), d.join("link.json.gz")).unwrap();
        let listing = list_folder(d, "P/").unwrap();
        let keys: Vec<(String, u64)> = listing.objects.iter().map(|o| (o.key(), o.size)).collect();
        // A file without its size (not asked for); a link's target with it (looked up anyway).
        assert_eq!(
            keys,
            [
                ("P/a b \u{65e5}.json.gz".into(), 0),
                ("P/good.json.gz".into(), 0),
                ("P/link.json.gz".into(), 1)
            ]
        );
        let mut reasons: Vec<(String, &str)> = listing
            .ignored
            .iter()
            .map(|i| {
                let name = Path::new(&i.display).file_name().unwrap();
                (name.to_string_lossy().into_owned(), i.reason.as_str())
            })
            .collect();
        reasons.sort();
        let mut want = vec![
            (
                "1_CloudTrail-Digest_x.json.gz".to_owned(),
                layout::DIGEST_FILE,
            ),
            ("bad\u{fffd}.json.gz".to_owned(), NON_UTF8_NAME),
            ("dangling.json.gz".to_owned(), BROKEN_LINK),
            ("folder.json.gz".to_owned(), DIRECTORY),
            ("loop1.json.gz".to_owned(), BROKEN_LINK),
            ("loop2.json.gz".to_owned(), BROKEN_LINK),
        ];
        if fifo.is_ok_and(|s| s.success()) {
            want.push(("pipe.json.gz".to_owned(), SPECIAL_FILE));
        }
        want.sort();
        assert_eq!(reasons, want);
    }

    /// Folders listed together come back each with its own files, in the order asked: a
    /// missing folder is an empty day, one that cannot be read an error of its own.
    #[tokio::test]
    async fn folders_listed_together_keep_their_order_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let partition = |account: &str| Partition {
            prefix: String::new(),
            org_id: None,
            account: account.to_owned(),
            region: "us-east-1".to_owned(),
        };
        let (a, b, c) = (
            partition("111111111111"),
            partition("222222222222"),
            partition("333333333333"),
        );
        let day = crate::model::parse_day("2019-11-07").unwrap();
        let folder = |p: &Partition| dir.path().join(p.day_prefix(day).trim_end_matches('/'));
        std::fs::create_dir_all(folder(&a)).unwrap();
        std::fs::write(folder(&a).join("x.json.gz"), b"x").unwrap();
        std::fs::write(folder(&a).join("y.json.gz"), b"xy").unwrap();
        // `c`'s day folder is a file.
        std::fs::create_dir_all(folder(&c).parent().unwrap()).unwrap();
        std::fs::write(folder(&c), b"not a folder").unwrap();
        let source = LocalSource::new(dir.path().to_owned());
        let listed = source.objects_of(&[(&c, day), (&a, day), (&b, day)]).await;
        assert_eq!(listed.len(), 3);
        assert!(listed[0].is_err(), "{:?}", listed[0]);
        let names = |l: &Result<Listing, SourceError>| -> Vec<(String, u64)> {
            let listing = l.as_ref().unwrap();
            listing.objects.iter().map(|o| (o.name(), o.size)).collect()
        };
        assert_eq!(
            names(&listed[1]),
            [("x.json.gz".into(), 0), ("y.json.gz".into(), 0)]
        );
        assert_eq!(names(&listed[2]), []);
        assert_eq!(names(&source.objects(&a, day).await), names(&listed[1]));
    }

    #[test]
    fn an_oversized_file_is_counted_like_a_decompression_bomb() {
        let bomb =
            crate::decode::DecodeError::Gzip(crate::decode::gzip::GzipError::TooLarge { cap: 1 });
        assert_eq!(
            ReadError::TooLarge { size: 2, cap: 1 }.reason(),
            bomb.reason()
        );
    }

    #[test]
    fn reads_at_most_the_cap_and_never_reads_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.json");
        std::fs::write(&small, b"0123456789").unwrap();
        let sparse = dir.path().join("sparse.json.gz");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let fifo = dir.path().join("pipe.json.gz");
        let has_fifo = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        // Each check with `read_object` and with a `FolderReader` (which keeps the folder open).
        let mut folder_reader = FolderReader::default();
        let mut by_folder = |path: &Path, cap: u64| {
            let mut bytes = b"left over".to_vec();
            folder_reader.read(path, cap, &mut bytes).map(|()| bytes)
        };
        type Read<'a> = &'a mut dyn FnMut(&Path, u64) -> Result<Vec<u8>, ReadError>;
        let readers: [Read; 2] = [&mut |path, cap| read_object(path, cap), &mut by_folder];
        for read in readers {
            assert_eq!(read(&small, 10).unwrap(), b"0123456789");
            assert!(matches!(
                read(&small, 9),
                Err(ReadError::TooLarge { size: 10, cap: 9 })
            ));
            // A sparse file far over the cap is refused from its size alone.
            let err = read(&sparse, 1 << 20).unwrap_err();
            assert!(err.to_string().contains("--max-object-bytes"), "{err}");
            if has_fifo {
                assert!(matches!(read(&fifo, 1 << 20), Err(ReadError::NotAFile)));
            }
            assert!(matches!(
                read(&dir.path().join("missing"), 10),
                Err(ReadError::Io(_))
            ));
            assert!(matches!(
                read(&dir.path().join("no folder").join("x.json"), 10),
                Err(ReadError::Io(_))
            ));
        }
    }

    /// Listed objects (names held in parts by their folder) are read by their folder's key and
    /// their name, from folder to folder and back; one removed since it was listed is an error.
    #[test]
    fn a_folder_reader_reads_listed_objects_by_key_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut listings = Vec::new();
        for (folder, names) in [
            (
                "AWSLogs/1/CloudTrail/r/2019/11/07",
                ["1_CT_r_0005Z_a.json.gz", "1_CT_r_0010Z_b.json.gz"],
            ),
            (
                "AWSLogs/1/CloudTrail/r/2019/11/08",
                ["1_CT_r_0005Z_c.json.gz", "1_CT_r_\u{65e5}.json.gz"],
            ),
        ] {
            let path = dir.path().join(folder);
            std::fs::create_dir_all(&path).unwrap();
            for name in names {
                std::fs::write(path.join(name), format!("{folder}/{name}")).unwrap();
            }
            listings.push(list_folder(&path, &format!("{folder}/")).unwrap().objects);
        }
        let (first, second) = (&listings[0], &listings[1]);
        let mut reader = FolderReader::default();
        let mut bytes = Vec::new();
        for object in [&first[0], &second[0], &second[1], &first[1]] {
            reader
                .read_listed(dir.path(), object, 100, &mut bytes)
                .unwrap();
            assert_eq!(bytes, object.key().as_bytes());
        }
        std::fs::remove_file(dir.path().join(first[0].key())).unwrap();
        let err = reader.read_listed(dir.path(), &first[0], 100, &mut bytes);
        assert!(matches!(err, Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound));
    }

    /// A listed object is read whole whatever became of it since the listing: unchanged, grown,
    /// shrunk, emptied, grown over the cap, or replaced by a FIFO or a folder; listed with its
    /// size or without.
    #[test]
    fn a_listed_object_is_read_as_it_is_now_not_as_listed() {
        type Change = fn(&Path);
        let write = |path: &Path, len: usize| std::fs::write(path, vec![b'x'; len]).unwrap();
        let replace_by_fifo: Change = |path| {
            std::fs::remove_file(path).unwrap();
            let made = std::process::Command::new("mkfifo").arg(path).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        };
        let cases: [(&str, Change, Result<usize, &str>); 7] = [
            ("unchanged", |_| {}, Ok(100)),
            (
                "grown",
                |p| std::fs::write(p, vec![b'x'; 150]).unwrap(),
                Ok(150),
            ),
            (
                "grown by one",
                |p| std::fs::write(p, vec![b'x'; 101]).unwrap(),
                Ok(101),
            ),
            (
                "shrunk",
                |p| std::fs::write(p, vec![b'x'; 60]).unwrap(),
                Ok(60),
            ),
            ("emptied", |p| std::fs::write(p, b"").unwrap(), Ok(0)),
            (
                "over the cap",
                |p| std::fs::write(p, vec![b'x'; 300]).unwrap(),
                Err("too large"),
            ),
            ("a FIFO", replace_by_fifo, Err("not a file")),
        ];
        for ((case, change, want), with_size) in cases
            .into_iter()
            .flat_map(|case| [(case, false), (case, true)])
        {
            let dir = tempfile::tempdir().unwrap();
            write(&dir.path().join("a.json.gz"), 100);
            let mut listed = list_folder(dir.path(), "").unwrap().objects;
            assert_eq!(listed[0].size, 0);
            if with_size {
                listed[0] = ObjectRef::single("a.json.gz", "a.json.gz", 100);
            }
            change(&dir.path().join("a.json.gz"));
            let mut bytes = b"left over".to_vec();
            let got = FolderReader::default()
                .read_listed(dir.path(), &listed[0], 200, &mut bytes)
                .map(|()| bytes.len());
            let got = got.map_err(|e| match e {
                ReadError::TooLarge {
                    size: 300,
                    cap: 200,
                } => "too large",
                ReadError::NotAFile => "not a file",
                other => panic!("{case}: {other}"),
            });
            assert_eq!(got, want, "{case}");
            if want.is_ok() {
                assert!(bytes.iter().all(|b| *b == b'x'), "{case}");
            }
        }
        // A folder in the listed file's place is refused as no file, after one failed read.
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.json.gz"), 10);
        let listed = list_folder(dir.path(), "").unwrap().objects;
        std::fs::remove_file(dir.path().join("a.json.gz")).unwrap();
        std::fs::create_dir(dir.path().join("a.json.gz")).unwrap();
        let mut bytes = Vec::new();
        let got = FolderReader::default().read_listed(dir.path(), &listed[0], 200, &mut bytes);
        assert!(matches!(got, Err(ReadError::NotAFile)), "{got:?}");
        // Listed without its size and larger than one first read: read on to its end.
        let dir = tempfile::tempdir().unwrap();
        let large: Vec<u8> = (0..FIRST_READ * 3 + 7).map(|n| n as u8).collect();
        std::fs::write(dir.path().join("a.json.gz"), &large).unwrap();
        let listed = list_folder(dir.path(), "").unwrap().objects;
        let mut bytes = Vec::new();
        FolderReader::default()
            .read_listed(dir.path(), &listed[0], 1 << 20, &mut bytes)
            .unwrap();
        assert!(bytes == large, "{} bytes of {}", bytes.len(), large.len());
    }

    #[test]
    fn a_folder_reader_follows_its_objects_from_folder_to_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("x.json"), b"in a").unwrap();
        std::fs::write(b.join("x.json"), b"in b").unwrap();
        std::os::unix::fs::symlink(a.join("x.json"), b.join("link.json")).unwrap();
        let mut reader = FolderReader::default();
        let mut bytes = Vec::new();
        for (path, expected) in [
            (a.join("x.json"), "in a"),
            (b.join("x.json"), "in b"),
            (b.join("link.json"), "in a"),
            (a.join("x.json"), "in a"),
        ] {
            reader.read(&path, 100, &mut bytes).unwrap();
            assert_eq!(bytes, expected.as_bytes(), "{}", path.display());
        }
        // A folder replaced since it was opened: the new one is read.
        std::fs::rename(&a, dir.path().join("old a")).unwrap();
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("x.json"), b"new a").unwrap();
        reader.read(&b.join("x.json"), 100, &mut bytes).unwrap();
        reader.read(&a.join("x.json"), 100, &mut bytes).unwrap();
        assert_eq!(bytes, b"new a");
    }
}
