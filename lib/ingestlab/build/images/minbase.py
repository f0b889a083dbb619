"""The Debian minbase root under the conventional images: `debootstrap --variant=minbase` from
this machine's apt mirror into the build cache, once per suite and architecture (its image,
`ingestlab/debian-minbase:<key>`, is imported into the engine by `store.ensure_base`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ingestlab.build.images.contents import REPOSITORY
from ingestlab.host.component import ArtifactMissing
from ingestlab.paths import cache_root

BASE_RECIPE_VERSION = 1
BASE_REPOSITORY = f"{REPOSITORY}/debian-minbase"


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
