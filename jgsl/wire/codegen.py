"""Regenerate ``jgsl/wire/jgsl_pb2.py`` from ``protocol/*.proto`` with grpcio-tools' protoc.

The generated module is committed so that installing JGSL needs no compiler; ``--check``
(run by the test suite) fails when it no longer matches the .proto sources.

Usage: ``python -m jgsl.wire.codegen [--check]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "protocol"
OUT_DIR = Path(__file__).resolve().parent


def generated_names() -> list[str]:
    """The modules protoc makes from protocol/*.proto: <stem>_pb2.py and .pyi."""
    stems = sorted(p.stem for p in PROTO_DIR.glob("*.proto"))
    return [f"{stem}_pb2{suffix}" for stem in stems for suffix in (".py", ".pyi")]


def generate(out_dir: Path) -> None:
    """Run protoc on every .proto file in ``protocol/``, writing into ``out_dir``."""
    from grpc_tools import protoc  # only needed by developers, not at run time

    sources = sorted(str(p.name) for p in PROTO_DIR.glob("*.proto"))
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    if protoc.main(args + sources) != 0:
        raise SystemExit("protoc failed")


def stale_files() -> list[str]:
    """Names of the committed generated files that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            name
            for name in generated_names()
            if not (OUT_DIR / name).exists()
            or (Path(tmp) / name).read_bytes() != (OUT_DIR / name).read_bytes()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated code: " + ", ".join(stale), file=sys.stderr)
            print("run: python -m jgsl.wire.codegen", file=sys.stderr)
            return 1
        return 0
    generate(OUT_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
