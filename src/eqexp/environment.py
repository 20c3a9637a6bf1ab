"""The software a run or sweep ran on, written next to its results (`environment.json`):
the git commit (and the tracked files modified since), Python, the machine, and the exact
version of every installed package. The report shows it; the replication package turns it
into a lock file. Recorded when the results are written, because the environment that
later renders or packages them may differ.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from eqexp.tracking import git_commit

FILE = "environment.json"


def installed_packages() -> dict[str, str]:
    """{distribution name: version} of the running Python environment, sorted by name.

    Read from the `<name>-<version>.dist-info` folder names on sys.path, the first of a name
    being the one Python imports: parsing every METADATA file instead costs a run ~0.3 s."""
    found: dict[str, str] = {}
    for folder in map(Path, sys.path):
        for info in sorted(folder.glob("*.dist-info")) if folder.is_dir() else ():
            name, _, version = info.name.removesuffix(".dist-info").partition("-")
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), version)  # PEP 503's normal name
    return dict(sorted(found.items()))


def modified_files(root: Path) -> list[str]:
    """Tracked files changed since the commit: results made with them are not the commit's."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in out.stdout.splitlines() if line.strip()]


def capture(root: Path) -> dict[str, Any]:
    return {
        "git_commit": git_commit(Path(root)),
        "git_modified": modified_files(root),
        "root": str(Path(root).resolve()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "recorded": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "packages": installed_packages(),
    }


def write(directory: Path, root: Path) -> Path:
    path = Path(directory) / FILE
    path.write_text(json.dumps(capture(root), indent=1))
    return path


def read(directory: Path) -> dict[str, Any] | None:
    path = Path(directory) / FILE
    return json.loads(path.read_text()) if path.exists() else None
