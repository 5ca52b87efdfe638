"""Atomic file writes: every file bigcore writes goes to a temporary file beside the target, which is renamed
over the target only once it is complete, so a crash or a kill at any moment leaves either the old file or the
new one, never half of one.

One temporary-name scheme for every writer: ``.<target name>.<pid>.<thread id>.<counter>.bigcore-tmp`` in the
target's directory, unique per call, so threads and processes saving to one path never share a temporary file
(the last rename wins). A writer holds an exclusive ``flock`` on its temporary file while it writes; the next
write to the same target removes the temporary files of that target that nobody holds (a writer killed
mid-save), and never another tool's files. This module does not know file formats; callers pass a function that
writes the content.
"""

import itertools
import os
import re
import threading

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be deleted there, so a held temporary file is safe anyway
    fcntl = None

_SUFFIX = ".bigcore-tmp"
_counter = itertools.count()


def temp_name(path):
    """A fresh temporary path for ``path``: same directory, the target's name in it, unique per call."""
    head, name = os.path.split(path)
    return os.path.join(head, f".{name}.{os.getpid()}.{threading.get_ident()}.{next(_counter)}{_SUFFIX}")


def _is_our_temp(entry, name):
    """Is ``entry`` (a file name) one of our temporary files for the target called ``name``?"""
    prefix = f".{name}."
    if not (entry.startswith(prefix) and entry.endswith(_SUFFIX)):
        return False
    return re.fullmatch(r"\d+\.\d+\.\d+", entry[len(prefix) : -len(_SUFFIX)]) is not None


def _try_lock(fd):
    """Take an exclusive lock on ``fd`` without waiting; False when another writer holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def remove_stale(path):
    """Remove the temporary files of ``path`` left by writers that died (no one holds their lock)."""
    head, name = os.path.split(path)
    try:
        entries = os.listdir(head or ".")
    except OSError:
        return
    for entry in entries:
        if not _is_our_temp(entry, name):
            continue
        stale = os.path.join(head, entry)
        try:
            fd = os.open(stale, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never wait on a fifo
        except OSError:
            continue  # gone already (renamed by its writer, or removed by another cleaner)
        try:
            if _try_lock(fd) and os.path.exists(stale) and os.path.samestat(os.fstat(fd), os.stat(stale)):
                os.remove(stale)
        except OSError:
            pass  # in use (Windows), or removed meanwhile: either way not ours to worry about
        finally:
            os.close(fd)


def _create(path):
    """Create and lock a new temporary file for ``path``; returns ``(temp path, fd)``.

    Raises the ``OSError`` subclass of the failure (missing directory, permission denied...) naming ``path``,
    not the temporary file the user never asked for.
    """
    while True:
        tmp = temp_name(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue  # a leftover with the same name (a reused pid): take the next counter
        except OSError as e:
            raise type(e)(e.errno, e.strerror, path) from None
        if not _try_lock(fd):  # a cleaner took it between create and lock: it removes it, take another name
            os.close(fd)
            continue
        try:
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return tmp, fd
        except FileNotFoundError:
            pass  # removed by a cleaner before our lock: take another name
        os.close(fd)


def write_all(fd, data):
    """Write all of ``data`` (bytes) to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomically(path, write):
    """Write ``path`` atomically: ``write(fd)`` fills the temporary file through ``fd`` (the file must not be
    replaced: the lock that marks it in use is on it), which is then flushed to disk and renamed over ``path``.
    On any error the temporary file is removed and ``path`` is untouched.

    Raises:
        OSError: the target's directory is missing or not writable (the message names ``path``), or the disk
            is full.
    """
    path = os.fspath(path)
    tmp, fd = _create(path)
    try:
        remove_stale(path)
        write(fd)
        os.fsync(fd)
        if fcntl is None:  # Windows renames no open file (and there no lock is released by closing)
            os.close(fd)
            fd = None
        try:
            os.replace(tmp, path)
        except OSError as e:  # the target is a directory, say: name it, not our temporary file
            raise type(e)(e.errno, e.strerror, path) from None
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    finally:
        if fd is not None:
            os.close(fd)
    _sync_directory(path)


def _sync_directory(path):
    """Make the rename itself durable (POSIX: fsync the directory); best effort."""
    if os.name != "posix":
        return
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
