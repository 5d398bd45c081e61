"""Kill harness: run one training command many times in forked children and SIGKILL them.

    python test/integration/kill_harness.py PLAN.json LOG_DIR -- ENTRY_MODULE ARGS...

ESPnet (and the toolkit's task) is imported once here; every child is a fork that runs ``ENTRY_MODULE.main(ARGS)`` from the
state on disk (``--resume true``), so a start costs about a second instead of a fresh interpreter.
PLAN is a JSON list of steps, one child each:

    ["time", SECONDS]        the parent kills the child SECONDS after its log says an epoch started
    ["mid_write", N]         the child kills itself halfway through writing its N-th .pth file
    ["before_rename", N]     ... after its N-th .pth temporary file is complete, before the rename
    ["after_checkpoint", N]  ... right after its N-th checkpoint.pth is in place (before the epoch
                             file and the links)
    ["link", N]              ... just before re-pointing its N-th link
    ["corrupt", 0]           the parent replaces checkpoint.pth by a 0-byte file (what a killed
                             plain torch.save leaves), then runs a child to the end
    ["run", 0]               a child that runs to the end

A third element, when given, replaces ``--output_dir`` for that step (e.g. a reference run).

Prints one JSON line per step: {"step": i, "kind": ..., "killed": bool, "exit": int|null}.
Each child's stderr goes to LOG_DIR/child.<i>.log.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
import time
import traceback


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kind: str, n: int, output_dir: str) -> None:
    """In the child: kill this process at the ``n``-th save event of ``kind``."""
    import torch

    count = {"n": 0}

    def due() -> bool:
        count["n"] += 1
        return count["n"] == n

    def is_pth(path) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.fspath(path).endswith(".pth")

    if kind == "mid_write":
        original_save = torch.save

        def save(obj, f, *args, **kwargs):
            original_save(obj, f, *args, **kwargs)
            if isinstance(f, (str, os.PathLike)) and due():
                size = os.path.getsize(f)
                with open(f, "r+b") as handle:
                    handle.truncate(size // 2)
                _die()

        torch.save = save
    elif kind in ("before_rename", "after_checkpoint"):
        original_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if kind == "before_rename" and is_pth(dst) and due():
                _die()
            original_replace(src, dst, *args, **kwargs)
            if (kind == "after_checkpoint" and os.path.basename(os.fspath(dst)) == "checkpoint.pth"
                    and due()):
                _die()

        os.replace = replace
    elif kind == "link":
        original_symlink = os.symlink

        def symlink(src, dst, *args, **kwargs):
            if os.path.abspath(os.fspath(dst)).startswith(os.path.abspath(output_dir)) and due():
                _die()
            return original_symlink(src, dst, *args, **kwargs)

        os.symlink = symlink


def run_child(entry, args, log_path: str, kind: str, n: int, output_dir: str) -> None:
    """Fork target: redirect stderr, arm the kill, train, and leave with the exit status."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    status = 0
    try:
        arm(kind, n, output_dir)
        entry.main(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            status = 1
        else:
            status = exc.code or 0
    except BaseException:  # noqa: BLE001 - the parent reads the log
        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(status)


def main() -> None:
    plan_file, log_dir, sep, module, *args = sys.argv[1:]
    assert sep == "--"
    plan = json.loads(open(plan_file).read())
    entry = importlib.import_module(module)
    for name in ("dispatch.tasks.enh_distill", "torch.utils.tensorboard", "torch._dynamo"):
        importlib.import_module(name)  # imported lazily by the entry point: once, here
    gc.freeze()  # the children's exit skips collecting what they inherited (seconds per exit)
    where = args.index("--output_dir") + 1
    for i, (kind, value, *other_dir) in enumerate(plan):
        output_dir = other_dir[0] if other_dir else sys.argv[sys.argv.index("--output_dir") + 1]
        args[where] = output_dir
        if kind == "corrupt":
            path = os.path.join(output_dir, "checkpoint.pth")
            os.unlink(path)
            with open(path, "wb"):
                pass
        log_path = os.path.join(log_dir, f"child.{i}.log")
        pid = os.fork()
        if pid == 0:
            run_child(entry, list(args), log_path, kind, int(value), output_dir)
        status = None
        if kind == "time":
            deadline = None
            while status is None and (deadline is None or time.monotonic() < deadline):
                if (deadline is None and os.path.exists(log_path)
                        and "epoch started" in open(log_path).read()):
                    deadline = time.monotonic() + float(value)
                done, code = os.waitpid(pid, os.WNOHANG)
                status = code if done else None
                time.sleep(0.01)
            if status is None:
                os.kill(pid, signal.SIGKILL)
        if status is None:
            _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        code = None if killed else os.waitstatus_to_exitcode(status)
        print(json.dumps({"step": i, "kind": kind, "killed": killed, "exit": code}), flush=True)


if __name__ == "__main__":
    main()
