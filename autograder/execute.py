"""Run a notebook cell by cell in a fresh kernel, with a time limit per cell and per notebook.

A cell that runs past its limit is interrupted; if the kernel ignores the interrupt it is killed
and the cells after it do not run. A kernel that dies (os._exit, a segfault) ends the run. Every
cell gets a status, so the caller can grade what did run.
"""
import os
import queue
import subprocess
import time
from dataclasses import dataclass, field

import zmq
from jupyter_client import KernelManager

GRACE = 5.0  # seconds a kernel gets to honour an interrupt before it is killed
MAX_TEXT = 20_000  # characters of output kept per cell
MAX_MESSAGE = 32 * 2**20  # bytes: a larger message from the kernel is refused


@dataclass
class CellRun:
    status: str  # ok | error | timeout | crashed | not_run
    ename: str = ""
    evalue: str = ""
    stdout: str = ""
    outputs: list = field(default_factory=list)
    seconds: float = 0.0


def _collect(run: CellRun, msg: dict) -> None:
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        run.stdout = (run.stdout + content.get("text", ""))[-MAX_TEXT:]
    elif kind == "error":
        run.ename, run.evalue = content.get("ename", ""), content.get("evalue", "")[:MAX_TEXT]
    if kind in ("stream", "error", "execute_result", "display_data") and len(run.outputs) < 50:
        out = {k: v for k, v in content.items() if k != "transient"}
        out["output_type"] = kind
        run.outputs.append(out)


class _PrefixedKernelManager(KernelManager):
    """A kernel whose command is prefixed (by the sandbox and the resource jail)."""

    prefix: list = []

    def format_kernel_cmd(self, extra_arguments=None):
        # the connection file is written by now; a kernel that runs as another user must read it
        work = os.path.dirname(self.connection_file)
        os.chown(self.connection_file, os.stat(work).st_uid, os.stat(work).st_gid)
        return [*self.prefix, *super().format_kernel_cmd(extra_arguments)]


def execute(cells: list[str], *, cwd: str, env: dict, cell_timeout: float, notebook_timeout: float,
            prefix: list[str] = (), after_cell=None) -> list[CellRun]:
    """Run each source string in order; returns one CellRun per cell. `after_cell()` runs after
    every cell (the grader kills what the cell left running)."""
    runs = [CellRun("not_run") for _ in cells]
    # ipc transport: no TCP port (a kernel without network has none), and the kernel's sockets
    # and connection file live in the run's private folder
    km = _PrefixedKernelManager(kernel_name="python3", transport="ipc", ip=f"{cwd}/kernel",
                                connection_file=f"{cwd}/kernel.json")
    km.prefix = list(prefix)
    # interrupt over the control channel: a signal to the process group would also hit the sandbox
    km.kernel_spec.interrupt_mode = "message"
    # the kernel's own stdout/stderr (not the cells' output, which comes over iopub) is dropped:
    # a learner could write gigabytes to it
    km.start_kernel(cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = zmq.Context()
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)  # a huge output drops the link, not the grader
    kc = km.client(context=context)
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        end_all = time.monotonic() + notebook_timeout
        for k, code in enumerate(cells):
            run = runs[k] = CellRun("ok")
            started = time.monotonic()
            msg_id = kc.execute(code, store_history=False, allow_stdin=False, stop_on_error=False)
            deadline = min(time.monotonic() + cell_timeout, end_all)
            interrupted = False
            while True:
                try:
                    msg = kc.get_iopub_msg(timeout=0.2)
                except queue.Empty:
                    msg = None
                if msg is not None and msg.get("parent_header", {}).get("msg_id") == msg_id:
                    if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                        break
                    _collect(run, msg)
                    continue
                if msg is None and not km.is_alive():
                    run.status = "crashed"
                    return runs
                now = time.monotonic()
                if now > deadline and not interrupted:
                    km.interrupt_kernel()
                    interrupted, deadline = True, now + GRACE
                elif now > deadline:
                    run.status = "timeout"
                    run.evalue = "the cell ignored the interrupt and its kernel was killed"
                    return runs
            run.seconds = time.monotonic() - started
            if after_cell:
                after_cell()
            if interrupted:
                run.status = "timeout"
            elif run.ename:
                run.status = "error"
        return runs
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        context.destroy(linger=0)
