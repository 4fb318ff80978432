"""Build: metadata is in setup.cfg; this file only adds the optional compiled modules.

The grid's reply loop and table writer (jgsl/core/reply/rowloop.py and agenttable.py) are
Cython pure-Python mode: compiled here when Cython and a C compiler are available, imported
as plain Python otherwise (slower, same behaviour), so a machine without a compiler still
installs and runs JGSL.
"""

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = ["jgsl/core/reply/rowloop.py", "jgsl/core/reply/agenttable.py"]


class OptionalBuildExt(build_ext):
    """A failed compile is a warning: the pure-Python module is used instead."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - any compiler or toolchain failure
            print(f"WARNING: not compiling {COMPILED} ({error}); using the pure-Python module")

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:  # noqa: BLE001
            print(f"WARNING: not compiling {ext.name} ({error}); using the pure-Python module")


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("WARNING: Cython is not installed; the reply loop stays pure Python")
        return []
    return cythonize(COMPILED, language_level=3, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
