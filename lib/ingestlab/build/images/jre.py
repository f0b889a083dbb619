"""The broker's JRE: `jlink` of the modules `jdeps` finds in the Kafka jars, kept in the build
cache under a key of the JDK and the jars (`jre_dir`)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path

from ingestlab.build import artifacts
from ingestlab.build.images.context import link_or_copy
from ingestlab.host.component import ArtifactMissing
from ingestlab.paths import cache_root

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
                link_or_copy(jar, target)
        plain.append(target)
    return plain
