"""Run a command and sample the peak resident memory of every process in its tree."""

from __future__ import annotations

import subprocess
import threading
import time

import psutil


def run_with_peaks(args: list[str], cwd, interval: float = 0.2) -> tuple[float, dict[int, float], int]:
    """Wall seconds, {pid: peak RSS MiB} over the command's process tree, and its exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[int, float] = {}

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                for p in [root, *root.children(recursive=True)]:
                    peaks[p.pid] = max(peaks.get(p.pid, 0.0), p.memory_info().rss / 2**20)
            except psutil.Error:
                pass
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = proc.wait()
    thread.join()
    return time.perf_counter() - start, peaks, code
