"""The checker that runs inside the sandbox: calls untrusted code from a process it cannot touch.

Copied into the sandbox as ``main.py`` by ``engine.tasks.harness``; stdlib only (it runs with
``-I -S``). The untrusted code (a solver's answer, or a proposer's reference) never runs in this
process. Before this process reads anything secret it forks one child per job; the child closes
stdin, points stdout and stderr at /dev/null, loads the code and answers calls over two pipes.
Arguments and return values cross as tagged JSON of plain values (int, float, str, bool, None,
list, tuple, dict, set, frozenset, bytes, complex, exact types only), so an object whose
``__eq__`` always says yes cannot come back, and nothing the child does changes this process's
``check``, ``AssertionError``, builtins or output. This process is made non-dumpable, so a
child of the same uid can neither ptrace it nor open its /proc files (memory, fds).

Only after every job has ended does it read the run's token (a random string the parent wrote
to stdin, which the child closed before running anything) and print one JSON line with the
token and the results. The parent accepts a result only with that token: an early exit of any
kind, a killed or stopped checker, or printed look-alikes all leave no valid line.

jobs.json: {"mode": "check" | "outputs", "budget": seconds per job, "jobs": [...]}
- check: one job {"candidate", "entry"}; stdin line 1 is {"prompt", "test"} (read after the
  fork, so the candidate never sees the tests), line 2 the token. The task's prompt code runs
  here (tests may call its helpers), then the test, then ``check(candidate)`` with a proxy.
- outputs: jobs {"candidate", "entry", "inputs": [args repr, ...]}; each input is called in two
  fresh children and the reprs compared (a reference must be deterministic); stdin: the token.
"""

import ast
import ctypes
import json
import os
import resource
import select
import signal
import sys
import time

PR_SET_DUMPABLE = 4
MAX_REPLY = 16 * 2**20


# -- values across the pipe ---------------------------------------------------------------------


def encode(value, depth=0):
    """A tagged JSON form of a plain value; anything else raises TypeError."""
    if depth > 200:
        raise TypeError("value nested too deeply")
    t = type(value)
    if value is None:
        return ["N"]
    if t is bool:
        return ["b", value]
    if t is int:
        return ["i", str(value)]
    if t is float:
        return ["f", repr(value)]
    if t is str:
        return ["s", value]
    if t is bytes:
        return ["B", value.hex()]
    if t is complex:
        return ["c", repr(value.real), repr(value.imag)]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
        return [tag, [encode(v, depth + 1) for v in value]]
    if t is dict:
        return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]]
    raise TypeError(f"unsupported type {t.__name__}")


def decode(data):
    tag = data[0]
    if tag == "N":
        return None
    if tag == "b":
        return bool(data[1])
    if tag == "i":
        return int(data[1])
    if tag == "f":
        return float(data[1])
    if tag == "s":
        return str(data[1])
    if tag == "B":
        return bytes.fromhex(data[1])
    if tag == "c":
        return complex(float(data[1]), float(data[2]))
    if tag in ("l", "t", "S", "F"):
        items = [decode(v) for v in data[1]]
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
    if tag == "d":
        return {decode(k): decode(v) for k, v in data[1]}
    raise ValueError(f"unknown tag {tag!r}")


def write_all(fd, data):
    while data:
        n = os.write(fd, data)
        data = data[n:]


# -- the child: loads the untrusted code and answers calls ----------------------------------------


def serve(source, entry, req_r, rep_w):
    """Runs in the forked child; never returns."""
    try:
        os.close(0)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 1)
        os.dup2(null, 2)
        keep = {1, 2, req_r, rep_w}
        for fd in range(3, 1024):
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except BaseException:
        os._exit(70)

    def reply(obj):
        write_all(rep_w, (json.dumps(obj) + "\n").encode())

    def raised(e):
        return {"raised": type(e).__name__, "message": str(e)[:300]}

    ns = {"__name__": "__candidate__", "__builtins__": __builtins__}
    try:
        exec(compile(source, "candidate.py", "exec"), ns)
        fn = ns.get(entry)
        if not callable(fn):
            reply({"load_error": f"no function named {entry}"})
            os._exit(0)
    except BaseException as e:  # SystemExit, KeyboardInterrupt... all are the candidate's failure
        try:
            reply({"load_error": f"{type(e).__name__}: {str(e)[:300]}"})
        finally:
            os._exit(0)
    reply({"ready": True})
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(req_r, 65536)
            if not chunk:
                os._exit(0)
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        try:
            req = json.loads(line)
            args = decode(req["args"])
            kwargs = decode(req["kwargs"])
        except BaseException as e:
            reply({"raised": "ProtocolError", "message": str(e)[:300]})
            continue
        try:
            out = {"value": encode(fn(*args, **kwargs))}
        except BaseException as e:
            out = raised(e)
        try:
            reply(out)
        except TypeError as e:
            reply({"raised": "TypeError", "message": str(e)[:300]})


# -- this process's side ----------------------------------------------------------------------


class CandidateFailed(BaseException):
    """The candidate died, timed out, misbehaved or returned something unusable. A
    BaseException so that a test's ``except Exception`` cannot swallow it."""

    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class CandidateRaised(Exception):
    """The candidate raised; a test may expect that, as with a direct call."""


class Child:
    def __init__(self, source, entry, budget):
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(req_w)
            os.close(rep_r)
            serve(source, entry, req_r, rep_w)
        os.close(req_r)
        os.close(rep_w)
        self.pid, self.req, self.rep = pid, req_w, rep_r
        self.buf = b""
        self.deadline = time.monotonic() + budget
        self.exit = None
        hello = self.read()
        if "load_error" in hello:
            raise CandidateFailed("error", f"the code did not load: {hello['load_error']}")

    def died(self, what):
        """Reap the child and say how it ended."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            _, status, usage = os.wait4(self.pid, 0)
            cpu = usage.ru_utime + usage.ru_stime
        except ChildProcessError:
            status, cpu = 0, 0.0
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            limit = resource.getrlimit(resource.RLIMIT_CPU)[0]
            # SIGXCPU at the soft limit; SIGKILL at the hard one if the candidate ignored it
            if sig == signal.SIGXCPU or (limit != resource.RLIM_INFINITY and cpu >= limit - 0.05):
                return CandidateFailed("timeout", f"CPU time limit ({cpu:.1f} s)")
            if what == "timeout":
                return CandidateFailed("timeout", "no answer within the time limit")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return CandidateFailed("killed", f"the candidate died by signal {name}")
        if what == "timeout":
            return CandidateFailed("timeout", "no answer within the time limit")
        return CandidateFailed("error", f"the candidate exited (status {os.WEXITSTATUS(status)}) {what}")

    def read(self):
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise self.died("timeout")
            ready, _, _ = select.select([self.rep], [], [], left)
            if not ready:
                raise self.died("timeout")
            chunk = os.read(self.rep, 65536)
            if not chunk:
                raise self.died("before answering")
            self.buf += chunk
            if len(self.buf) > MAX_REPLY:
                raise self.died("with an answer over the size limit")
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            raise self.died("with an unreadable answer") from None

    def call(self, *args, **kwargs):
        try:
            msg = json.dumps({"args": encode(args), "kwargs": encode(kwargs)}) + "\n"
        except TypeError as e:
            raise CandidateFailed("error", f"the test passed a value the checker cannot send: {e}") from None
        try:
            write_all(self.req, msg.encode())
        except OSError:
            raise self.died("before the call") from None
        out = self.read()
        if "value" in out:
            try:
                return decode(out["value"])
            except (ValueError, TypeError, IndexError, KeyError, RecursionError) as e:
                raise CandidateFailed("error", f"unreadable return value: {e}") from None
        if out.get("raised") == "MemoryError":
            raise CandidateFailed("memory", "the candidate ran out of memory")
        if out.get("raised") in ("SystemExit", "KeyboardInterrupt"):
            raise CandidateFailed("error", f"the candidate raised {out['raised']}")
        if "raised" in out:
            raise CandidateRaised(f"{out['raised']}: {out.get('message', '')}")
        raise CandidateFailed("error", "unreadable answer from the candidate")

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        for fd in (self.req, self.rep):
            try:
                os.close(fd)
            except OSError:
                pass


_stdin_buf = b""


def read_line():
    """One line from stdin, read unbuffered (nothing beyond it is pulled in early)."""
    global _stdin_buf
    while b"\n" not in _stdin_buf:
        chunk = os.read(0, 65536)
        if not chunk:
            line, _stdin_buf = _stdin_buf, b""
            return line.decode()
        _stdin_buf += chunk
    line, _stdin_buf = _stdin_buf.split(b"\n", 1)
    return line.decode()


def run_check(job, budget):
    """Load the candidate, then the task's code and tests, then call check(candidate)."""
    try:
        child = Child(job["candidate"], job["entry"], budget)
    except CandidateFailed as e:
        read_line()  # the task's code: not needed any more
        return {"status": e.status, "detail": e.detail}
    try:
        spec = json.loads(read_line())
        ns = {"__name__": "__task__"}
        if spec.get("prompt"):
            try:
                code = compile(spec["prompt"], "prompt.py", "exec")
            except SyntaxError:
                code = None  # a prompt that is only a signature: its helpers are not needed
            if code is not None:
                try:
                    exec(code, ns)
                except BaseException as e:
                    return {"status": "error", "detail": f"the task's own code failed: {type(e).__name__}: {e}"}
        try:
            exec(compile(spec["test"], "test.py", "exec"), ns)
        except BaseException as e:
            return {"status": "error", "detail": f"the task's tests failed to load: {type(e).__name__}: {e}"}
        check = ns.get("check")
        if not callable(check):
            return {"status": "error", "detail": "the task's tests define no check()"}
        try:
            check(child.call)
        except CandidateFailed as e:
            return {"status": e.status, "detail": e.detail}
        except AssertionError as e:
            return {"status": "failed", "detail": f"AssertionError: {e}"[:300]}
        except CandidateRaised as e:
            return {"status": "error", "detail": f"the candidate raised {e}"[:300]}
        except BaseException as e:
            return {"status": "error", "detail": f"{type(e).__name__}: {e}"[:300]}
        return {"status": "ok", "detail": ""}
    finally:
        child.close()


def run_outputs(job, budget):
    """Each input called in two fresh children; the reprs of the results, or why not."""
    runs = []
    for _ in range(2):
        try:
            child = Child(job["candidate"], job["entry"], budget)
        except CandidateFailed as e:
            return {"status": e.status, "detail": e.detail}
        try:
            outs = []
            for args in job["inputs"]:
                try:
                    value = child.call(*ast.literal_eval(args))
                except (ValueError, SyntaxError, TypeError) as e:
                    return {"status": "error", "detail": f"inputs {args[:60]} are not plain values: {e}"}
                except CandidateRaised as e:
                    return {"status": "error", "detail": str(e)}
                except CandidateFailed as e:
                    return {"status": e.status, "detail": e.detail}
                outs.append(repr(value))
            runs.append(outs)
        finally:
            child.close()
    if runs[0] != runs[1]:
        return {"status": "nondeterministic", "detail": "two runs gave different outputs"}
    return {"status": "ok", "outputs": runs[0]}


def main():
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    with open("jobs.json") as fh:
        spec = json.load(fh)
    os.remove("jobs.json")
    budget = float(spec.get("budget", 5.0))
    if spec["mode"] == "check":
        results = [run_check(spec["jobs"][0], budget)]
    else:
        results = [run_outputs(job, budget) for job in spec["jobs"]]
    token = read_line().strip()
    sys.stdout.write("\n" + json.dumps({"token": token, "results": results}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
