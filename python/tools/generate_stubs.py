#!/usr/bin/env python3
"""Generate the Python gRPC stubs for the Snakepit wire contract.

The stubs are build output (gitignored, never committed), produced from the one
authoritative ``proto/snakepit/bridge/v1/bridge.proto`` so the Node and Python
sides can never drift apart. Building the package runs this (``setup.py``), so
every wheel, sdist build and ``pip install`` carries stubs made from the proto it
was built from; in the repository ``scripts/setup.mjs`` runs it for the
editable install. protoc names modules after the proto package
(``from snakepit.bridge.v1 import bridge_pb2``), which would require a top-level
``snakepit`` package on sys.path; instead the files are flattened into
``snakepit_bridge/_proto/`` and that import is rewritten to a relative one.

Idempotent: files are only rewritten when their content changes, and stale
files from an older layout are removed. Exits non-zero with a message on failure.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import sys
import tempfile
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parent.parent
PROTO_FILE = "snakepit/bridge/v1/bridge.proto"
# Where the proto is found, first match wins: an sdist carries its own copy
# (setup.py puts it there, since a package may not reach outside its root);
# a checkout of the repository has the shared one next to python/.
PROTO_ROOTS = (PYTHON_DIR / "proto", PYTHON_DIR.parent / "proto")
OUT_DIR = PYTHON_DIR / "snakepit_bridge" / "_proto"

# protoc's absolute import of the sibling message module, e.g.
# "from snakepit.bridge.v1 import bridge_pb2 as snakepit_dot_..._pb2".
ABSOLUTE_IMPORT = re.compile(r"^from snakepit\.bridge\.v1 import (\w+_pb2)\b", re.MULTILINE)
# The module name protoc bakes into the message classes (their __module__, used
# by repr and pickle); the flattened module passes its real name instead.
BAKED_MODULE_NAME = re.compile(r"'snakepit\.bridge\.v1\.\w+_pb2'")
# Any import of the proto package left after rewriting means protoc's output
# format changed: fail loudly rather than ship stubs that cannot be imported.
LEFTOVER_IMPORT = re.compile(r"^\s*(from|import)\s+snakepit\b", re.MULTILINE)

INIT_TEXT = '''"""Generated gRPC stubs for snakepit.bridge.v1: do not edit.

Made from the proto when the package is built (or by tools/generate_stubs.py).
"""
'''


class GenerationError(Exception):
    """A failure with a message meant for the person running the script."""


def find_proto_root() -> Path:
    """The first of PROTO_ROOTS that holds PROTO_FILE."""
    for root in PROTO_ROOTS:
        if (root / PROTO_FILE).is_file():
            return root
    raise GenerationError(f"proto file not found: {' or '.join(str(root / PROTO_FILE) for root in PROTO_ROOTS)}")


def run_protoc(out: Path, proto_root: Path) -> None:
    """Run the protoc bundled with grpc_tools, a build requirement, so say how to get it."""
    try:
        from grpc_tools import protoc
    except ImportError as exc:
        raise GenerationError(
            f"grpc_tools is not installed ({exc}); it is a build requirement of snakepit-bridge "
            "(pyproject.toml [build-system]); in the repository run `pip install -r python/requirements.txt`"
        ) from exc
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    argv = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        PROTO_FILE,
    ]
    status = protoc.main(argv)
    if status != 0:
        raise GenerationError(f"protoc failed with status {status} (its message is above)")


def flatten(generated: Path) -> dict[str, str]:
    """Return {file name: content} for _proto/, with package-relative imports."""
    source_dir = generated / Path(PROTO_FILE).parent
    files: dict[str, str] = {"__init__.py": INIT_TEXT}
    for path in sorted(source_dir.iterdir()):
        text = path.read_text(encoding="utf-8")
        text = ABSOLUTE_IMPORT.sub(r"from . import \1", text)
        text = BAKED_MODULE_NAME.sub("__name__", text)
        if LEFTOVER_IMPORT.search(text):
            raise GenerationError(f"{path.name}: an import of the snakepit proto package was left unrewritten")
        files[path.name] = text
    expected = {"bridge_pb2.py", "bridge_pb2.pyi", "bridge_pb2_grpc.py"}
    missing = expected - files.keys()
    if missing:
        raise GenerationError(f"protoc did not produce {sorted(missing)}")
    return files


def write_if_changed(path: Path, text: str) -> bool:
    """Atomic replace, skipped when unchanged so mtimes (and caches) stay put."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


def generate(out_dir: Path = OUT_DIR) -> tuple[list[str], list[str]]:
    """Write the stubs into ``out_dir``; returns (files written, stale files removed).

    Raises GenerationError (or OSError) with a message for the person building.
    """
    proto_root = find_proto_root()
    with tempfile.TemporaryDirectory(prefix="snakepit-stubs-") as tmp:
        run_protoc(Path(tmp), proto_root)
        files = flatten(Path(tmp))
    out_dir.mkdir(parents=True, exist_ok=True)
    changed = [name for name, text in files.items() if write_if_changed(out_dir / name, text)]
    stale = [path for path in out_dir.iterdir() if path.is_file() and path.name not in files]
    for path in stale:
        path.unlink()
    return changed, [path.name for path in stale]


def main() -> int:
    try:
        changed, stale = generate()
    except (GenerationError, OSError) as exc:
        print(f"generate_stubs: {exc}", file=sys.stderr)
        return 1
    rel = OUT_DIR.relative_to(PYTHON_DIR.parent)
    if changed or stale:
        print(f"generate_stubs: wrote {', '.join(changed) or 'nothing'} in {rel}; removed {len(stale)} stale file(s)")
    else:
        print(f"generate_stubs: {rel} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
