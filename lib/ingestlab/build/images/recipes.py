"""Each component's recipe: the entries of its image, from the artifacts `make setup` built, at
the paths of `build.layout`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ingestlab.build import artifacts
from ingestlab.build.footprint import keep_in_stdlib, python_deployment
from ingestlab.build.images.contents import COMPONENTS, Entry, Recipe, file_entry, listing_key
from ingestlab.build.images.elf import elf_interpreter, is_elf, library_entries
from ingestlab.build.images.jre import build_jre
from ingestlab.build.images.node_modules import keep_in_node_modules
from ingestlab.build.layout import (
    APP_DIR,
    JAVA_BINARY,
    JAVA_HOME,
    KAFKA_HOME,
    KAFKA_LIBS,
    KAFKA_LOG4J,
    NODE_BINARY,
    PATH_ENV,
    PYTHON_BINARY,
    PYTHON_LIB,
    RUST_BINARY,
    SHELL,
)
from ingestlab.files import DistinctFiles
from ingestlab.host.component import ArtifactMissing


def static_shell() -> Path:
    """A statically linked busybox (Debian's busybox-static), run as `/bin/sh` (`layout.SHELL`)."""
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).exists() and elf_interpreter(Path(candidate).resolve()) is None:
            return Path(candidate).resolve()
    raise ArtifactMissing("a static busybox (Debian's busybox-static) is not installed: "
                                    "run `make setup`")


def rust_recipe() -> Recipe:
    binary = artifacts.require(artifacts.rust_binary(), "the Rust service binary")
    entries = [*library_entries([binary]), file_entry(RUST_BINARY, "executable", binary, strip=True)]
    return Recipe("rust", tuple(entries), workdir=APP_DIR, cmd=(RUST_BINARY,))


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
        file_entry(NODE_BINARY, "executable", node, strip=True),
        # The cache dir's name is a digest of package-lock.json and node's version.
        Entry(f"{APP_DIR}/node_modules", "node_modules", kind="tree", source=modules,
              tree_key=modules.parent.name, keep=keep_in_node_modules, mode=0o755),
        *(file_entry(f"{APP_DIR}/{name}", "sources", artifacts.NODE_DIR / name)
          for name in ("server.js", "cluster.js", "package.json")),
    ]
    return Recipe("node", tuple(entries), workdir=APP_DIR, cmd=(NODE_BINARY, "server.js"))


def python_recipe() -> Recipe:
    deployment = python_deployment()
    stdlib = f"{PYTHON_LIB}/{deployment.stdlib.name}"
    entries = [
        *library_entries(deployment.elf_files(), inside=deployment.site_packages),
        file_entry(PYTHON_BINARY, "executable", deployment.executable, strip=True),
        Entry(stdlib, "stdlib", kind="tree", source=deployment.stdlib, keep=keep_in_stdlib, mode=0o755,
              tree_key=listing_key(deployment.stdlib, (p for p, _size in deployment.stdlib_files()))),
        Entry(f"{stdlib}/site-packages", "site-packages", kind="tree", source=deployment.site_packages,
              keep=deployment.keep_in_site_packages(), mode=0o755,
              tree_key=listing_key(deployment.site_packages, deployment.site_package_files())),
        *(file_entry(f"{APP_DIR}/{path.name}", "sources", path) for path in deployment.sources),
    ]
    return Recipe("python", tuple(entries), workdir=APP_DIR, cmd=(PYTHON_BINARY, "serve.py"))


def kafka_recipe() -> Recipe:
    libs = Path(artifacts.kafka_classpath()).parent
    jre = build_jre()
    elf_files = [path for path, _size in DistinctFiles().tree(jre) if is_elf(path)]
    entries = [
        *library_entries(elf_files, inside=jre),
        file_entry(SHELL, "shell", static_shell()),
        Entry(JAVA_HOME, "jre", kind="tree", source=jre, tree_key=jre.parent.name, mode=0o755),
        Entry(KAFKA_LIBS, "jars", kind="tree", source=libs, tree_key=libs.name, mode=0o755),
        file_entry(KAFKA_LOG4J, "config", artifacts.KAFKA_LOG4J),
    ]
    return Recipe("kafka", tuple(entries), workdir=KAFKA_HOME, cmd=(JAVA_BINARY, "-version"),
                  env=(("JAVA_HOME", JAVA_HOME), ("PATH", PATH_ENV)))


RECIPES: dict[str, Callable[[], Recipe]] = {"kafka": kafka_recipe, "node": node_recipe, "rust": rust_recipe,
                                             "python": python_recipe}


def recipe(component: str) -> Recipe:
    """`component`'s recipe from the artifacts on disk (Kafka's builds the JRE if missing)."""
    if component not in RECIPES:
        raise ValueError(f"unknown component {component!r}; choose from {COMPONENTS}")
    return RECIPES[component]()
