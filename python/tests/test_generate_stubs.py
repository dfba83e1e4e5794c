"""tools/generate_stubs.py: idempotent, importable output, clear failures."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "generate_stubs.py"


@pytest.fixture
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_stubs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_second_run_changes_nothing() -> None:
    subprocess.run([sys.executable, str(SCRIPT)], check=True, capture_output=True, timeout=60)
    again = subprocess.run([sys.executable, str(SCRIPT)], check=True, capture_output=True, text=True, timeout=60)
    assert "up to date" in again.stdout


def test_output_is_package_relative(generator: ModuleType) -> None:
    grpc_stub = (generator.OUT_DIR / "bridge_pb2_grpc.py").read_text()
    assert "from . import bridge_pb2 as" in grpc_stub
    assert "from snakepit" not in grpc_stub
    assert (generator.OUT_DIR / "bridge_pb2.pyi").is_file()


def test_missing_proto_fails_clearly(
    generator: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "PROTO_ROOTS", (tmp_path / "sdist", tmp_path / "repo"))
    monkeypatch.setattr(generator, "OUT_DIR", tmp_path / "out")
    assert generator.main() == 1
    err = capsys.readouterr().err
    assert "proto file not found" in err
    assert (
        str(tmp_path / "sdist" / generator.PROTO_FILE) in err and str(tmp_path / "repo" / generator.PROTO_FILE) in err
    )
    assert not (tmp_path / "out").exists()


def test_a_proto_carried_along_wins(generator: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An sdist carries its own copy of the proto; that one is used even where a repository's is reachable.
    carried = tmp_path / "sdist" / generator.PROTO_FILE
    carried.parent.mkdir(parents=True)
    carried.write_text('syntax = "proto3";\npackage snakepit.bridge.v1;\nmessage OnlyHere {}\n')
    monkeypatch.setattr(generator, "PROTO_ROOTS", (tmp_path / "sdist", *generator.PROTO_ROOTS))
    changed, stale = generator.generate(tmp_path / "out")
    assert sorted(changed) == ["__init__.py", "bridge_pb2.py", "bridge_pb2.pyi", "bridge_pb2_grpc.py"] and stale == []
    assert "OnlyHere" in (tmp_path / "out" / "bridge_pb2.pyi").read_text()
