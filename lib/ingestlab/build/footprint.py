"""Deployment footprint: how many bytes a deployment of each service needs.

It stands in for the article's container image sizes where no image is built: it counts the
files a deployment needs on top of a base image (the executable, the shared libraries it
loads, node_modules, Python's standard library and site-packages, and sources), each
hard-linked file once. What a Python deployment holds (`python_deployment`) is also what its
image holds (build.images.recipes).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ingestlab.build import artifacts
from ingestlab.config import ServiceName
from ingestlab.files import DistinctFiles, tree_bytes
from ingestlab.variants import program_of

# Shared libraries every glibc-based base image already holds (glibc itself and the GCC
# runtime), so they are not part of what a deployment adds. libstdc++ is not among them:
# distroless/cc-style images do not all ship it.
_BASE_LIBRARY = re.compile(r"^(ld-linux[\w.-]*|lib(c|m|dl|pthread|rt|resolv|util|gcc_s))\.so")
# ldd lines: "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2
# (0x...)"; "linux-vdso.so.1 (0x...)" is in the kernel and "=> not found" has no file.
_LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)", re.MULTILINE)


def shared_libraries(binary: Path) -> dict[str, Path]:
    """The shared libraries `binary` loads (soname -> resolved file), from `ldd`."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    return parse_ldd(out)


def parse_ldd(output: str) -> dict[str, Path]:
    """soname -> real path of each library with a file in `ldd` output (symlinks resolved)."""
    return {(name or Path(path).name): Path(path).resolve() for name, path in _LDD_LINE.findall(output)}


def _package_bytes(node_modules: Path, files: DistinctFiles) -> dict[str, int]:
    """Bytes per top-level package of `node_modules` (a scope's packages each on their own),
    largest first."""
    sizes: dict[str, int] = {}
    for entry in sorted(node_modules.iterdir()):
        packages = sorted(entry.iterdir()) if entry.name.startswith("@") and entry.is_dir() else [entry]
        for package in packages:
            sizes[str(package.relative_to(node_modules))] = files.tree_bytes(package)
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


@dataclass(frozen=True)
class Part:
    """One file or tree a deployment needs; `base` if any glibc-based base image has it."""

    kind: str  # executable, shared-library, node_modules, source
    name: str
    path: str
    bytes: int
    base: bool = False

    @classmethod
    def of(cls, kind: str, path: Path, size: int | None = None, *, name: str | None = None,
           base: bool = False) -> Part:
        return cls(kind, name or path.name, str(path), path.stat().st_size if size is None else size, base)


def _library_parts(binaries: list[Path], *, inside: Path | None = None) -> list[Part]:
    """One part per distinct library the binaries load, except files under `inside` (counted
    already)."""
    libraries: dict[Path, str] = {}
    for binary in binaries:
        for soname, path in shared_libraries(binary).items():
            if inside is None or not path.is_relative_to(inside):
                libraries.setdefault(path, soname)
    return [Part.of("shared-library", path, name=soname, base=bool(_BASE_LIBRARY.match(soname)))
            for path, soname in sorted(libraries.items(), key=lambda item: item[1])]


# --- Python: the interpreter, the standard library it can use, the distributions it imports ---
PYTHON_SOURCES = ("serve.py", "worker.py", "records.py")
# Parts of the standard library a headless service never imports: tests, IDLE, Tk, the
# installers, 2to3, the static library and Makefile of `config-*`, and the packages whose
# extension modules would bring Tk/X11, ncurses, gdbm or SQLite into a deployment.
_STDLIB_UNUSED = frozenset({"test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "lib2to3",
                            "distutils", "site-packages", "curses", "dbm", "sqlite3"})
_DYNLOAD_UNUSED = re.compile(r"^(_tkinter|_test\w*|_ctypes_test|_xxtestfuzz|xxlimited\w*|_curses\w*"
                             r"|_dbm|_gdbm|_sqlite3|readline|nis)\.")
# Byte code for -O and -OO: the service runs without them.
_OPTIMISED_PYC = re.compile(r"\.opt-[12]\.pyc$")
# Asked of the interpreter itself: its standard library, site-packages, and the files of each
# distribution whose modules the service's modules import (not those the environment's own
# start-up imports, such as a .pth file's).
_PROBE = """
import importlib.metadata as md, json, sys, sysconfig
before = set(sys.modules)
sys.path.insert(0, sys.argv[1])
import serve  # noqa: F401 (and through it worker, records, aiohttp, confluent_kafka)
owners = md.packages_distributions()
used = sorted({d for name in set(sys.modules) - before for d in owners.get(name.partition(".")[0], ())})
files = {d: sorted(str(f.locate()) for f in md.distribution(d).files or () if ".." not in f.parts)
         for d in used}
print(json.dumps({"stdlib": sysconfig.get_path("stdlib"), "purelib": sysconfig.get_path("purelib"),
                  "files": files}))
"""


def keep_in_stdlib(relative: PurePosixPath) -> bool:
    """True if the file at `relative` (to the standard library's directory) is part of what
    the service can use (see _STDLIB_UNUSED, _DYNLOAD_UNUSED)."""
    parts = relative.parts
    if not parts or parts[0] in _STDLIB_UNUSED or parts[0].startswith("config-"):
        return False
    if parts[0] == "lib-dynload" and len(parts) == 2 and _DYNLOAD_UNUSED.match(parts[1]):
        return False
    return not _OPTIMISED_PYC.search(parts[-1])


@dataclass(frozen=True)
class PythonDeployment:
    """What the Python service needs: the interpreter, its standard library (`stdlib`, the
    files `keep_in_stdlib` keeps), its site-packages dir and the files of each distribution
    it imports (`distributions`: name -> files), and its sources."""

    executable: Path
    stdlib: Path
    site_packages: Path
    distributions: dict[str, tuple[Path, ...]]
    sources: tuple[Path, ...]

    def stdlib_files(self) -> Iterator[tuple[Path, int]]:
        """(path, bytes) of each standard-library file kept, each inode once (the directories
        left out are not walked: the interpreter's own site-packages can be large)."""
        walker = DistinctFiles()
        for dirpath, dirnames, filenames in os.walk(self.stdlib):
            here = Path(dirpath)
            if here == self.stdlib:
                dirnames[:] = [d for d in dirnames if keep_in_stdlib(PurePosixPath(d, "x"))]
            relative = PurePosixPath(here.relative_to(self.stdlib).as_posix())
            kept = (here / name for name in filenames if keep_in_stdlib(relative / name))
            yield from walker.paths(kept)

    def site_package_files(self) -> tuple[Path, ...]:
        return tuple(sorted({f for files in self.distributions.values() for f in files}))

    def keep_in_site_packages(self) -> Callable[[PurePosixPath], bool]:
        """A filter over paths relative to site-packages: the imported distributions' files."""
        wanted = {PurePosixPath(f.relative_to(self.site_packages).as_posix())
                  for f in self.site_package_files()}
        return wanted.__contains__

    def elf_files(self) -> list[Path]:
        """The executable, and every extension module it may load (kept standard library's,
        the distributions')."""
        modules = [p for p, _size in self.stdlib_files() if p.suffix == ".so"]
        return [self.executable, *modules, *(f for f in self.site_package_files() if ".so" in f.suffixes)]


def python_deployment() -> PythonDeployment:
    """The Python service's deployment, as its interpreter (`artifacts.python_interpreter`)
    reports it after importing the service's modules (about 0.5 s)."""
    interpreter = artifacts.python_interpreter()
    probe = subprocess.run([str(interpreter), "-c", _PROBE, str(artifacts.PYTHON_DIR)], capture_output=True,
                           text=True, check=True, cwd=artifacts.PYTHON_DIR)
    found = json.loads(probe.stdout)
    return PythonDeployment(
        executable=interpreter.resolve(strict=True),
        stdlib=Path(found["stdlib"]), site_packages=Path(found["purelib"]).resolve(),
        distributions={name: tuple(Path(f).resolve() for f in files)
                       for name, files in found["files"].items()},
        sources=tuple(artifacts.PYTHON_DIR / name for name in PYTHON_SOURCES))


def footprint(service: ServiceName) -> dict[str, object]:
    """Bytes a deployment of `service` needs, with a per-part breakdown.

    Rust: the release binary and the shared libraries it links. Node: the `node` executable
    and its shared libraries, node_modules (through its symlink; every file, as `npm ci`
    leaves it, which for node-rdkafka includes librdkafka's sources and build tree), the
    libraries its native addons link from outside node_modules, and the service's sources.
    Python: the interpreter and the shared libraries it and its extension modules link
    (libpython among them), the standard library less what it never imports
    (`keep_in_stdlib`), the files of the distributions it imports (aiohttp and its
    dependencies, confluent_kafka with its bundled librdkafka) and its sources.

    Returns `service`, `total_bytes`, `total_without_base_bytes` (without the glibc and GCC
    runtime libraries any base image has), `parts` (a list of `Part` as dicts) and
    `packages` (Node: bytes per top-level package, Python: per distribution, largest first;
    Rust: empty).
    """
    packages: dict[str, int] = {}
    program = program_of(service)  # a variant's deployment is its program's
    if program == "rust":
        binary = artifacts.require(artifacts.rust_binary(), "the Rust service binary")
        parts = [Part.of("executable", binary), *_library_parts([binary])]
    elif program == "node":
        artifacts.require(artifacts.NODE_DIR / "node_modules" / "node-rdkafka",
                          "the Node service's node_modules")
        executable = Path(artifacts.node_executable()).resolve(strict=True)
        node_modules = (artifacts.NODE_DIR / "node_modules").resolve(strict=True)
        addons = [path for path, _size in DistinctFiles().paths(node_modules.rglob("*.node"))]
        packages = _package_bytes(node_modules, DistinctFiles())
        parts = [
            Part.of("executable", executable),
            *_library_parts([executable, *addons], inside=node_modules),
            Part.of("node_modules", node_modules, tree_bytes(node_modules)),
            *(Part.of("source", artifacts.NODE_DIR / name)
              for name in ("server.js", "cluster.js", "package.json", "package-lock.json")),
        ]
    else:
        deployment = python_deployment()
        files = DistinctFiles()
        sizes = {name: sum(size for _path, size in files.paths(paths))
                 for name, paths in deployment.distributions.items()}
        packages = dict(sorted(sizes.items(), key=lambda item: -item[1]))
        parts = [
            Part.of("executable", deployment.executable),
            *_library_parts(deployment.elf_files(), inside=deployment.site_packages),
            Part.of("stdlib", deployment.stdlib, sum(size for _path, size in deployment.stdlib_files())),
            Part.of("site-packages", deployment.site_packages, sum(sizes.values())),
            *(Part.of("source", path) for path in deployment.sources),
        ]
    total = sum(part.bytes for part in parts)
    base = sum(part.bytes for part in parts if part.base)
    return {"service": service, "total_bytes": total, "total_without_base_bytes": total - base,
            "parts": [dataclasses.asdict(part) for part in parts], "packages": packages}
