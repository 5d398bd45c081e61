"""DDP exit harness: run a 2-process gloo training N times in a row, as torchrun would launch it.

    python test/integration/ddp_harness.py RUNS LOG_DIR -- ENTRY_MODULE ARGS...   (ARGS hold
    --output_dir OUT; run i writes to OUT/run<i>)

ESPnet is imported once here; each rank is a fork that gets torchrun's environment (WORLD_SIZE,
RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and runs ``ENTRY_MODULE.main(ARGS)``, then leaves
through the normal interpreter exit, so C++ teardown runs as it does after torchrun. After
training each rank logs whether the process group is gone and which threads are still alive.
Prints one JSON line per run: {"run": i, "exit": [rank0, rank1], "seconds": [when each had exited]}
(a negative exit status: killed by that signal).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import socket
import sys
import threading
import time
import traceback


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rank_main(entry, args, rank: int, port: int, log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    status = 0
    try:
        entry.main(args)
        import torch.distributed as dist

        print(f"HARNESS process_group_initialized={dist.is_initialized()}", file=sys.stderr)
        alive = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
        print(f"HARNESS threads_alive={alive}", file=sys.stderr)
        print(f"HARNESS trained_at={time.time():.3f}", file=sys.stderr)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the parent reads the log
        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    sys.exit(status)  # the normal exit path: interpreter and C++ teardown run


def main() -> None:
    runs, log_dir, sep, module, *args = sys.argv[1:]
    assert sep == "--"
    entry = importlib.import_module(module)
    for name in ("dispatch.tasks.enh_distill", "torch.utils.tensorboard", "torch._dynamo"):
        importlib.import_module(name)  # imported lazily by the entry point: once, here
    gc.freeze()  # the children's exit skips collecting what they inherited (seconds per exit)
    where = args.index("--output_dir") + 1
    base = args[where]
    for i in range(int(runs)):
        args[where] = os.path.join(base, f"run{i}")
        port = free_port()
        pids, start = [], time.time()
        for rank in (0, 1):
            pid = os.fork()
            if pid == 0:
                rank_main(entry, list(args), rank, port, os.path.join(log_dir, f"run{i}.rank{rank}.log"))
            pids.append(pid)
        codes, ended = [], []
        for pid in pids:
            codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            ended.append(round(time.time() - start, 2))
        print(json.dumps({"run": i, "exit": codes, "seconds": ended}), flush=True)


if __name__ == "__main__":
    main()
