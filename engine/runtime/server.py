"""llama.cpp's own ``llama-server``: where swarm finds the binary, how it builds one offline, and
a server process it starts and stops itself (a "launched" endpoint, engine.runtime.http).

The binary is compiled from the llama.cpp sources that llama-cpp-python vendors (its sdist), and
linked against the very libraries the installed llama-cpp-python runs in-process: the same
version and the same kernels, so a round through the server and one in-process compare like for
like. Only llama-server's own code and llama.cpp's ``common`` library are compiled (~70 files,
not the ~200 of a full build); llama, ggml and mtmd come from the wheel and are copied beside the
binary. It is cached per llama-cpp-python version in the user cache dir, so a machine pays once.

``$SWARM_LLAMA_SERVER`` names any other llama-server binary (a CUDA build, a distribution's).
Nothing here runs at play time but the binary: building is an install step (``swarm llama-server
build``), the only one that fetches anything (the sdist, from the package index, when no
``--source`` is given).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import platformdirs

from engine.errors import EngineError
from engine.runtime.cpu_probe import extra_buffers_usable

BINARY = "llama-server"


class ServerError(EngineError):
    """llama-server is missing, would not build, or would not start."""


def llama_cpp_version() -> str:
    from importlib.metadata import version

    return version("llama_cpp_python")


def _wheel_lib() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("llama-cpp-python is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


def server_dir() -> Path:
    """Where the built binary lives: the user cache dir, per llama-cpp-python version."""
    base = os.environ.get("SWARM_TOOLS") or platformdirs.user_cache_dir("swarm", appauthor=False)
    return Path(base).expanduser() / "llama-server" / llama_cpp_version()


def find_server() -> Path | None:
    """The llama-server binary to run: ``$SWARM_LLAMA_SERVER``, else the one ``build_server`` made."""
    env = os.environ.get("SWARM_LLAMA_SERVER")
    if env:
        return Path(env).expanduser()
    p = server_dir() / BINARY
    return p if p.is_file() and os.access(p, os.X_OK) else None


def require_server() -> Path:
    """The binary, or a ServerError that says how to get one."""
    p = find_server()
    if p is None:
        raise ServerError(f"llama-server is not built on this machine (looked in {server_dir()}); build it once "
                          "with `swarm llama-server build` (compiles llama.cpp's server from the sources llama-cpp-python "
                          "vendors, about 10 minutes on 2 cores), or set $SWARM_LLAMA_SERVER to a llama-server binary")
    if not (p.is_file() and os.access(p, os.X_OK)):
        raise ServerError(f"$SWARM_LLAMA_SERVER is not an executable file: {p}")
    return p


def _sdist(source: Path | None, work: Path, log: Callable[[str], None]) -> Path:
    """The llama.cpp source tree: ``source`` (a llama-cpp-python sdist or a llama.cpp checkout),
    else the sdist of the installed version fetched from the package index with pip."""
    if source is not None and source.is_dir():
        tree = source / "vendor" / "llama.cpp" if (source / "vendor" / "llama.cpp").is_dir() else source
        if not (tree / "tools" / "server").is_dir():
            raise ServerError(f"{source} holds no llama.cpp sources with tools/server")
        return tree
    if source is None:
        ver = llama_cpp_version()
        log(f"fetching the llama-cpp-python {ver} sources (sdist) from the package index")
        got = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                              f"llama-cpp-python=={ver}", "-d", str(work)], capture_output=True, text=True)
        if got.returncode != 0:
            raise ServerError(f"pip could not fetch the llama-cpp-python {ver} sources: {got.stderr.strip()[-500:]}")
        found = sorted(work.glob("llama_cpp_python-*.tar.gz"))
        if not found:
            raise ServerError(f"pip fetched no llama-cpp-python sdist into {work}")
        source = found[0]
    log(f"unpacking {source.name}")
    with tarfile.open(source) as tf:
        tf.extractall(work / "src", filter="data")
    trees = list((work / "src").glob("*/vendor/llama.cpp"))
    if not trees:
        raise ServerError(f"{source} holds no vendor/llama.cpp")
    return trees[0]


def build_server(source: Path | None = None, jobs: int | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Compile llama-server (see the module's doc) into ``server_dir()``; returns the binary.
    Needs cmake, ninja and a C++17 compiler. Raises ServerError."""
    for tool in ("cmake", "ninja", "c++"):
        if shutil.which(tool) is None:
            raise ServerError(f"building llama-server needs {tool} on PATH")
    lib = _wheel_lib()
    libs = sorted(p for p in lib.glob("lib*.so*"))
    if not libs:
        raise ServerError(f"the installed llama-cpp-python has no shared libraries in {lib}")
    out = server_dir()
    jobs = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="swarm-llama-server-") as tmp:
        work = Path(tmp)
        tree = _sdist(source, work, log)
        build = work / "build"
        log("configuring (cmake)")
        _run(["cmake", "-S", str(tree), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
              "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
              "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_APP=OFF",
              # offline: no web UI fetched from a bucket, no TLS or curl
              "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF"])
        cmds = _run(["ninja", "-C", str(build), "-t", "commands", BINARY]).splitlines()
        objs = [w for c in cmds for a, w in zip(c.split(), c.split()[1:]) if a == "-o" and w.endswith(".o")]
        # llama, ggml and mtmd come from the wheel: compile only the server and llama.cpp's common code
        own = [o for o in objs if not o.startswith(("src/", "ggml/", "tools/mtmd/"))]
        if not any("tools/server" in o for o in own):
            raise ServerError("the llama.cpp build lists no llama-server objects")
        log(f"compiling {len(own)} files with {jobs} jobs (llama, ggml and mtmd come from llama-cpp-python)")
        _run(["ninja", "-C", str(build), "llama-ui-assets"])
        _run(["ninja", "-C", str(build), f"-j{jobs}", *own])
        staged = work / "out"
        staged.mkdir()
        for p in libs:  # the binary finds them beside itself ($ORIGIN)
            shutil.copy2(p, staged / p.name, follow_symlinks=True)
        log("linking")
        _run(["c++", "-o", str(staged / BINARY), *[str(build / o) for o in own], f"-L{staged}",
              "-l:libllama.so", "-l:libmtmd.so", "-l:libggml.so", "-l:libggml-base.so", "-l:libggml-cpu.so",
              "-Wl,-rpath,$ORIGIN", "-pthread"])
        version = _run([str(staged / BINARY), "--version"], check=False)
        (staged / "BUILD.json").write_text(json.dumps({"llama_cpp_python": llama_cpp_version(), "version": version.strip()}))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(out))
    log(f"built {out / BINARY}")
    return out / BINARY


def _run(cmd: Sequence[str], check: bool = True) -> str:
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise ServerError(f"{Path(cmd[0]).name} failed (exit {p.returncode}): {(p.stdout + p.stderr).strip()[-2000:]}")
    return p.stdout + p.stderr


_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="swarm-llama-server-spawner")


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """A llama-server process swarm started on this machine, listening on 127.0.0.1.

    ``start`` waits until it answers ``/health``; a LoRA adapter is given at start (llama-server
    loads adapter files only then), so ``restart(lora=...)`` is how a new adapter reaches it."""

    def __init__(self, model: Path, *, slots: int, n_ctx: int, n_batch: int = 512, threads: int = 0,
                 gpu_layers: int = 0, log_file: Path | None = None, binary: Path | None = None,
                 start_timeout: float = 180.0) -> None:
        self.model = model
        self.slots, self.n_ctx, self.n_batch, self.threads, self.gpu_layers = slots, n_ctx, n_batch, threads, gpu_layers
        self.binary = binary or require_server()
        self.log_file = log_file
        self.start_timeout = start_timeout
        self.port = 0
        self.lora: tuple[str, float] | None = None
        #: more llama-server arguments (e.g. adapters an external server should hold)
        self.extra: list[str] = []
        #: the adapter of every start, in order (None: the base model)
        self.starts: list[tuple[str, float] | None] = []
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
               "-np", str(self.slots), "-c", str(self.n_ctx * self.slots), "-b", str(max(self.n_batch, self.slots)),
               "-ub", str(max(self.n_batch, self.slots)), "--no-webui", "--no-warmup", "-ngl", "all" if self.gpu_layers < 0 else str(self.gpu_layers),
               "--cache-ram", "0"]
        if self.threads:
            cmd += ["-t", str(self.threads), "-tb", str(self.threads)]
        if not extra_buffers_usable():  # AMX crashes this machine (engine.runtime.cpu_probe)
            cmd.append("--no-repack")
        if self.lora is not None:
            cmd += ["--lora-scaled", f"{self.lora[0]}:{self.lora[1]}"]
        return cmd + self.extra

    def start(self) -> None:
        if self.running():
            return
        self.port = free_port()
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            # its own session (a Ctrl-C at the terminal is the engine's to handle), and killed when
            # the thread that started it ends (Linux): one thread that lives as long as the process
            # starts every server, so a crashed swarm leaves no server behind
            self._proc = _SPAWNER.submit(
                subprocess.Popen, self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent).result()
        except OSError as e:
            raise ServerError(f"could not start {self.binary}: {e}") from e
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        self.starts.append(self.lora)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(f"llama-server exited with {self._proc.returncode} while starting"
                                  + (f" (log: {self.log_file})" + self._tail() if self.log_file else ""))
            if health(self.url, timeout=2.0) == "ok":
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"llama-server did not become ready in {self.start_timeout:.0f} s on {self.url}")

    def _tail(self) -> str:
        try:
            return ": " + " | ".join(Path(self.log_file or "").read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return ""

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def restart(self, lora: tuple[str, float] | None) -> None:
        self.stop()
        self.lora = lora
        self.start()

    def stop(self) -> None:
        p, self._proc = self._proc, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def kill(self) -> None:
        """Kill it at once (what a crash looks like to its clients)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def health(url: str, timeout: float = 5.0, api_key: str | None = None) -> str:
    """``ok``, ``loading`` (503) or why the server at ``url`` does not answer."""
    req = urllib.request.Request(url.rstrip("/") + "/health")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return "ok" if r.status == 200 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return "loading" if e.code == 503 else f"HTTP {e.code}"
    except (OSError, ValueError) as e:
        return f"unreachable ({getattr(e, 'reason', e)})"
