"""The ELF files an image holds and the shared libraries they load: what `ldd` lists goes in at
the paths the loader searches (`library_entries`), the program interpreter at the path the
executables name."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ingestlab.build.footprint import shared_libraries
from ingestlab.build.images.contents import Entry


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def elf_interpreter(path: Path) -> str | None:
    """The program interpreter (PT_INTERP) an ELF file asks for, e.g.
    "/lib64/ld-linux-x86-64.so.2"; None for static executables, shared objects and non-ELF."""
    with path.open("rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            return None
        wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        if wide:
            f.seek(0x20)
            (phoff,) = struct.unpack(order + "Q", f.read(8))
            f.seek(0x36)
        else:
            f.seek(0x1C)
            (phoff,) = struct.unpack(order + "I", f.read(4))
            f.seek(0x2A)
        phentsize, phnum = struct.unpack(order + "HH", f.read(4))
        for index in range(phnum):
            f.seek(phoff + index * phentsize)
            if wide:
                p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack(order + "IIQQQQ", f.read(40))
            else:
                p_type, offset, _vaddr, _paddr, filesz = struct.unpack(order + "IIIII", f.read(20))
            if p_type == 3:  # PT_INTERP
                f.seek(offset)
                return f.read(filesz).rstrip(b"\0").decode()
    return None


def library_entries(binaries: Iterable[Path], *, inside: Path | None = None) -> list[Entry]:
    """One entry per shared library the binaries load (from `ldd`), except those under
    `inside` (shipped with the tree already): the interpreter at the path the executables
    name, every other library under its soname in the directory its file is in (on the
    loader's default search path)."""
    binaries = list(binaries)
    interpreters = {Path(i).name: i for b in binaries if (i := elf_interpreter(b))}
    entries: dict[str, Entry] = {}
    for binary in binaries:
        try:
            loaded = shared_libraries(binary)
        except subprocess.CalledProcessError:  # ldd: "not a dynamic executable" (static)
            continue
        for soname, path in loaded.items():
            if inside is not None and path.is_relative_to(inside):
                continue
            dest = interpreters.get(soname) or str(path.parent / soname)
            entries.setdefault(dest, Entry(dest, "shared-libraries", source=path,
                                           mode=path.stat().st_mode & 0o7777, library=soname))
    return sorted(entries.values(), key=lambda e: e.dest)
