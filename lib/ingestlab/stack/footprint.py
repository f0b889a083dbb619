"""Deployment footprint: how many bytes a deployment of each service needs.

It stands in for the article's container image sizes where no image is built: it counts the
files a deployment needs on top of a base image (the executable, the shared libraries it
loads, node_modules and sources), each hard-linked file once.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ingestlab.config import ServiceName
from ingestlab.files import DistinctFiles, tree_bytes
from ingestlab.stack import artifacts
from ingestlab.stack.services import spec_for
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


def footprint(service: ServiceName) -> dict[str, object]:
    """Bytes a deployment of `service` needs, with a per-part breakdown.

    Rust: the release binary and the shared libraries it links. Node: the `node` executable
    and its shared libraries, node_modules (through its symlink; every file, as `npm ci`
    leaves it, which for node-rdkafka includes librdkafka's sources and build tree), the
    libraries its native addons link from outside node_modules, and the service's sources.

    Returns `service`, `total_bytes`, `total_without_base_bytes` (without the glibc and GCC
    runtime libraries any base image has), `parts` (a list of `Part` as dicts) and
    `packages` (Node: bytes per top-level package, largest first; Rust: empty).
    """
    packages: dict[str, int] = {}
    program = program_of(service)  # a variant's deployment is its program's
    if program == "rust":
        binary = artifacts.require(artifacts.rust_binary(), "the Rust service binary")
        parts = [Part.of("executable", binary), *_library_parts([binary])]
    elif program == "node":
        executable = Path(spec_for("node").argv[0]).resolve(strict=True)
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
        raise ValueError(f"unknown service {service!r}")
    total = sum(part.bytes for part in parts)
    base = sum(part.bytes for part in parts if part.base)
    return {"service": service, "total_bytes": total, "total_without_base_bytes": total - base,
            "parts": [dataclasses.asdict(part) for part in parts], "packages": packages}
