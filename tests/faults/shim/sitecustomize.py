"""Test-only fault injection, loaded by every Python process of a run through PYTHONPATH.

The fault suite puts this directory first on PYTHONPATH, so the parent, the forkserver and
every worker (fork, forkserver or spawn) import it at start-up. It does nothing unless
``HASHPAR_TEST_FAULT`` is set; then it wraps these seams of the *real* code:

* ``os.read`` and ``os.readv`` as the worker code sees them (the module global ``os`` of
  hashpar.hashing is replaced by a proxy of the real module): when the file being read
  has the base name in an ``ACTION:NAME`` item, ACTION happens inside the process that
  reads it: ``segv`` (a real NULL dereference), ``exit`` (``os._exit(3)``), ``sigkill``
  (the process kills itself), ``raise`` (an ordinary exception);
* ``hashpar.hashing._DirOpener.open``: ``batchraise:DIR`` raises an ordinary exception when a
  worker opens directory DIR, outside the per-file error handling (a bug in the worker
  code, as opposed to a failure reading one file);
* ``hashpar.hashing.list_directory`` (the walk, in whichever process lists a directory):
  ``vanish:NAME`` removes NAME (a file, or a directory with everything in it) right after
  the walk has listed it and before its files are opened;
* ``hashpar.engine._Run`` (the parent's hand-out of tasks): ``pause:N`` writes ``paused`` to
  the trace and sleeps a minute before the Nth task is handed out (1-based; the first is
  the in-process probe, before any worker exists), so a test can signal a run that is in
  the middle of its walk.

``slowstart:SECONDS`` makes every child process (each worker, whatever the start method)
write ``starting`` to the trace and wait that long before it runs anything of hashpar's, so
a test can signal a run while its workers are still starting.

``HASHPAR_TEST_TRACE=FILE`` appends a line to FILE when a directory is listed (``walk``) and for
every file read (``read NAME``), so a test can prove that nothing was walked or read.
None of this is product code: hashpar itself has no test hooks.
"""

from __future__ import annotations

import os

_FAULTS = os.environ.get("HASHPAR_TEST_FAULT", "")
_TRACE = os.environ.get("HASHPAR_TEST_TRACE", "")


def _trace(line: str) -> None:
    if _TRACE:
        with open(_TRACE, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _install() -> None:
    import shutil

    import hashpar.engine
    import hashpar.hashing

    faults = [item.split(":", 1) for item in _FAULTS.split(",") if item]
    real_list_directory = hashpar.hashing.list_directory

    def reading(fd):  # type: ignore[no-untyped-def]
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        _trace(f"read {name}")
        for action, target in faults:
            if target != name:
                continue
            if action == "segv":
                import ctypes

                ctypes.string_at(0)
            elif action == "exit":
                os._exit(3)
            elif action == "sigkill":
                os.kill(os.getpid(), 9)
            elif action == "raise":
                raise RuntimeError(f"injected failure reading {name}")

    def read(fd, size):  # type: ignore[no-untyped-def]
        reading(fd)
        return os.read(fd, size)

    def readv(fd, buffers):  # type: ignore[no-untyped-def]
        reading(fd)
        return os.readv(fd, buffers)

    def list_directory(scope, is_excluded, dir_fd, rel_dir, ancestry, found):  # type: ignore[no-untyped-def]
        _trace("walk")
        names = real_list_directory(scope, is_excluded, dir_fd, rel_dir, ancestry, found)
        for action, target in faults:
            if action != "vanish":
                continue
            if target in names:
                os.unlink(os.path.join(scope.root, rel_dir, target))
            parts = rel_dir.split("/")
            if target in parts:
                top = "/".join(parts[: parts.index(target) + 1])
                shutil.rmtree(os.path.join(scope.root, top), ignore_errors=True)
        return names

    pause = next((int(t) for a, t in faults if a == "pause"), 0)
    handed_out = 0

    def pausing() -> None:
        nonlocal handed_out
        handed_out += 1
        if handed_out == pause:
            _trace("paused")
            import time

            for _ in range(1200):  # short sleeps, like a walk's many short system calls
                time.sleep(0.05)

    real_probe = hashpar.engine._Run.probe
    real_next = hashpar.engine._Run._next

    def probe(self):  # type: ignore[no-untyped-def]
        pausing()
        return real_probe(self)

    def next_task(self):  # type: ignore[no-untyped-def]
        task = real_next(self)
        if task is not None:
            pausing()
        return task

    class _Os:
        """The os module, except for read and readv."""

        def __getattr__(self, name: str) -> object:
            return {"read": read, "readv": readv}.get(name) or getattr(os, name)

    hashpar.hashing.os = _Os()  # type: ignore[assignment]

    real_open_dir = hashpar.hashing._DirOpener.open

    def open_dir(self, rel_dir):  # type: ignore[no-untyped-def]
        if ("batchraise", rel_dir) in [tuple(f) for f in faults]:
            raise RuntimeError(f"injected failure opening {rel_dir}")
        return real_open_dir(self, rel_dir)

    hashpar.hashing._DirOpener.open = open_dir  # type: ignore[method-assign]
    hashpar.hashing.list_directory = list_directory
    hashpar.engine._Run.probe = probe
    hashpar.engine._Run._next = next_task

    slow = next((float(t) for a, t in faults if a == "slowstart"), 0.0)
    if slow:
        import multiprocessing.process
        import time

        real_bootstrap = multiprocessing.process.BaseProcess._bootstrap

        def bootstrap(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            _trace("starting")
            for _ in range(int(slow / 0.05)):
                time.sleep(0.05)
            return real_bootstrap(self, *args, **kwargs)

        multiprocessing.process.BaseProcess._bootstrap = bootstrap


if _FAULTS or _TRACE:
    _install()
