"""snakepit-bridge installs from a clean checkout, an sdist and a wheel: importable, stubs inside, worker serving.

The gRPC stubs are generated when the package is built (setup.py). A clean copy
holds only what a git checkout has (tracked and new files, never ignored ones),
so the stubs generated in this checkout cannot leak into what is built from it.
Builds run without isolation on this venv's pinned build requirements, and each
install goes into a fresh virtualenv with ``--no-deps``; the runtime
dependencies come from this venv through a path line in a ``.pth`` file (which
adds the directory but runs none of the ``.pth`` files in it, so this
checkout's editable install stays out). Nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import grpc
import pytest
from helpers import READY_TIMEOUT, TOKEN, _read_line, auth

from snakepit_bridge import __version__
from snakepit_bridge.wire import pb, pb_grpc

REPO = Path(__file__).resolve().parents[2]
PYTHON_DIR = REPO / "python"
STUBS = ["__init__.py", "bridge_pb2.py", "bridge_pb2.pyi", "bridge_pb2_grpc.py"]
COMMAND_TIMEOUT = 120


def run(*command: str | Path, cwd: Path) -> str:
    # Without PYTHONPATH, and in a directory holding no package, so only what was installed can be imported.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_checkout(dest: Path) -> Path:
    """What a fresh clone would hold of python/, proto/ and the LICENSE, copied to ``dest``; returns its python/."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of the repository")
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "python", "proto", "LICENSE"],
            cwd=REPO,
            capture_output=True,
            check=True,
            timeout=30,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is listed too
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    assert (dest / "python" / "setup.py").is_file()
    assert not (dest / "python" / "snakepit_bridge" / "_proto").exists(), "generated stubs leaked into the copy"
    return dest / "python"


def fresh_venv(path: Path) -> Path:
    """A virtualenv without pip or setuptools of its own that sees this venv's packages; returns its python."""
    run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
    python = path / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=path).strip()
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (Path(purelib) / "repo-venv.pth").write_text("".join(f"{directory}\n" for directory in ours))
    return python


def pip_install(python: Path, *args: str | Path) -> None:
    # This venv's pip, installing into the other interpreter's environment.
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "--disable-pip-version-check",
        "-q",
        "install",
        "--no-deps",
        *args,
        cwd=python.parent,
    )


def assert_installed_and_serving(python: Path, venv: Path, workdir: Path) -> None:
    found = run(
        python, "-c", "import snakepit_bridge, snakepit_bridge.wire; print(snakepit_bridge.__file__)", cwd=workdir
    )
    assert Path(found.strip()).is_relative_to(venv), f"imported from {found.strip()}, not the fresh install"
    assert "--adapter" in run(python, "-m", "snakepit_bridge.worker", "--help", cwd=workdir)
    assert_worker_serves(python, workdir)


def assert_worker_serves(python: Path, workdir: Path) -> None:
    """Start the installed worker with the bundled example adapter and ask it to describe itself."""
    address = f"unix://{workdir}/w.sock"
    read_fd, write_fd = os.pipe()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["SNAKEPIT_AUTH_TOKEN"] = TOKEN
    worker = subprocess.Popen(
        [
            python,
            "-m",
            "snakepit_bridge.worker",
            "--adapter",
            "snakepit_bridge.examples.counter:CounterAdapter",
            "--address",
            address,
            "--ready-fd",
            str(write_fd),
        ],
        pass_fds=(write_fd,),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=env,
    )
    os.close(write_fd)
    try:
        try:
            ready = _read_line(read_fd, READY_TIMEOUT)
        finally:
            os.close(read_fd)
        assert ready == f"READY {address}\n", ready
        with grpc.insecure_channel(address) as channel:
            description = pb_grpc.WorkerBridgeStub(channel).Describe(pb.DescribeRequest(), metadata=auth(), timeout=10)
        assert description.bridge_version == __version__
        assert [spec.name for spec in description.tools] == ["bump"]
        worker.terminate()
        assert worker.wait(10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        assert worker.stdin is not None and worker.stderr is not None
        worker.stdin.close()
        worker.stderr.close()


def test_pip_install_of_a_clean_checkout(tmp_path: Path) -> None:
    # `pip install ./python` from a fresh clone: pip builds the wheel from the tree, generating the stubs.
    source = clean_checkout(tmp_path / "clone")
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, "--no-build-isolation", source)
    assert_installed_and_serving(python, tmp_path / "venv", tmp_path)


def test_sdist_and_the_wheel_built_from_it(tmp_path: Path) -> None:
    # What `python -m build` (npm run pack) makes: an sdist, then a wheel built from that sdist alone.
    source = clean_checkout(tmp_path / "clone")
    out = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source, cwd=tmp_path)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    assert wheel.name == f"snakepit_bridge-{__version__}-py3-none-any.whl"

    with tarfile.open(sdist) as archive:
        sdist_files = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"setup.py", "tools/generate_stubs.py", "proto/snakepit/bridge/v1/bridge.proto", "LICENSE"} <= sdist_files
    assert not any(name.startswith(("snakepit_bridge/_proto", "tests/")) for name in sdist_files)

    with zipfile.ZipFile(wheel) as archive:
        wheel_files = set(archive.namelist())
    assert {f"snakepit_bridge/_proto/{name}" for name in STUBS} | {"snakepit_bridge/py.typed"} <= wheel_files
    assert f"snakepit_bridge-{__version__}.dist-info/licenses/LICENSE" in wheel_files
    top_level = {name.split("/", 1)[0] for name in wheel_files}
    assert top_level == {"snakepit_bridge", f"snakepit_bridge-{__version__}.dist-info"}  # no tools/, no tests/
    with zipfile.ZipFile(wheel) as archive:
        generated = archive.read("snakepit_bridge/_proto/bridge_pb2_grpc.py").decode()
    assert "from . import bridge_pb2 as" in generated  # flattened, importable without a top-level snakepit package

    python = fresh_venv(tmp_path / "venv")
    pip_install(python, wheel)
    assert_installed_and_serving(python, tmp_path / "venv", tmp_path)


def test_the_stub_generator_is_pinned_to_the_runtime_lower_bounds() -> None:
    # Stubs require at least the grpcio (and protobuf) of the grpcio-tools that wrote them, so the
    # build's grpcio-tools must be the lowest grpcio the package accepts, and the same as the venv's.
    project = tomllib.loads((PYTHON_DIR / "pyproject.toml").read_text())
    tools_pin = next(req for req in project["build-system"]["requires"] if req.startswith("grpcio-tools"))
    version = tools_pin.removeprefix("grpcio-tools==")
    assert version != tools_pin, f"grpcio-tools must be pinned exactly in [build-system]: {tools_pin}"
    assert f"grpcio>={version},<2" in project["project"]["dependencies"]
    pins = (PYTHON_DIR / "requirements.txt").read_text().splitlines()
    assert f"grpcio-tools=={version}" in pins and f"grpcio=={version}" in pins
