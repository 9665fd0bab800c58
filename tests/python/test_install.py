"""Packaging: the sdist holds everything to build, and installs into a fresh
virtual environment (which compiles the extension together with the core).

Slow (a compile of the whole core); set STREAMDB_SKIP_INSTALL_TEST=1 to skip.
It needs pip to reach the package index for the build requirements
(setuptools, wheel) unless they can be found offline.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tarfile
import textwrap
import venv

import pytest

from conftest import REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("STREAMDB_SKIP_INSTALL_TEST") == "1",
                       reason="STREAMDB_SKIP_INSTALL_TEST=1"),
]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kw)
    assert r.returncode == 0, "%s failed:\n%s\n%s" % (cmd, r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    try:
        import build  # noqa: F401
        run([sys.executable, "-m", "build", "--sdist", "--outdir", str(out), REPO_ROOT])
    except ImportError:
        try:
            import setuptools  # noqa: F401
        except ImportError:
            pytest.skip("neither `build` nor setuptools is installed to make an sdist")
        # setup.py sdist writes an egg-info into the tree: do it on a copy
        import shutil
        src = out / "src"
        shutil.copytree(REPO_ROOT, src, ignore=shutil.ignore_patterns(
            ".git", "build*", "dist", "*.egg-info", "__pycache__", ".venv*"))
        run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(out)], cwd=str(src))
    files = glob.glob(str(out / "streamdb-*.tar.gz"))
    assert len(files) == 1, files
    return files[0]


def test_sdist_contents(sdist):
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for required in ("setup.py", "pyproject.toml", "core/include/streamdb.h",
                     "python/streamdb/__init__.py", "python/streamdb/_errors.py",
                     "python/streamdb/_streamdb.c", "python/streamdb/_streamdb.pyi",
                     "python/streamdb/py.typed", "python/streamdb/_streamdb.map",
                     "python/README.md"):
        assert required in names, required
    core = {n for n in names if n.startswith("core/src/") and n.endswith(".c")}
    expect = {os.path.relpath(p, REPO_ROOT)
              for p in glob.glob(os.path.join(REPO_ROOT, "core", "src", "*", "*.c"))}
    assert core == expect
    private_headers = {os.path.relpath(p, REPO_ROOT)
                       for p in glob.glob(os.path.join(REPO_ROOT, "core", "src", "**", "*.h"),
                                          recursive=True)}
    assert private_headers <= names


def test_install_sdist_in_fresh_venv(sdist, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(str(env_dir))
    py = str(env_dir / "bin" / "python")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    run([py, "-m", "pip", "install", "-q", sdist], env=env, cwd=str(tmp_path))
    script = textwrap.dedent("""
        import io, os, sys, streamdb
        assert "site-packages" in streamdb.__file__, streamdb.__file__
        here = os.path.dirname(streamdb.__file__)
        assert os.path.exists(os.path.join(here, "py.typed"))
        assert os.path.exists(os.path.join(here, "_streamdb.pyi"))
        with streamdb.open(sys.argv[1]) as db:
            doc = db.write_document("/hello/world", io.BytesIO(b"x" * 1000000))
            with db.open("/hello/world") as f:
                assert isinstance(f, io.RawIOBase)
                assert f.read() == b"x" * 1000000
            assert db.search("/hello/") == ["/hello/world"]
            try:
                db["/missing"]
            except KeyError as e:
                assert isinstance(e, streamdb.NotFoundError) and e.code == -2
        print("OK", streamdb.version())
    """)
    r = run([py, "-c", script, str(tmp_path / "t.sdb")], env=env, cwd=str(tmp_path))
    assert r.stdout.strip() == "OK 0.1.0"
    # no core symbol leaks from the extension besides the module init
    ext = glob.glob(str(env_dir / "lib" / "python*" / "site-packages" / "streamdb" /
                        "_streamdb*.so"))
    assert len(ext) == 1
    nm = subprocess.run(["nm", "-D", "--defined-only", ext[0]], capture_output=True, text=True)
    if nm.returncode == 0:
        exported = [line.split()[-1] for line in nm.stdout.splitlines() if line.strip()]
        assert "PyInit__streamdb" in exported
        assert not [s for s in exported if s.startswith("streamdb_")], exported
