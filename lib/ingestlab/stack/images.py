"""The workbook's container images, built here out of what `make setup` already built.

No registry can be reached, so no image is pulled: each image is a build context (a directory
with the files and a Dockerfile) handed to the workbook's engine (`engine/docker_engine.py`).
Two flavours per component:

- `minimal`: `FROM scratch`, holding only what runs: the executable (stripped: symbols and
  debug sections are never executed), the shared libraries `ldd` lists (at the paths the
  loader searches), Node's modules trimmed to what `require` loads at run time, a `jlink`
  JRE for Kafka, a static busybox as `/bin/sh` for Kafka, and `/etc/passwd` + `/etc/group`
  (`docker run --user root` looks the name up there) and `/tmp`.
- `conventional`: the same files on a Debian minbase root (`ingestlab/debian-minbase:<key>`,
  made once with `debootstrap --variant=minbase` and `docker import`); libraries the base
  already has are not copied again.

Layout the container runtime relies on (all images run with host networking and `--user root`;
the runtime passes the command, env and bind mounts):

- rust: `/app/ingest-rust`, WORKDIR /app, CMD ["/app/ingest-rust"] (PORT, KAFKA_BROKERS, RUST_LOG).
- node: `/usr/local/bin/node`, `/app/server.js`, `/app/cluster.js`, `/app/package.json`, `/app/node_modules`,
  WORKDIR /app, CMD ["/usr/local/bin/node", "server.js"].
- python: `/usr/local/bin/python3` (the host's interpreter, which finds its standard library
  at `/usr/local/lib/python3.X` from its own path), that standard library less what the service
  never imports (`footprint.keep_in_stdlib`), the files of the distributions the service
  imports in its `site-packages` (aiohttp and its dependencies, confluent_kafka with its
  bundled librdkafka), `/app/serve.py` and its modules; WORKDIR /app,
  CMD ["/usr/local/bin/python3", "serve.py"] (PORT, KAFKA_BROKERS, ACK_MODE).
- kafka: `/opt/java/bin/java` (JAVA_HOME=/opt/java, on PATH), jars in `/opt/kafka/libs/`, the
  broker's log4j2 config at `/opt/kafka/config/<its name>`, `/bin/sh`; WORKDIR /opt/kafka.

Every image is labelled `org.ingestlab.component`, `org.ingestlab.flavour`, `org.ingestlab.key`
(a digest of everything that went in: file contents, the keys of cached trees, the recipe) and
`org.ingestlab.parts` (the parts in layer order, for `image_parts`). Its tag carries the key,
so `ensure_image` builds only when an input changed. One layer per part, so the engine's own
history gives the size of each part. Older images stay, like the other keyed caches (worktrees
with other sources share the engine and would otherwise rebuild each other's images).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from ingestlab.engine.labels import (
    IMAGE_BASE_LABEL,
    IMAGE_COMPONENT_LABEL,
    IMAGE_FLAVOUR_LABEL,
    IMAGE_KEY_LABEL,
    IMAGE_PARTS_LABEL,
)
from ingestlab.files import DistinctFiles
from ingestlab.host.component import ArtifactMissing
from ingestlab.names import CONVENTIONAL, IMAGE_FLAVOURS, MINIMAL, ImageFlavour
from ingestlab.paths import cache_root
from ingestlab.stack import artifacts
from ingestlab.stack.footprint import keep_in_stdlib, python_deployment, shared_libraries
from ingestlab.units import MB

if TYPE_CHECKING:
    from ingestlab.engine.docker_engine import DockerEngine

COMPONENTS = ("kafka", "node", "rust", "python")

# Raise when what goes into an image changes in a way the inputs' digests do not show (the
# layout, the trimming rules, the Dockerfile): every tag changes with it.
RECIPE_VERSION = 1
BASE_RECIPE_VERSION = 1
REPOSITORY = "ingestlab"
BASE_REPOSITORY = f"{REPOSITORY}/debian-minbase"
BASE_PART = "base root"

# Parts, in the order of their layers.
PART_ORDER = ("skeleton", "shared-libraries", "shell", "jre", "executable", "stdlib", "site-packages",
              "node_modules", "jars", "config", "sources")

RUST_BINARY = "/app/ingest-rust"
NODE_BINARY = "/usr/local/bin/node"
PYTHON_BINARY = "/usr/local/bin/python3"
PYTHON_LIB = "/usr/local/lib"
JAVA_HOME = "/opt/java"
KAFKA_HOME = "/opt/kafka"
PATH_ENV = "/opt/java/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# jlink: the modules jdeps finds in the Kafka jars, plus two it cannot see (loaded by name at
# run time): JMX's platform MBeans (jdk.management) and the EC algorithms TLS negotiates
# (jdk.crypto.ec). No debug info, man pages or headers; compressed module image. The jars
# need java.desktop (java.beans); its native libraries for windows, sound, fonts, colour and
# JPEG are left out: a headless broker never loads them, and they would bring X11, ALSA,
# freetype, harfbuzz, lcms2 and libjpeg into the image.
JRE_EXTRA_MODULES = ("jdk.management", "jdk.crypto.ec")
JRE_EXCLUDED_LIBRARIES = ("libawt_xawt.so", "libsplashscreen.so", "libjsound.so", "libfontmanager.so",
                          "liblcms.so", "libjavajpeg.so")
JLINK_FLAGS = ("--strip-debug", "--no-man-pages", "--no-header-files", "--compress=2",
               "--exclude-files=" + ",".join(f"**/{name}" for name in JRE_EXCLUDED_LIBRARIES))

# node_modules trimmed to what runs. `nan` is C++ headers for compiling addons (only
# binding.gyp asks for it). node-rdkafka: its JavaScript, its compiled addon and the
# librdkafka shared objects the addon loads from `$ORIGIN/../deps`; not librdkafka's sources,
# static archives and build tree (520 of its 540 MB).
NODE_BUILD_ONLY_PACKAGES = frozenset({"nan"})
NODE_NATIVE_PACKAGE_KEEP: Mapping[str, tuple[str, ...]] = {
    "node-rdkafka": ("package.json", "LICENSE.txt", "librdkafka.js", "lib/**",
                     "build/Release/*.node", "build/deps/*.so.*"),
}
_NODE_MODULES_SKIP = frozenset({".bin", ".package-lock.json"})

_PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
_GROUP = "root:x:0:\n"


# --- what goes in ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One thing in an image: a host file, a generated text file, an empty directory, or a
    host tree (copied with `keep`, its content named by `tree_key`)."""

    dest: str  # absolute path in the image
    part: str  # one of PART_ORDER
    kind: Literal["file", "text", "dir", "tree"] = "file"
    source: Path | None = None
    text: str | None = None
    mode: int = 0o644
    strip: bool = False  # file: strip symbols and debug sections on the way in
    tree_key: str | None = None  # tree: a digest of its content (a keyed cache dir's name)
    keep: Callable[[PurePosixPath], bool] | None = dataclasses.field(default=None, compare=False)
    library: str | None = None  # shared library: its soname (skipped where the base has it)

    def digest(self) -> str:
        """What this entry contributes to the image key."""
        if self.kind == "file":
            assert self.source is not None
            content = _file_digest(self.source)
        elif self.kind == "text":
            content = hashlib.sha256((self.text or "").encode()).hexdigest()
        elif self.kind == "tree":
            content = f"tree:{self.tree_key}"
        else:
            content = "dir"
        return f"{self.dest}|{self.part}|{self.kind}|{self.mode:o}|{int(self.strip)}|{content}"


@dataclass(frozen=True)
class Recipe:
    """Everything one component's image needs, before the flavour is chosen."""

    component: str
    entries: tuple[Entry, ...]
    workdir: str
    cmd: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


@functools.lru_cache(maxsize=512)
def _digest_of(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    """sha256 of a file's content (remembered per path, size, mtime and inode: node is 99 MB)."""
    st = path.stat()
    return _digest_of(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def content_key(recipe: Recipe, flavour: ImageFlavour, base_key: str = "") -> str:
    """16 hex digits naming everything that goes into `recipe`'s image in `flavour`."""
    h = hashlib.sha256()
    header = [RECIPE_VERSION, recipe.component, flavour, base_key, recipe.workdir, list(recipe.cmd),
              [list(pair) for pair in recipe.env]]
    h.update(json.dumps(header).encode())
    for entry in sorted(recipe.entries, key=lambda e: (e.dest, e.part)):
        h.update(b"\n" + entry.digest().encode())
    return h.hexdigest()[:16]


def format_tag(component: str, flavour: ImageFlavour, key: str) -> str:
    """"ingestlab/<component>:<flavour>-<key>", e.g. "ingestlab/rust:minimal-0123456789abcdef"."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; choose from {COMPONENTS}")
    if flavour not in IMAGE_FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; choose from {IMAGE_FLAVOURS}")
    return f"{REPOSITORY}/{component}:{flavour}-{key}"


# --- ELF and libraries ------------------------------------------------------------------------
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


def _file(dest: str, part: str, source: Path, *, strip: bool = False) -> Entry:
    return Entry(dest, part, source=source, mode=source.stat().st_mode & 0o7777, strip=strip)


def _skeleton() -> list[Entry]:
    return [Entry("/etc/passwd", "skeleton", kind="text", text=_PASSWD),
            Entry("/etc/group", "skeleton", kind="text", text=_GROUP),
            Entry("/tmp", "skeleton", kind="dir", mode=0o1777)]


# --- node_modules, trimmed ------------------------------------------------------------------
def _matches(parts: Sequence[str], pattern: str) -> bool:
    wanted = pattern.split("/")
    if wanted[-1] == "**":
        prefix = wanted[:-1]
        return len(parts) > len(prefix) and all(
            fnmatch.fnmatchcase(p, w) for p, w in zip(parts, prefix, strict=False))
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted,
                                                                                         strict=True))


def keep_in_node_modules(relative: PurePosixPath) -> bool:
    """True if the file at `relative` (to node_modules) is needed at run time."""
    parts = relative.parts
    if not parts or parts[0] in _NODE_MODULES_SKIP:
        return False
    width = 2 if parts[0].startswith("@") else 1
    package, inner = "/".join(parts[:width]), parts[width:]
    if package in NODE_BUILD_ONLY_PACKAGES:
        return False
    patterns = NODE_NATIVE_PACKAGE_KEEP.get(package)
    if patterns is None:
        return True
    return any(_matches(inner, pattern) for pattern in patterns)


# --- the JRE --------------------------------------------------------------------------------
def java_home() -> Path:
    """The JDK whose `java` is on PATH (its jlink and jdeps make the image's JRE)."""
    java = shutil.which("java")
    if java is None:
        raise ArtifactMissing(f"java not found on PATH: {artifacts.SETUP_HINT}")
    return Path(java).resolve().parents[1]


def _jdk_release(home: Path) -> dict[str, str]:
    text = (home / "release").read_text()
    return {k: v.strip('"') for k, v in re.findall(r'^(\w+)=(.*)$', text, re.MULTILINE)}


def jre_dir() -> Path:
    """Where the jlink JRE for the current JDK and Kafka jars lives (`<dir>/jre`)."""
    home = java_home()
    h = hashlib.sha256((home / "release").read_bytes())
    h.update(json.dumps([artifacts.kafka_libs_dir().name, JRE_EXTRA_MODULES, JLINK_FLAGS]).encode())
    return cache_root() / "images" / "jre" / h.hexdigest()[:16]


def build_jre() -> Path:
    """The jlink JRE (about 20 s the first time: jdeps reads every Kafka jar); returns its
    root."""
    final = jre_dir()
    if (final / "jre" / "bin" / "java").exists():
        return final / "jre"
    home = java_home()
    jars = sorted(Path(artifacts.kafka_classpath()).parent.glob("*.jar"))
    release = _jdk_release(home).get("JAVA_VERSION", "17").split(".")[0]
    staging = artifacts.staging_dir(final)
    print(f"  jdeps over {len(jars)} Kafka jars", flush=True)
    plain = class_path_jars(jars, staging / "jars")
    done = subprocess.run([str(home / "bin" / "jdeps"), "--ignore-missing-deps", "--multi-release", release,
                           "--print-module-deps", *map(str, plain)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"jdeps failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
    shutil.rmtree(staging / "jars")
    modules = sorted({*done.stdout.strip().split(","), *JRE_EXTRA_MODULES} - {""})
    artifacts.run([str(home / "bin" / "jlink"), "--add-modules", ",".join(modules), *JLINK_FLAGS,
                   "--output", str(staging / "jre")], cwd=staging)
    (staging / "modules.txt").write_text("\n".join(modules) + "\n")
    artifacts.publish(staging, final)
    return final / "jre"


def class_path_jars(jars: Iterable[Path], directory: Path) -> list[Path]:
    """`jars` as plain class-path jars in `directory`: a jar with a module-info.class is
    rewritten without it (jdeps would resolve it as a module, and fail on the non-modular
    jars it requires), any other is linked. Kafka runs them all from the class path anyway."""
    directory.mkdir(parents=True, exist_ok=True)
    plain = []
    for jar in jars:
        target = directory / jar.name
        with zipfile.ZipFile(jar) as source:
            infos = source.infolist()
            if any(info.filename.endswith("module-info.class") for info in infos):
                with zipfile.ZipFile(target, "w") as rewritten:
                    for info in infos:
                        if not info.filename.endswith("module-info.class"):
                            rewritten.writestr(info, source.read(info))
            else:
                _link_or_copy(jar, target)
        plain.append(target)
    return plain


# --- a static shell -------------------------------------------------------------------------
def static_shell() -> Path:
    """A statically linked busybox (Debian's busybox-static), run as `/bin/sh`."""
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).exists() and elf_interpreter(Path(candidate).resolve()) is None:
            return Path(candidate).resolve()
    raise ArtifactMissing("a static busybox (Debian's busybox-static) is not installed: "
                                    "run `make setup`")


# --- recipes ----------------------------------------------------------------------------------
def rust_recipe() -> Recipe:
    binary = artifacts.require(artifacts.rust_binary(), "the Rust service binary")
    entries = [*library_entries([binary]), _file(RUST_BINARY, "executable", binary, strip=True)]
    return Recipe("rust", tuple(entries), workdir="/app", cmd=(RUST_BINARY,))


def node_recipe() -> Recipe:
    found = shutil.which("node")
    if found is None:
        raise ArtifactMissing(f"node not found on PATH: {artifacts.SETUP_HINT}")
    node = Path(found).resolve()
    modules = artifacts.require(artifacts.NODE_DIR / "node_modules", "the Node service's node_modules")
    modules = modules.resolve()
    addons = [path for path, _size in DistinctFiles().paths(modules.rglob("*.node"))
              if keep_in_node_modules(PurePosixPath(path.relative_to(modules).as_posix()))]
    entries = [
        *library_entries([node, *addons], inside=modules),
        _file(NODE_BINARY, "executable", node, strip=True),
        # The cache dir's name is a digest of package-lock.json and node's version.
        Entry("/app/node_modules", "node_modules", kind="tree", source=modules,
              tree_key=modules.parent.name, keep=keep_in_node_modules, mode=0o755),
        *(_file(f"/app/{name}", "sources", artifacts.NODE_DIR / name)
          for name in ("server.js", "cluster.js", "package.json")),
    ]
    return Recipe("node", tuple(entries), workdir="/app", cmd=(NODE_BINARY, "server.js"))


def listing_key(root: Path, files: Iterable[Path]) -> str:
    """16 hex digits naming the files of a host tree that is no keyed cache (the interpreter's
    standard library, site-packages) by their paths under `root`, sizes and modification times:
    a reinstall or an upgrade changes it, without reading every byte on each `ensure_image`."""
    h = hashlib.sha256()
    for path in sorted(files):
        st = path.stat()
        h.update(f"{path.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def python_recipe() -> Recipe:
    deployment = python_deployment()
    stdlib = f"{PYTHON_LIB}/{deployment.stdlib.name}"
    entries = [
        *library_entries(deployment.elf_files(), inside=deployment.site_packages),
        _file(PYTHON_BINARY, "executable", deployment.executable, strip=True),
        Entry(stdlib, "stdlib", kind="tree", source=deployment.stdlib, keep=keep_in_stdlib, mode=0o755,
              tree_key=listing_key(deployment.stdlib, (p for p, _size in deployment.stdlib_files()))),
        Entry(f"{stdlib}/site-packages", "site-packages", kind="tree", source=deployment.site_packages,
              keep=deployment.keep_in_site_packages(), mode=0o755,
              tree_key=listing_key(deployment.site_packages, deployment.site_package_files())),
        *(_file(f"/app/{path.name}", "sources", path) for path in deployment.sources),
    ]
    return Recipe("python", tuple(entries), workdir="/app", cmd=(PYTHON_BINARY, "serve.py"))


def kafka_log4j_config() -> Path:
    """The log4j2 config the native broker uses (the image keeps its file name)."""
    from ingestlab.stack.kafka import _LOG4J

    return _LOG4J


def kafka_recipe() -> Recipe:
    libs = Path(artifacts.kafka_classpath()).parent
    jre = build_jre()
    elf_files = [path for path, _size in DistinctFiles().tree(jre) if is_elf(path)]
    log4j = kafka_log4j_config()
    entries = [
        *library_entries(elf_files, inside=jre),
        _file("/bin/sh", "shell", static_shell()),
        Entry(JAVA_HOME, "jre", kind="tree", source=jre, tree_key=jre.parent.name, mode=0o755),
        Entry(f"{KAFKA_HOME}/libs", "jars", kind="tree", source=libs, tree_key=libs.name, mode=0o755),
        _file(f"{KAFKA_HOME}/config/{log4j.name}", "config", log4j),
    ]
    return Recipe("kafka", tuple(entries), workdir=KAFKA_HOME, cmd=(f"{JAVA_HOME}/bin/java", "-version"),
                  env=(("JAVA_HOME", JAVA_HOME), ("PATH", PATH_ENV)))


RECIPES: dict[str, Callable[[], Recipe]] = {"kafka": kafka_recipe, "node": node_recipe, "rust": rust_recipe,
                                             "python": python_recipe}


def recipe(component: str) -> Recipe:
    """`component`'s recipe from the artifacts on disk (Kafka's builds the JRE if missing)."""
    if component not in RECIPES:
        raise ValueError(f"unknown component {component!r}; choose from {COMPONENTS}")
    return RECIPES[component]()


def flavour_entries(recipe: Recipe, flavour: ImageFlavour, base_root: Path | None = None) -> list[Entry]:
    """The entries an image of `flavour` gets: minimal adds the skeleton; conventional leaves
    out the shell and every library `base_root` already has."""
    if flavour == MINIMAL:
        return [*_skeleton(), *recipe.entries]
    if base_root is None:
        raise ValueError("the conventional flavour needs the base root to see what it has")
    return [e for e in recipe.entries
            if e.part != "shell" and not (e.library and base_has_library(base_root, e.dest))]


def base_has_library(base_root: Path, dest: str) -> bool:
    """True if the base root has a file (or a link to one) at `dest` or under its name in one
    of the loader's directories."""
    name = PurePosixPath(dest).name
    parent = PurePosixPath(dest).parent
    dirs = {parent, *(PurePosixPath(d) / parent.name for d in ("/lib", "/usr/lib")), PurePosixPath("/lib64")}
    return any(_exists_in_root(base_root, str(d / name)) for d in dirs)


def _exists_in_root(root: Path, dest: str) -> bool:
    """`dest` exists in `root`, resolving symlinks (relative or absolute) inside `root`, never
    outside it."""
    pending = [p for p in PurePosixPath(dest).parts if p != "/"]
    resolved: list[str] = []
    for _hop in range(200):
        if not pending:
            return root.joinpath(*resolved).exists()
        head = pending.pop(0)
        if head in ("", "."):
            continue
        if head == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, head)
        if candidate.is_symlink():
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                resolved = []
            pending = [p for p in target.parts if p != "/"] + pending
            continue
        if not candidate.exists():
            return False
        resolved.append(head)
    return False  # a symlink loop


def dockerfile(entries: Sequence[Entry], recipe: Recipe, base: str | None) -> tuple[str, list[str]]:
    """The Dockerfile for `entries` (one COPY layer per part, in PART_ORDER) and the parts in
    layer order."""
    parts = [part for part in PART_ORDER if any(e.part == part for e in entries)]
    unknown = {e.part for e in entries} - set(PART_ORDER)
    if unknown:
        raise ValueError(f"entries with unknown parts {sorted(unknown)}")
    lines = [f"FROM {base or 'scratch'}"]
    lines += [f"COPY {part}/ /" for part in parts]
    lines += [f"ENV {name}={value}" for name, value in recipe.env]
    lines += [f"WORKDIR {recipe.workdir}", f"CMD {json.dumps(list(recipe.cmd))}"]
    return "\n".join(lines) + "\n", parts


# --- building -------------------------------------------------------------------------------
def _link_or_copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)  # same file system as the cache: no copy
    except OSError:
        shutil.copy2(source, dest)


def _materialise(entry: Entry, part_dir: Path) -> None:
    target = part_dir / entry.dest.lstrip("/")
    if entry.kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(entry.mode)
    elif entry.kind == "text":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry.text or "")
        target.chmod(entry.mode)
    elif entry.kind == "file":
        assert entry.source is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry.strip:
            subprocess.run(["strip", "-o", str(target), str(entry.source)], check=True)
            target.chmod(entry.mode)
        else:
            _link_or_copy(entry.source, target)
    else:
        assert entry.source is not None
        _copy_tree(entry.source, target, entry.keep)


def _copy_tree(source: Path, target: Path, keep: Callable[[PurePosixPath], bool] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(source):
        here = Path(dirpath)
        for name in [*filenames, *(d for d in dirnames if (here / d).is_symlink())]:
            path = here / name
            relative = path.relative_to(source)
            if keep is not None and not keep(PurePosixPath(relative.as_posix())):
                continue
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                os.symlink(os.readlink(path), dest)
            elif path.is_file():
                _link_or_copy(path, dest)


def build_context(directory: Path, entries: Sequence[Entry], recipe: Recipe, base: str | None) -> list[str]:
    """Write the build context into `directory` (one subdirectory per part, and the
    Dockerfile); returns the parts in layer order."""
    text, parts = dockerfile(entries, recipe, base)
    for entry in entries:
        _materialise(entry, directory / entry.part)
    (directory / "Dockerfile").write_text(text)
    return parts


def _has_image(engine: DockerEngine, tag: str) -> bool:
    import docker.errors

    try:
        engine.client().images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def image_tag(component: str, flavour: ImageFlavour) -> str:
    """The tag of `component`'s image in `flavour` for the artifacts on disk now, e.g.
    "ingestlab/rust:minimal-<key>" (Kafka's may build the jlink JRE first: about a minute)."""
    return format_tag(component, flavour, _key(recipe(component), flavour))


def _key(rec: Recipe, flavour: ImageFlavour) -> str:
    return content_key(rec, flavour, base_key() if flavour == CONVENTIONAL else "")


def ensure_image(engine: DockerEngine, component: str, flavour: ImageFlavour) -> str:
    """`component`'s image in `flavour`, built if its tag is missing; returns the tag. About a
    second when it exists (the inputs' digests); a build takes 5-60 s."""
    rec = recipe(component)
    return _ensure(engine, rec, flavour)


def _ensure(engine: DockerEngine, rec: Recipe, flavour: ImageFlavour) -> str:
    key = _key(rec, flavour)
    tag = format_tag(rec.component, flavour, key)
    if _has_image(engine, tag):
        return tag
    begin = time.monotonic()
    base = base_root = None
    if flavour == CONVENTIONAL:
        base = ensure_base(engine)
        base_root = build_base_root()  # kept since the base was made (made again if deleted)
    entries = flavour_entries(rec, flavour, base_root)
    work = cache_root() / "images" / "contexts"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=f"{rec.component}-{flavour}-") as context:
        parts = build_context(Path(context), entries, rec, base)
        labels = {IMAGE_COMPONENT_LABEL: rec.component, IMAGE_FLAVOUR_LABEL: flavour, IMAGE_KEY_LABEL: key,
                  IMAGE_PARTS_LABEL: ",".join(parts)}
        if base:
            labels[IMAGE_BASE_LABEL] = base
        engine.client().images.build(path=context, tag=tag, labels=labels, rm=True, forcerm=True)
    print(f"  built {tag} in {time.monotonic() - begin:.1f} s ({image_bytes(engine, tag) / MB:.1f} MB)",
          flush=True)
    return tag


def build_images(engine: DockerEngine | None = None,
                 flavours: Iterable[ImageFlavour] = IMAGE_FLAVOURS) -> dict[str, str]:
    """Every component's image in each flavour (eight by default), built where missing;
    returns {"<component>:<flavour>": tag}. Without `engine`, the shared engine."""
    if engine is None:
        from ingestlab.engine.docker_engine import shared_engine

        engine = shared_engine()
    flavours = tuple(flavours)
    tags = {}
    for component in COMPONENTS:
        rec = recipe(component)
        for flavour in flavours:
            tags[f"{component}:{flavour}"] = _ensure(engine, rec, flavour)
    return tags


def image_bytes(engine: DockerEngine, tag: str) -> int:
    """The image's size in bytes as the engine reports it (uncompressed, base layers included)."""
    return int(engine.client().images.get(tag).attrs["Size"])


def image_parts(engine: DockerEngine, tag: str) -> list[dict]:
    """The image's size by part, from the engine's layer history: {"part": str, "bytes": int},
    in layer order; the base image's layers (conventional) as one part, "base root"."""
    client = engine.client()
    labels = client.images.get(tag).labels or {}
    names = [name for name in labels.get(IMAGE_PARTS_LABEL, "").split(",") if name]
    return parts_from_history(client.api.history(tag), names)


def parts_from_history(history: Sequence[Mapping], names: Sequence[str]) -> list[dict]:
    """Pair the COPY layers of `history` (newest first, as the engine gives it) with `names`
    (oldest first); every other layer with bytes counts as "base root"."""
    base = 0
    copies = []
    for layer in reversed(history):
        created_by = layer.get("CreatedBy") or ""
        size = int(layer.get("Size") or 0)
        if re.search(r"\bCOPY\b", created_by):
            copies.append(size)
        else:
            base += size
    if len(copies) != len(names):
        raise ValueError(f"{len(copies)} COPY layers but {len(names)} part names ({names})")
    parts = [{"part": BASE_PART, "bytes": base}] if base else []
    return parts + [{"part": name, "bytes": size} for name, size in zip(names, copies, strict=True)]


# --- the Debian minbase root ----------------------------------------------------------------
def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs of /etc/os-release (quotes removed)."""
    pairs = re.findall(r"^([A-Z0-9_]+)=(.*)$", text, re.MULTILINE)
    return {key: value.strip().strip("'\"") for key, value in pairs}


def parse_apt_sources(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(URI, suites) of each `deb` source in an apt sources text, one-line (sources.list) or
    deb822 (*.sources) format, in order; `deb-src` and disabled stanzas are skipped."""
    sources: list[tuple[str, tuple[str, ...]]] = []
    # A comment line is dropped whole (in deb822 it does not end a stanza; a blank line does).
    lines = [line.split("#", 1)[0].rstrip() for line in text.splitlines()
             if not line.lstrip().startswith("#")]
    for line in lines:
        match = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if match:
            sources.append((match.group(1), (match.group(2),)))
    stanza: dict[str, str] = {}
    for line in [*lines, ""]:
        if not line.strip():
            if stanza:
                types = stanza.get("types", "").split()
                enabled = stanza.get("enabled", "yes").lower() != "no"
                if "deb" in types and enabled:
                    suites = tuple(stanza.get("suites", "").split())
                    sources += [(uri, suites) for uri in stanza.get("uris", "").split()]
            stanza = {}
            continue
        field = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
        if field:
            stanza[field.group(1).lower()] = field.group(2)
    return sources


def mirror_for(suite: str, texts: Iterable[str]) -> str:
    """The first apt source URI that serves `suite` itself (not -updates or -security)."""
    for text in texts:
        for uri, suites in parse_apt_sources(text):
            if suite in suites and uri.startswith(("http://", "https://", "file:", "ftp://")):
                return uri
    raise RuntimeError(f"no apt source for {suite!r} in this machine's apt sources "
                       "(/etc/apt/sources.list, /etc/apt/sources.list.d/)")


def _apt_source_texts(etc_apt: Path = Path("/etc/apt")) -> list[str]:
    files = [etc_apt / "sources.list"]
    directory = etc_apt / "sources.list.d"
    if directory.is_dir():
        files += sorted(p for p in directory.iterdir() if p.suffix in (".list", ".sources"))
    return [p.read_text(errors="replace") for p in files if p.is_file()]


def debian_suite() -> str:
    """This machine's Debian suite (codename), e.g. "bookworm"."""
    release = parse_os_release(Path("/etc/os-release").read_text())
    suite = release.get("VERSION_CODENAME")
    if not suite:
        raise RuntimeError("no VERSION_CODENAME in /etc/os-release: the minbase root needs a Debian host")
    return suite


def _architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def base_key() -> str:
    """16 hex digits naming the minbase root: suite, architecture, variant, recipe."""
    payload = json.dumps([BASE_RECIPE_VERSION, debian_suite(), _architecture(), "minbase"])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def base_tag() -> str:
    return f"{BASE_REPOSITORY}:{base_key()}"


def base_root_dir() -> Path:
    """The debootstrapped root the base image was imported from (kept to see what it holds)."""
    return cache_root() / "images" / "minbase" / base_key() / "root"


# Files of the root that are not wanted in an image: apt's lists and caches (no apt runs in
# these images; and their names and sources.list would carry the mirror's name).
_BASE_PRUNE = ("var/lib/apt/lists", "var/cache/apt", "var/log", "var/cache/debconf/templates.dat-old")


def build_base_root() -> Path:
    """`debootstrap --variant=minbase <suite>` from the machine's apt mirror (about 30 s)."""
    final = base_root_dir()
    if (final / "bin" / "sh").exists() or (final / "bin").is_symlink():
        return final
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise ArtifactMissing("debootstrap is not installed: run `make setup`")
    suite = debian_suite()
    mirror = mirror_for(suite, _apt_source_texts())
    staging = final.parent / f".root.{os.getpid()}.partial"
    remove_root(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    # The mirror stays on the command line: it is not printed or written anywhere.
    print(f"  $ debootstrap --variant=minbase {suite} {staging} <this machine's apt mirror>", flush=True)
    try:
        subprocess.run([debootstrap, "--variant=minbase", f"--arch={_architecture()}", suite, str(staging),
                        mirror], check=True, stdout=subprocess.DEVNULL)
    except BaseException:
        remove_root(staging)
        raise
    _unmount_under(staging)
    for relative in _BASE_PRUNE:
        target = staging / relative
        if target.is_dir() and not target.is_symlink():
            for child in target.iterdir():
                remove_root(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        elif target.exists():
            target.unlink()
    (staging / "etc" / "apt" / "sources.list").write_text(
        "# ingestlab: no package sources; images are built from the host's artifacts\n")
    _publish_dir(staging, final)
    return final


def _publish_dir(staging: Path, final: Path) -> None:
    try:
        staging.rename(final)
    except OSError:
        if not final.exists():
            raise
        remove_root(staging)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    mounts = []
    with open("/proc/self/mounts") as f:
        for line in f:
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix) or point == prefix[:-1]:
                mounts.append(point)
    return mounts


def _unmount_under(root: Path) -> None:
    """Unmount whatever debootstrap left mounted in `root` (proc, sys, /dev binds), deepest
    first, so that nothing of the host is reachable through it."""
    if not root.exists():
        return
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def remove_root(root: Path) -> None:
    """Delete a (partial) root tree without ever crossing into a mounted file system."""
    if not root.exists() and not root.is_symlink():
        return
    _unmount_under(root)
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


def ensure_base(engine: DockerEngine) -> str:
    """`ingestlab/debian-minbase:<key>`, made once: debootstrap into the cache, then `docker
    import` of its tar (about 30 s cold, a second to import again from the kept root)."""
    tag = base_tag()
    if _has_image(engine, tag):
        return tag
    root = build_base_root()
    begin = time.monotonic()
    with tempfile.TemporaryDirectory(dir=root.parent, prefix="import-") as work:
        archive = Path(work) / "root.tar"
        subprocess.run(["tar", "--numeric-owner", "--one-file-system", "-C", str(root),
                        "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                        "-cf", str(archive), "."], check=True)
        repository, key = tag.rsplit(":", 1)
        engine.client().api.import_image_from_file(str(archive), repository=repository, tag=key)
    print(f"  imported {tag} in {time.monotonic() - begin:.1f} s ({image_bytes(engine, tag) / MB:.1f} MB)",
          flush=True)
    return tag
