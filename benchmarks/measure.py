"""Run one command and measure it: wall time, exit status, and the peak memory of its tree.

Two kinds of run, kept apart so that measuring memory never slows a timed run:

* ``timed(argv)``: fork/exec, wait, ``perf_counter`` around both. Nothing polls meanwhile.
* ``sampled(argv)``: the same run while a thread polls ``/proc`` every ``interval`` seconds,
  finds every descendant of the child (through the ppid field of ``/proc/PID/stat``, since
  this kernel has no ``/proc/PID/task/TID/children``) and sums their memory.

What the memory numbers mean, and their limits (also stated in README.md):

* ``peak_rss`` is the largest sum of RSS over the tree seen at one sample. Pages shared
  between processes (the interpreter's text, copy-on-write pages after ``fork``) are counted
  once per process, so this overstates the real footprint of a forked pool.
* ``peak_pss`` is the same sum over PSS (``/proc/PID/smaps_rollup``), which divides each
  shared page among its sharers: the better estimate of what the tree costs the machine.
  A page shared with a process outside the tree (a library's page cache) is only partly
  counted, so it can understate the tree's own resident set.
* ``peak_unique`` is the tree's resident set itself: the physical pages mapped by any of
  its processes, each counted once (frame numbers from ``/proc/PID/pagemap``, which needs
  root; 0 where they cannot be read). Reading them costs milliseconds per process, so it
  is sampled only while the sum of RSS is within 10% of its peak so far, at most a fifth
  of the sampler's time; a sample of one process is its RSS.
* Both are samples: a spike shorter than the interval, or a process that lives less than
  one interval (one ``b3sum`` started by ``xargs`` on a tiny batch), can be missed.
* The kernel's ``ru_maxrss`` is not used: it is the peak of one process, not of the tree, and
  a forked child inherits the high-water mark of the harness that forked it.

Every run also records ``foreign``: the share of the machine's CPU capacity that *other*
processes used while it ran (busy time from ``/proc/stat``, steal included, minus the CPU
time of this harness and of the waited-for process tree, over wall time x cores). On a
shared machine this tells a clean measurement from one that competed with a neighbour;
``run.py`` retries runs above a threshold. Its resolution is one clock tick (10 ms) per
core, so it means little for runs shorter than about 0.2 s. CPU of a descendant that is
never waited for (an orphan reaped by init) counts as foreign.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
_PRESENT = 1 << 63  # /proc/PID/pagemap: bit 63 page present, bits 0-54 its frame number
_PFN_MASK = (1 << 55) - 1
_USER_SPACE_END = 1 << 47
TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


@dataclass(frozen=True)
class RunResult:
    """One run of one command."""

    seconds: float
    returncode: int
    stderr_tail: str
    peak_rss: int = 0  # bytes, sampled sum over the tree (0 when not sampled)
    peak_pss: int = 0  # bytes, sampled sum over the tree (0 when not sampled)
    peak_unique: int = 0  # bytes, resident pages of the tree each counted once (0: unknown)
    samples: int = 0
    foreign: float = 0.0  # share of all cores used by other processes during the run


def _machine_busy() -> float:
    """CPU seconds spent busy by all cores since boot (user, nice, system, irq, softirq,
    steal; idle and iowait excluded)."""
    with open("/proc/stat", "rb") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICK


def _own_cpu() -> float:
    """CPU seconds of this harness plus every waited-for descendant."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _stat_ppid(pid: str) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[1])


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_bytes().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _frames(pid: int) -> set[int] | None:
    """The physical page frames ``pid`` has resident; None when it could not be read whole
    (it exited meanwhile). A set holding 0 means frame numbers are hidden from this user
    (they read as 0 without CAP_SYS_ADMIN)."""
    frames: set[int] = set()
    try:
        with (
            open(f"/proc/{pid}/maps", "rb") as maps,
            open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pagemap,
        ):
            for line in maps:
                start, end = (int(x, 16) for x in line.split(None, 1)[0].split(b"-"))
                if start >= _USER_SPACE_END:  # [vsyscall]: pagemap has nothing for it
                    continue
                pagemap.seek(start // PAGE * 8)
                entries = array("Q")
                entries.frombytes(pagemap.read((end - start) // PAGE * 8))
                frames.update([e & _PFN_MASK for e in entries if e & _PRESENT])
    except (OSError, ValueError):
        return None
    return frames


class TreeSampler(threading.Thread):
    """Poll the process tree under ``root`` and keep the peak sums of RSS and PSS, and
    the peak of its resident pages counted once."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_unique = 0
        self._unique_known = True
        self._next_union = 0.0
        self.samples = 0
        self._stop_event = threading.Event()
        self._ppid: dict[str, int | None] = {}

    def _tree(self) -> list[int]:
        live = [name for name in os.listdir("/proc") if name.isdigit()]
        live_set = set(live)
        for gone in [p for p in self._ppid if p not in live_set]:
            del self._ppid[gone]
        children: dict[int, list[int]] = {}
        for pid in live:
            if pid not in self._ppid:
                self._ppid[pid] = _stat_ppid(pid)
            parent = self._ppid[pid]
            if parent is not None:
                children.setdefault(parent, []).append(int(pid))
        tree: list[int] = []
        todo = [self.root]
        while todo:
            member = todo.pop()
            tree.append(member)
            todo.extend(children.get(member, []))
        return tree

    def run(self) -> None:
        while not self._stop_event.is_set():
            tree = self._tree()
            rss = sum(_rss(p) for p in tree)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, sum(_pss(p) for p in tree))
            if len(tree) == 1:
                self.peak_unique = max(self.peak_unique, rss)
            elif rss >= 0.9 * self.peak_rss and time.perf_counter() >= self._next_union:
                self._sample_union(tree)
            self.samples += 1
            self._stop_event.wait(self.interval)

    def _sample_union(self, tree: list[int]) -> None:
        if not self._unique_known:
            return
        start = time.perf_counter()
        union: set[int] = set()
        for pid in tree:
            frames = _frames(pid)
            if frames is None:  # it exited meanwhile: this sample is not whole
                return
            union |= frames
        if 0 in union:  # frame numbers hidden (not root): not measurable here
            self._unique_known = False
            return
        self.peak_unique = max(self.peak_unique, len(union) * PAGE)
        now = time.perf_counter()
        self._next_union = now + 4 * (now - start)  # at most a fifth of the sampler's time

    def unique(self) -> int:
        """The peak of the tree's resident pages counted once; 0 when not known."""
        return self.peak_unique if self._unique_known else 0

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _run(argv: Sequence[str], cwd: Path | None, interval: float | None) -> RunResult:
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as err:
        busy0, own0 = _machine_busy(), _own_cpu()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=devnull, stderr=err, cwd=cwd
        )
        sampler = TreeSampler(proc.pid, interval) if interval else None
        if sampler:
            sampler.start()
        _, status = os.waitpid(proc.pid, 0)
        seconds = time.perf_counter() - start
        others = (_machine_busy() - busy0) - (_own_cpu() - own0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.stop()
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace").strip()
    return RunResult(
        seconds=seconds,
        returncode=proc.returncode,
        stderr_tail=tail,
        peak_rss=sampler.peak_rss if sampler else 0,
        peak_pss=sampler.peak_pss if sampler else 0,
        peak_unique=sampler.unique() if sampler else 0,
        samples=sampler.samples if sampler else 0,
        foreign=max(0.0, others) / (seconds * NCPU),
    )


def timed(argv: Sequence[str], cwd: Path | None = None) -> RunResult:
    """Run ``argv`` with stdout to /dev/null and nothing polling; return the wall time."""
    return _run(argv, cwd, None)


def sampled(argv: Sequence[str], cwd: Path | None = None, interval: float = 0.002) -> RunResult:
    """Run ``argv`` while sampling the memory of its whole process tree."""
    return _run(argv, cwd, interval)


def timed_call(fn: Callable[[], object]) -> tuple[float, float]:
    """Call ``fn`` in this process; return (wall seconds, other processes' CPU share)."""
    busy0, own0 = _machine_busy(), _own_cpu()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    others = (_machine_busy() - busy0) - (_own_cpu() - own0)
    return seconds, max(0.0, others) / (seconds * NCPU)


def wait_for_quiet(limit: float, timeout: float, window: float = 0.1) -> float:
    """Wait (at most ``timeout`` s) until other processes use at most ``limit`` of the
    machine's CPU over a ``window``; return the last share seen (the run goes ahead anyway)."""
    deadline = time.monotonic() + timeout
    while True:
        busy0, own0 = _machine_busy(), _own_cpu()
        time.sleep(window)
        share = ((_machine_busy() - busy0) - (_own_cpu() - own0)) / (window * NCPU)
        if share <= limit or time.monotonic() >= deadline:
            return max(0.0, share)


class QuietGate:
    """``wait_for_quiet`` before each run, but stop paying the full wait while the machine
    stays busy: after 3 waits in a row that timed out, wait only 0.3 s until one succeeds."""

    def __init__(self, limit: float, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self.misses = 0

    def wait(self) -> None:
        if self.timeout <= 0:
            return
        share = wait_for_quiet(self.limit, self.timeout if self.misses < 3 else 0.3)
        self.misses = self.misses + 1 if share > self.limit else 0


def warm_page_cache(root: Path) -> tuple[int, int]:
    """Read every regular file under ``root`` once; return (files, bytes) read."""
    files = total = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                with open(fd, "rb", buffering=0, closefd=True) as f:
                    while n := f.readinto(view):
                        total += n
            except OSError:
                continue
            files += 1
    return files, total


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2
