"""The sandbox's launcher: a fresh single-threaded process that locks itself down, then execs.

Run by ``engine.sandbox`` as ``python -I -S sandbox_launch.py CONFIG_JSON`` in a new session
(its own process group). Stdlib only, no imports from the engine: it runs before any isolation
is in place and must not import site-packages. Steps, each as strong as the OS allows:

1. new network namespace (no interfaces but a down loopback: no network at all),
2. new mount namespace with the run's temp dir bound over /tmp, /var/tmp and /dev/shm,
3. resource limits (CPU seconds, address space, file size, processes, open files, no core),
4. drop to a dedicated unprivileged uid/gid (when started as root),
5. exec the interpreter on the program with a scrubbed environment.

If a step is not permitted it is skipped and the level reported on the level pipe is lower; the parent
decides whether that level is acceptable.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_BIND = 4096


def main() -> None:
    cfg = json.loads(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    levels = []
    os.chdir(cfg["cwd"])  # before /tmp is replaced: the temp dir itself usually lives in /tmp

    if libc.unshare(CLONE_NEWNET) == 0:
        levels.append("netns")
    if cfg.get("private_tmp") and libc.unshare(CLONE_NEWNS) == 0:
        ok = libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0
        for target in ("/var/tmp", "/dev/shm", "/tmp"):
            if ok and os.path.isdir(target):
                # "." is the run's temp dir: its path may itself lie under /tmp.
                ok = libc.mount(b".", target.encode(), None, MS_BIND, None) == 0
        if ok:
            os.chdir("/tmp")  # the same directory, seen through its new name
            levels.append("private-tmp")

    limits = {
        resource.RLIMIT_AS: cfg["memory_bytes"],
        resource.RLIMIT_FSIZE: cfg["file_bytes"],
        resource.RLIMIT_NOFILE: 64,
        resource.RLIMIT_CORE: 0,
    }
    for res, value in limits.items():
        resource.setrlimit(res, (value, value))
    # CPU: the soft limit sends SIGXCPU (reported as a timeout); the hard one kills 1 s later.
    resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu_seconds"], cfg["cpu_seconds"] + 1))
    levels.append("rlimits")

    uid = cfg.get("uid")
    if uid is not None and os.getuid() == 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["processes"], cfg["processes"]))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        levels.append("uid")
    else:
        # Without a dedicated uid RLIMIT_NPROC counts all of this user's processes: add headroom.
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (cfg["processes"] + 512, cfg["processes"] + 512))
        except (ValueError, OSError):
            pass

    try:
        os.write(cfg["level_fd"], (",".join(levels) + "\n").encode())
        os.close(cfg["level_fd"])
    except OSError:
        pass
    os.umask(0o077)
    env = dict(cfg["env"], HOME=os.getcwd())
    argv = [cfg["python"], "-I", "-S", "-B", *cfg["argv"]]
    os.execve(cfg["python"], argv, env)


if __name__ == "__main__":
    main()
