"""wasi-testsuite runtime adapter for the `wippy` launcher (`make conformance`).

The suite's runner (`run-tests -r THIS_FILE`) calls `compute_argv` for each test; wippy runs
the test's .wasm as `wasmtime run` would: `wippy run --env K=V --dir ROOT::/ FILE ARGS...`.
WIPPY names the launcher (default: build/bin/wippy of this checkout). Only preview 1 is
offered: preview 3 (component-model async) is not supported.
"""

import os
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

_DEFAULT = str(Path(__file__).resolve().parents[1] / "build" / "bin" / "wippy")
WIPPY = shlex.split(os.getenv("WIPPY", _DEFAULT))


def get_name() -> str:
    return "wippy"


def get_version() -> str:
    result = subprocess.run(WIPPY + ["--version"], encoding="UTF-8", capture_output=True, check=True)
    return result.stdout.split()[1]


def get_wasi_versions() -> List[str]:
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command"]


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    args, env, root = args_env_root
    argv = WIPPY + ["run"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    if root:
        argv += ["--dir", f"{root}::/"]
    argv += ["--", test_path] + args
    return argv
