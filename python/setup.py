"""The two build steps pyproject.toml cannot declare; everything else is in pyproject.toml.

The gRPC stubs (``snakepit_bridge/_proto``) are generated from the wire contract
whenever the package is built, so a wheel, an sdist build and ``pip install`` of a
clean checkout all carry stubs that match the proto they were built from (and the
grpcio-tools pinned in ``[build-system]``). Generating rather than committing them
keeps ``proto/`` the one source of truth: nothing can go stale.

* ``build_py`` writes the stubs into the build tree (into the source tree for an
  editable install, which imports from there).
* ``sdist`` adds the proto file to the archive, because it lives outside this
  directory in the repository and a wheel built from the sdist needs it; and the
  repository's LICENSE, which a wheel built from the sdist then carries too
  (setuptools picks up a LICENSE next to pyproject.toml by default).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import ExecError

HERE = Path(__file__).resolve().parent


def _generator() -> ModuleType:
    # tools/ is not a package and not installed: load the script by path.
    spec = importlib.util.spec_from_file_location("generate_stubs", HERE / "tools" / "generate_stubs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithStubs(build_py):
    """build_py, then the generated stubs next to the package it built."""

    def run(self) -> None:
        super().run()  # returns at once for an editable install
        base = HERE if self.editable_mode else Path(self.build_lib)
        generator = _generator()
        try:
            generator.generate(base / "snakepit_bridge" / "_proto")
        except (generator.GenerationError, OSError) as exc:
            raise ExecError(f"generating the gRPC stubs failed: {exc}") from exc


class SdistWithProto(sdist):
    """sdist, with the proto file where tools/generate_stubs.py looks first, and the LICENSE."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        generator = _generator()
        try:
            source = generator.find_proto_root() / generator.PROTO_FILE
        except generator.GenerationError as exc:
            raise ExecError(str(exc)) from exc
        target = Path(base_dir) / "proto" / generator.PROTO_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        license_file = HERE.parent / "LICENSE"  # an sdist's own LICENSE is already in the tree
        if license_file.is_file() and not (HERE / "LICENSE").exists():
            shutil.copyfile(license_file, Path(base_dir) / "LICENSE")


setup(cmdclass={"build_py": BuildPyWithStubs, "sdist": SdistWithProto})
