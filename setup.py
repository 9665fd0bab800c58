"""Build the streamdb Python package.

The extension streamdb._streamdb is compiled together with the core sources
(core/src/*/*.c), so `pip install .` needs no prior CMake build and the
installed package needs no libstreamdb.so.  Metadata is in pyproject.toml.
"""
import glob
import os
import shutil
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def rel(*parts):
    return os.path.join(*parts)


def rglob(*parts):
    """Sorted paths relative to this directory (setuptools wants them relative)."""
    cwd = os.getcwd()
    try:
        os.chdir(HERE)
        return sorted(glob.glob(rel(*parts)))
    finally:
        os.chdir(cwd)


CORE_SOURCES = rglob("core", "src", "*", "*.c")
if not CORE_SOURCES:
    sys.exit("setup.py: no core sources under core/src/*/*.c; build from the repository "
             "root or from an sdist that includes core/")

VERSION_SCRIPT = rel("python", "streamdb", "_streamdb.map")

extension = Extension(
    "streamdb._streamdb",
    sources=[rel("python", "streamdb", "_streamdb.c")] + CORE_SOURCES,
    include_dirs=[rel("core", "include"), rel("core", "src")],
    define_macros=[("STREAMDB_BUILDING", None), ("_GNU_SOURCE", None)],
    extra_compile_args=["-std=gnu11", "-fvisibility=hidden"],
    # only PyInit__streamdb leaves the shared object
    extra_link_args=["-Wl,--version-script=" + VERSION_SCRIPT],
    depends=[VERSION_SCRIPT, rel("core", "include", "streamdb.h")]
    + rglob("core", "src", "*.h") + rglob("core", "src", "*", "*.h"),
    libraries=["pthread"],
)

# Optional codecs, as in CMakeLists.txt: snappy (compression) and OpenSSL's
# libcrypto (AES-256-GCM encryption), used when their headers and libraries
# are found.  STREAMDB_WITH_SNAPPY / STREAMDB_WITH_OPENSSL = 0 leaves one out,
# = 1 makes its absence an error.
CODECS = [
    # (env switch, macro, header, symbol, library)
    ("STREAMDB_WITH_SNAPPY", "STREAMDB_HAVE_SNAPPY", "snappy-c.h", "snappy_compress", "snappy"),
    ("STREAMDB_WITH_OPENSSL", "STREAMDB_HAVE_OPENSSL", "openssl/evp.h", "EVP_aes_256_gcm",
     "crypto"),
]


class BuildExtWithCodecs(build_ext):
    """build_ext that probes the compiler for the optional codec libraries."""

    def _links(self, header, symbol, library):
        tmp = tempfile.mkdtemp(prefix="streamdb-probe-")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write("#include <%s>\nint main(void) { return (void *)&%s == (void *)0; }\n"
                        % (header, symbol))
            objs = self.compiler.compile([src], output_dir=tmp)
            self.compiler.link_executable(objs, "probe", output_dir=tmp, libraries=[library])
            return True
        except Exception:  # CompileError, LinkError
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build_extensions(self):
        for switch, macro, header, symbol, library in CODECS:
            want = os.environ.get(switch, "auto")
            if want == "0":
                found = False
            else:
                found = self._links(header, symbol, library)
                if want == "1" and not found:
                    sys.exit("setup.py: %s=1 but %s/-l%s cannot be used" % (switch, header,
                                                                            library))
            print("streamdb: %s %s" % (library, "found" if found else "not used"))
            if found:
                for ext in self.extensions:
                    ext.define_macros.append((macro, None))
                    ext.libraries.append(library)
        super().build_extensions()


setup(
    cmdclass={"build_ext": BuildExtWithCodecs},
    # keep setuptools' intermediate files out of ./build (a name CMake users take)
    options={"build": {"build_base": "build-python"}},
    package_dir={"": "python"},
    packages=["streamdb"],
    package_data={"streamdb": ["py.typed", "*.pyi"]},
    ext_modules=[extension],
)
