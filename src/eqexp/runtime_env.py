"""Settings a process reads once, when it starts: `run.py` starts again with them (so every
sweep worker inherits them); `eqexp.api` sets them for the processes a run starts. A user's
own setting wins. Standard library only: `run.py` imports this before its restart."""

RUNTIME_ENV = {
    # pyfixest's estimates (its path serves what eqexp's fast path does not) depend on
    # Python's string-hash seed in the last digits (~1e-13): one seed, the same numbers.
    "PYTHONHASHSEED": "0",
    # glibc serves blocks below 1 GiB from its heap and keeps up to 128 MiB of freed heap for
    # reuse, instead of mapping and unmapping them: large temporaries (absorbed columns,
    # bootstrap weights) then cost no page faults each time (a quarter of a sweep's time here).
    "MALLOC_MMAP_THRESHOLD_": str(2**30),
    "MALLOC_TRIM_THRESHOLD_": str(2**27),
}
