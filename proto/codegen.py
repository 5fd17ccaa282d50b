"""Generate (or check) the Python code and type stubs for proto/callmesh/proto/v1/*.proto.

uv run python proto/codegen.py           # regenerate in place
uv run python proto/codegen.py --check   # exit 1 when committed code drifted from the .proto
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = ROOT / "callmesh" / "proto" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi")


def proto_files() -> list[Path]:
    """The schema files, in a stable order."""
    return sorted(PACKAGE_DIR.glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into ``out_dir`` (mirroring callmesh/proto/v1/) and return the generated files."""
    include = str(resources.files("grpc_tools") / "_proto")
    files = [str(p.relative_to(ROOT)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
    ]
    code = protoc.main([*args, *files])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    target = out_dir / "callmesh" / "proto" / "v1"
    return sorted(p for p in target.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def drift() -> list[str]:
    """Names of generated files that differ from, are missing from, or are extra in the package."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p for p in generate(Path(tmp))}
        committed = {
            p.name: p for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)
        }
        problems = [f"missing: {n}" for n in sorted(fresh.keys() - committed.keys())]
        problems += [f"stale (no .proto): {n}" for n in sorted(committed.keys() - fresh.keys())]
        problems += [
            f"differs: {n}"
            for n in sorted(fresh.keys() & committed.keys())
            if not filecmp.cmp(fresh[n], committed[n], shallow=False)
        ]
        return problems


def main() -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args()
    if args.check:
        problems = drift()
        for line in problems:
            sys.stderr.write(f"proto drift: {line}\n")
        if problems:
            sys.stderr.write("run `make proto` and commit the result\n")
        return 1 if problems else 0
    for stale in PACKAGE_DIR.iterdir():
        if stale.name.endswith(GENERATED_SUFFIXES):
            stale.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            shutil.copy(path, PACKAGE_DIR / path.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
