"""Running untrusted, model-written code and recording what happened.

Each run gets a fresh temp dir as its cwd (removed afterwards), a new process session, and the
launcher (``sandbox_launch.py``) applies the strongest isolation the OS grants: no network
(network namespace), a private /tmp (mount namespace), rlimits on CPU seconds, address space,
file size, processes and open files, and, when swarm runs as root, a dedicated unprivileged uid
so the process limit is exact, nothing of the user's is readable, and every process the run
leaves behind (daemons, double forks) can be found and killed. A wall timeout kills the whole
group. Output is captured up to a limit. stdin is closed, the environment scrubbed.

The result's status is one of: ok (exit 0), failed (an assertion failed), error (any other
exception or non-zero exit), timeout (wall or CPU limit), memory (ran out of its memory
limit), killed (died by a signal).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import SandboxError

LAUNCHER = Path(__file__).resolve().parent / "sandbox_launch.py"
STATUSES = ("ok", "failed", "error", "timeout", "memory", "killed")
_UID_BASE = 200_000
_uid_counter = itertools.count()


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024 * 1024
    file_bytes: int = 8 * 1024 * 1024
    processes: int = 32
    output_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Result:
    status: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    isolation: str
    truncated: bool = False
    leftovers_killed: int = 0
    detail: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _reachable_by_others(path: Path) -> bool:
    """Can an unprivileged uid execute ``path`` (every parent directory searchable)?"""
    p = path.resolve()
    try:
        if not p.stat().st_mode & stat.S_IXOTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in p.parents)
    except OSError:
        return False


def _interpreter(drop_privileges: bool) -> str:
    """A Python the sandboxed uid can run: ours if reachable, else the system's."""
    ours = Path(sys.executable)
    if not drop_privileges or _reachable_by_others(ours):
        return str(ours.resolve())
    for cand in (Path(sys.base_prefix) / "bin" / "python3", Path("/usr/bin/python3"), Path("/usr/local/bin/python3")):
        if cand.exists() and _reachable_by_others(cand):
            return str(cand.resolve())
    raise SandboxError("no Python interpreter the sandbox user can execute (tried ours and /usr/bin/python3)")


def _reader(stream: object, limit: int, out: list[bytes], flag: list[bool]) -> None:
    """Keep the first ``limit`` bytes, drain (and drop) the rest so the child never blocks."""
    kept = 0
    read = stream.read  # type: ignore[attr-defined]
    while True:
        chunk = read(65536)
        if not chunk:
            return
        if kept < limit:
            take = chunk[: limit - kept]
            out.append(take)
            kept += len(take)
            if len(take) < len(chunk):
                flag[0] = True
        else:
            flag[0] = True


def _feed(stream: object, data: bytes) -> None:
    """Write ``data`` to the child's stdin and close it; a child that exits early is fine."""
    try:
        stream.write(data)  # type: ignore[attr-defined]
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            stream.close()  # type: ignore[attr-defined]
        except (BrokenPipeError, OSError):
            pass


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                zombie = False
                for line in fh:
                    if line.startswith("State:"):
                        zombie = line.split()[1] in ("Z", "X")  # dead, waiting to be reaped
                    elif line.startswith("Uid:"):
                        if int(line.split()[1]) == uid and not zombie:
                            pids.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return pids


def _kill_uid(uid: int) -> int:
    """SIGKILL every process of ``uid`` until none is left; returns how many were killed."""
    killed = 0
    for _ in range(50):
        pids = _pids_of_uid(uid)
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return killed


def _classify(returncode: int | None, timed_out: bool, stderr: str, limits: Limits) -> tuple[str, str]:
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if timed_out:
        return "timeout", f"wall time over {limits.wall_seconds:g} s"
    if returncode == -signal.SIGXCPU or returncode == 128 + signal.SIGXCPU:
        return "timeout", f"CPU time over {limits.cpu_seconds} s"
    if "MemoryError" in stderr[-2000:] or "Cannot allocate memory" in stderr[-2000:]:
        return "memory", f"address space limit {limits.memory_bytes // 2**20} MiB"
    if returncode == 0:
        return "ok", ""
    if returncode is not None and returncode < 0:
        sig = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else str(-returncode)
        return "killed", f"died by signal {sig}"
    if tail.startswith("AssertionError"):
        return "failed", tail
    return "error", tail or f"exit status {returncode}"


def isolation_available() -> str:
    """The isolation level a run gets on this machine (runs ``true`` in the sandbox)."""
    return run_python("pass").isolation


def run_python(
    code: str,
    *,
    limits: Limits = Limits(),
    files: dict[str, str] | None = None,
    argv: list[str] | None = None,
    stdin: str | None = None,
) -> Result:
    """Run ``code`` as ``main.py`` in a fresh sandbox and return what happened.

    ``files`` are extra text files written beside it (e.g. a test harness); ``stdin`` is what
    the program reads on its standard input (closed and empty when None). Raises SandboxError
    only when the sandbox itself cannot start.
    """
    drop = os.geteuid() == 0
    uid = _UID_BASE + (os.getpid() * 97 + next(_uid_counter)) % 60_000 if drop else None
    workdir = Path(tempfile.mkdtemp(prefix="swarm-sbx-"))
    try:
        (workdir / "main.py").write_text(code)
        for name, text in (files or {}).items():
            if "/" in name or name.startswith("."):
                raise SandboxError(f"bad sandbox file name {name!r}")
            (workdir / name).write_text(text)
        if uid is not None:
            for p in [workdir, *workdir.iterdir()]:
                os.chown(p, uid, uid)
        level_r, level_w = os.pipe()
        cfg = {
            "level_fd": level_w,
            "cwd": str(workdir),
            "python": _interpreter(drop),
            "argv": ["main.py", *(argv or [])],
            "env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(workdir), "PYTHONHASHSEED": "0"},
            "cpu_seconds": limits.cpu_seconds,
            "memory_bytes": limits.memory_bytes,
            "file_bytes": limits.file_bytes,
            "processes": limits.processes,
            "uid": uid,
            "private_tmp": True,
        }
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(cfg)],
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=(level_w,),
                cwd=str(workdir),
                env={"PATH": "/usr/bin:/bin"},
                preexec_fn=None,
            )
        except OSError as e:
            os.close(level_r)
            os.close(level_w)
            raise SandboxError(f"cannot start the sandbox: {e}") from e
        os.close(level_w)
        # The launcher reports its isolation level on the level pipe, then execs.
        out: list[bytes] = []
        err: list[bytes] = []
        trunc_o, trunc_e = [False], [False]
        readers = [
            threading.Thread(target=_reader, args=(proc.stdout, limits.output_bytes, out, trunc_o), daemon=True),
            threading.Thread(target=_reader, args=(proc.stderr, limits.output_bytes, err, trunc_e), daemon=True),
        ]
        if stdin is not None:
            readers.append(threading.Thread(target=_feed, args=(proc.stdin, stdin.encode()), daemon=True))
        for r in readers:
            r.start()
        timed_out = False
        try:
            proc.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        # Whatever happened, nothing of this run may outlive it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        leftovers = _kill_uid(uid) if uid is not None else 0
        seconds = time.perf_counter() - t0
        for r in readers:
            r.join(timeout=2)
        with os.fdopen(level_r, "rb") as fh:
            level = fh.read().decode(errors="replace").strip() or "none"
        stdout = b"".join(out).decode(errors="replace")
        stderr = b"".join(err).decode(errors="replace")
        if level == "none":  # the launcher died before it could exec the program
            raise SandboxError(f"the sandbox launcher failed: {stderr.strip().splitlines()[-1:] or proc.returncode}")
        status, detail = _classify(proc.returncode, timed_out, stderr, limits)
        return Result(
            status=status,
            returncode=proc.returncode,
            stdout=stdout,
            stderr=stderr,
            seconds=seconds,
            isolation=level,
            truncated=trunc_o[0] or trunc_e[0],
            leftovers_killed=leftovers,
            detail=detail,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
