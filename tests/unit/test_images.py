"""The pure parts of the images and the engine: tags, content keys, apt sources, node_modules
trimming, layers and parts, build contexts, the engine's paths (no dockerd needed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath

import pytest

from ingestlab.build import builders
from ingestlab.build.images import contents, context, elf, flavours, jre, minbase, node_modules, store
from ingestlab.build.images.contents import Entry, Recipe
from ingestlab.engine import docker_engine
from ingestlab.host.component import ArtifactMissing


def _recipe(tmp_path: Path, content: bytes = b"binary", *, tree_key: str = "k1") -> Recipe:
    binary = tmp_path / "ingest-rust"
    binary.write_bytes(content)
    binary.chmod(0o755)
    tree = tmp_path / "tree"
    tree.mkdir(exist_ok=True)
    return Recipe("rust", (
        Entry("/app/ingest-rust", "executable", source=binary, mode=0o755),
        Entry("/app/node_modules", "node_modules", kind="tree", source=tree, tree_key=tree_key),
    ), workdir="/app", cmd=("/app/ingest-rust",))


# --- tags and keys ----------------------------------------------------------------------------
def test_tag_says_component_flavour_and_key():
    tag = contents.format_tag("rust", "minimal", "0123456789abcdef")
    assert tag == "ingestlab/rust:minimal-0123456789abcdef"
    assert contents.format_tag("node", "conventional", "ab") == "ingestlab/node:conventional-ab"
    with pytest.raises(ValueError, match="unknown component"):
        contents.format_tag("go", "minimal", "ab")
    with pytest.raises(ValueError, match="unknown flavour"):
        contents.format_tag("rust", "fat", "ab")  # type: ignore[arg-type]


def test_content_key_is_stable_and_changes_with_every_input(tmp_path):
    recipe = _recipe(tmp_path)
    key = contents.content_key(recipe, "minimal")
    assert len(key) == 16 and int(key, 16) >= 0
    assert contents.content_key(_recipe(tmp_path), "minimal") == key
    assert contents.content_key(recipe, "conventional", "base1") != key
    on_base1 = contents.content_key(recipe, "conventional", "base1")
    assert on_base1 != contents.content_key(recipe, "conventional", "base2")
    assert contents.content_key(_recipe(tmp_path, b"binary, rebuilt"), "minimal") != key
    assert contents.content_key(_recipe(tmp_path, tree_key="k2"), "minimal") != key
    moved = Recipe("rust", recipe.entries, workdir="/srv", cmd=recipe.cmd)
    assert contents.content_key(moved, "minimal") != key


def test_key_follows_content_not_timestamps(tmp_path):
    recipe = _recipe(tmp_path)
    key = contents.content_key(recipe, "minimal")
    os.utime(tmp_path / "ingest-rust", ns=(1, 1))
    assert contents.content_key(_recipe(tmp_path), "minimal") == key


# --- apt sources and the suite ----------------------------------------------------------------
DEB822 = """\
Types: deb
# a comment: http://127.0.0.1:9/archive/debian/20250520T000000Z
URIs: http://127.0.0.1:9/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://127.0.0.1:9/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://127.0.0.1:9/sources
Suites: bookworm
"""
ONE_LINE = """\
# deb http://127.0.0.1:9/old bookworm main
deb-src http://127.0.0.1:9/src bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://127.0.0.1:9/security bookworm-security main
deb file:///srv/mirror bookworm main contrib
"""


def test_apt_sources_in_both_formats():
    assert minbase.parse_apt_sources(DEB822) == [
        ("http://127.0.0.1:9/debian", ("bookworm", "bookworm-updates")),
        ("http://127.0.0.1:9/debian-security", ("bookworm-security",)),
    ]
    assert minbase.parse_apt_sources(ONE_LINE) == [
        ("http://127.0.0.1:9/security", ("bookworm-security",)),
        ("file:///srv/mirror", ("bookworm",)),
    ]


def test_mirror_serves_the_suite_itself():
    assert minbase.mirror_for("bookworm", [DEB822, ONE_LINE]) == "http://127.0.0.1:9/debian"
    assert minbase.mirror_for("bookworm", ["", ONE_LINE]) == "file:///srv/mirror"
    disabled = DEB822.replace("Types: deb\n#", "Enabled: no\nTypes: deb\n#", 1)
    assert minbase.mirror_for("bookworm", [disabled, ONE_LINE]) == "file:///srv/mirror"
    with pytest.raises(RuntimeError, match="no apt source for 'trixie'"):
        minbase.mirror_for("trixie", [DEB822, ONE_LINE])


def test_os_release_codename():
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
    assert minbase.parse_os_release(text)["VERSION_CODENAME"] == "bookworm"
    assert minbase.parse_os_release(text)["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"


# --- node_modules, trimmed ------------------------------------------------------------------
@pytest.mark.parametrize(("path", "kept"), [
    ("express/index.js", True),
    ("express/lib/router/index.js", True),
    ("@scope/pkg/index.js", True),
    (".bin/mime", False),
    (".package-lock.json", False),
    ("nan/nan.h", False),
    ("node-rdkafka/package.json", True),
    ("node-rdkafka/librdkafka.js", True),
    ("node-rdkafka/lib/producer.js", True),
    ("node-rdkafka/lib/producer/high-level-producer.js", True),
    ("node-rdkafka/build/Release/node-librdkafka.node", True),
    ("node-rdkafka/build/Release/obj.target/node-librdkafka.node", False),
    ("node-rdkafka/build/Release/obj.target/node-librdkafka/src/binding.o", False),
    ("node-rdkafka/build/deps/librdkafka.so.1", True),
    ("node-rdkafka/build/deps/librdkafka++.so.1", True),
    ("node-rdkafka/build/deps/librdkafka.so", False),
    ("node-rdkafka/build/deps/librdkafka.a", False),
    ("node-rdkafka/deps/librdkafka/src/rdkafka.c", False),
    ("node-rdkafka/src/binding.cc", False),
])
def test_node_modules_keep_what_runs(path, kept):
    assert node_modules.keep_in_node_modules(PurePosixPath(path)) is kept


# --- layers and parts -----------------------------------------------------------------------
def test_dockerfile_has_one_layer_per_part_in_order(tmp_path):
    recipe = _recipe(tmp_path)
    entries = flavours.flavour_entries(recipe, "minimal")
    text, parts = context.dockerfile(entries, recipe, None)
    assert parts == ["skeleton", "executable", "node_modules"]
    assert text.splitlines() == ["FROM scratch", "COPY skeleton/ /", "COPY executable/ /",
                                 "COPY node_modules/ /", "WORKDIR /app", 'CMD ["/app/ingest-rust"]']
    text, parts = context.dockerfile(recipe.entries, recipe, "ingestlab/debian-minbase:abc")
    assert text.startswith("FROM ingestlab/debian-minbase:abc\n") and parts == ["executable", "node_modules"]


def test_parts_from_history_pairs_copy_layers_with_names():
    history = [  # newest first, as the engine gives it
        {"CreatedBy": '/bin/sh -c #(nop)  CMD ["/app/ingest-rust"]', "Size": 0},
        {"CreatedBy": "/bin/sh -c #(nop) WORKDIR /app", "Size": 0},
        {"CreatedBy": "/bin/sh -c #(nop) COPY dir:bbb in / ", "Size": 7_000_000},
        {"CreatedBy": "/bin/sh -c #(nop) COPY dir:aaa in / ", "Size": 2_500_000},
        {"CreatedBy": "", "Size": 110_000_000, "Comment": "Imported from -"},
    ]
    assert store.parts_from_history(history, ["shared-libraries", "executable"]) == [
        {"part": "base root", "bytes": 110_000_000},
        {"part": "shared-libraries", "bytes": 2_500_000},
        {"part": "executable", "bytes": 7_000_000},
    ]
    assert store.parts_from_history(history[:4], ["shared-libraries", "executable"])[0] == {
        "part": "shared-libraries", "bytes": 2_500_000}
    with pytest.raises(ValueError, match="2 COPY layers but 1 part"):
        store.parts_from_history(history, ["executable"])


def _fake_base(root: Path) -> Path:
    (root / "usr" / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr" / "lib" / "x86_64-linux-gnu" / "libz.so.1.2.13").write_bytes(b"z")
    (root / "usr" / "lib" / "x86_64-linux-gnu" / "libz.so.1").symlink_to("libz.so.1.2.13")
    (root / "usr" / "lib64").mkdir()
    (root / "usr" / "lib64" / "ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld.so")
    (root / "usr" / "lib" / "x86_64-linux-gnu" / "ld.so").write_bytes(b"ld")
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").symlink_to("usr/lib64")
    (root / "etc").mkdir()
    (root / "etc" / "escape").symlink_to("../../../../../../../../etc/hostname")
    return root


def test_base_library_lookup_stays_inside_the_root(tmp_path):
    root = _fake_base(tmp_path / "root")
    assert flavours.base_has_library(root, "/usr/lib/x86_64-linux-gnu/libz.so.1")
    assert flavours.base_has_library(root, "/lib/x86_64-linux-gnu/libz.so.1")
    assert flavours.base_has_library(root, "/lib64/ld-linux-x86-64.so.2")  # absolute link, inside root
    assert not flavours.base_has_library(root, "/usr/lib/x86_64-linux-gnu/libssl.so.3")
    assert not flavours._exists_in_root(root, "/etc/escape")  # ".." stops at the root


def test_conventional_leaves_out_what_the_base_has(tmp_path):
    root = _fake_base(tmp_path / "root")
    lib = tmp_path / "libz.so.1"
    lib.write_bytes(b"z")
    ssl = tmp_path / "libssl.so.3"
    ssl.write_bytes(b"s")
    shell = tmp_path / "busybox"
    shell.write_bytes(b"b")
    recipe = Recipe("kafka", (
        Entry("/usr/lib/x86_64-linux-gnu/libz.so.1", "shared-libraries", source=lib, library="libz.so.1"),
        Entry("/usr/lib/x86_64-linux-gnu/libssl.so.3", "shared-libraries", source=ssl, library="libssl.so.3"),
        Entry("/bin/sh", "shell", source=shell),
    ), workdir="/opt/kafka", cmd=("java",))
    conventional = flavours.flavour_entries(recipe, "conventional", root)
    assert [e.dest for e in conventional] == ["/usr/lib/x86_64-linux-gnu/libssl.so.3"]
    minimal = flavours.flavour_entries(recipe, "minimal")
    assert {"/etc/passwd", "/etc/group", "/tmp", "/bin/sh"} <= {e.dest for e in minimal}
    with pytest.raises(ValueError, match="base root"):
        flavours.flavour_entries(recipe, "conventional")


def test_build_context_holds_each_part_in_its_directory(tmp_path):
    modules = tmp_path / "node_modules"
    (modules / "express").mkdir(parents=True)
    (modules / "express" / "index.js").write_text("module.exports = 1;\n")
    (modules / "nan").mkdir()
    (modules / "nan" / "nan.h").write_text("//\n")
    (modules / ".bin").mkdir()
    (modules / ".bin" / "mime").symlink_to("../express/index.js")
    (modules / "express" / "alias.js").symlink_to("index.js")
    binary = tmp_path / "server.js"
    binary.write_text("require('express')\n")
    recipe = Recipe("node", (
        Entry("/app/node_modules", "node_modules", kind="tree", source=modules, tree_key="k",
              keep=node_modules.keep_in_node_modules),
        contents.file_entry("/app/server.js", "sources", binary),
    ), workdir="/app", cmd=("/usr/local/bin/node", "server.js"))
    directory = tmp_path / "context"
    parts = context.build_context(directory, flavours.flavour_entries(recipe, "minimal"), recipe, None)
    assert parts == ["skeleton", "node_modules", "sources"]
    assert (directory / "skeleton" / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    assert (directory / "skeleton" / "tmp").stat().st_mode & 0o7777 == 0o1777
    copied = directory / "node_modules" / "app" / "node_modules"
    assert (copied / "express" / "index.js").exists()
    assert os.readlink(copied / "express" / "alias.js") == "index.js"
    assert not (copied / "nan").exists()
    assert not (copied / ".bin").exists()
    assert (directory / "sources" / "app" / "server.js").samefile(binary)  # hard link, no copy
    assert (directory / "Dockerfile").read_text().startswith("FROM scratch\n")


# --- ELF --------------------------------------------------------------------------------------
def test_elf_interpreter(tmp_path):
    python = Path(sys.executable).resolve()
    interpreter = elf.elf_interpreter(python)
    assert interpreter and interpreter.startswith("/") and "ld" in Path(interpreter).name
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\n")
    assert elf.elf_interpreter(script) is None
    assert not elf.is_elf(script) and elf.is_elf(python)


# --- the engine's own paths and settings ------------------------------------------------------
def test_exec_root_stays_short_enough_for_sockets(tmp_path):
    assert docker_engine.exec_root_for(Path("/root/.cache/ingestlab/docker")) == Path(
        "/root/.cache/ingestlab/docker/run")
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 4)
    moved = docker_engine.exec_root_for(deep, temp_dir=Path("/tmp"))
    assert moved.parent == Path("/tmp") and moved.name.startswith("ingestlab-docker-")
    assert docker_engine.exec_root_for(deep, temp_dir=Path("/tmp")) == moved  # stable
    longest = moved / "containerd" / "containerd-debug.sock"
    assert len(os.fsencode(longest)) <= docker_engine.SOCKET_PATH_LIMIT_BYTES


def test_bridges_are_the_interfaces_with_a_bridge_dir(tmp_path):
    (tmp_path / "lo").mkdir()
    (tmp_path / "eth0").mkdir()
    (tmp_path / "docker0" / "bridge").mkdir(parents=True)
    assert docker_engine.bridge_interfaces(tmp_path) == ["docker0"]
    assert docker_engine.bridge_interfaces(tmp_path / "missing") == []


def test_engine_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    engine = docker_engine.DockerEngine(state_dir=tmp_path / "docker")
    assert engine.docker_host == f"unix://{engine.exec_root}/docker.sock"
    assert engine.environ() == {"DOCKER_HOST": engine.docker_host, "TC_HOST": "127.0.0.1",
                                "TESTCONTAINERS_RYUK_DISABLED": "true"}
    argv = engine.dockerd_argv("dockerd")
    for flag in ("--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false"):
        assert flag in argv
    assert f"--data-root={tmp_path / 'docker' / 'data'}" in argv
    assert not engine.owns_daemon
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    assert docker_engine.DockerEngine(state_dir=tmp_path).docker_host == "unix:///elsewhere.sock"
    assert docker_engine.DockerEngine(state_dir=tmp_path).external_host
    monkeypatch.setenv("DOCKER_HOST", engine.docker_host)  # our own, exported by environ()
    assert docker_engine.DockerEngine(state_dir=tmp_path / "docker").external_host is None


def test_missing_dockerd_says_run_make_setup(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    engine = docker_engine.DockerEngine(state_dir=tmp_path / "docker")
    with pytest.raises(ArtifactMissing, match="make setup"):
        engine.start()


def test_images_are_built_by_ingestlab_build_after_the_services():
    names = list(builders.BUILDERS)
    assert "images" in names
    assert names.index("images") > max(names.index(n) for n in ("kafka", "node", "rust"))


def test_the_last_process_using_the_daemon_is_the_one_to_stop_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    first = docker_engine.DockerEngine(state_dir=tmp_path)
    second = docker_engine.DockerEngine(state_dir=tmp_path)
    first._join()
    second._join()
    first._leave()
    assert first._last_user() is None  # the second one still uses it
    second._leave()
    fd = first._last_user()
    assert fd is not None
    os.close(fd)


def test_jars_for_jdeps_lose_their_module_descriptors(tmp_path):
    import zipfile

    modular, plain = tmp_path / "modular.jar", tmp_path / "plain.jar"
    with zipfile.ZipFile(modular, "w") as jar:
        jar.writestr("module-info.class", b"\xca\xfe")
        jar.writestr("META-INF/versions/11/module-info.class", b"\xca\xfe")
        jar.writestr("a/A.class", b"\xca\xfe\xba\xbe")
    with zipfile.ZipFile(plain, "w") as jar:
        jar.writestr("b/B.class", b"\xca\xfe\xba\xbe")
    out = jre.class_path_jars([modular, plain], tmp_path / "out")
    assert [p.name for p in out] == ["modular.jar", "plain.jar"]
    assert zipfile.ZipFile(out[0]).namelist() == ["a/A.class"]
    assert out[1].samefile(plain)
