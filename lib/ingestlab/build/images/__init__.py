"""The workbook's container images, built here out of what `make setup` already built.

No registry can be reached, so no image is pulled: each image is a build context (a directory
with the files and a Dockerfile) handed to the workbook's engine (`engine.docker_engine`).
Two flavours per component (`names.IMAGE_FLAVOURS`):

- `minimal`: `FROM scratch`, holding only what runs: the executable (stripped: symbols and
  debug sections are never executed), the shared libraries `ldd` lists (at the paths the
  loader searches), Node's modules trimmed to what `require` loads at run time, a `jlink`
  JRE for Kafka, a static busybox as `/bin/sh` for Kafka, and `/etc/passwd` + `/etc/group`
  (`docker run --user root` looks the name up there) and `/tmp`.
- `conventional`: the same files on a Debian minbase root (`ingestlab/debian-minbase:<key>`,
  made once with `debootstrap --variant=minbase` and `docker import`); libraries the base
  already has are not copied again.

Where each file goes inside an image is `build.layout`, which the container runtime's commands
read too. Every image is labelled (`engine.labels`: `org.ingestlab.component`,
`org.ingestlab.flavour`, `org.ingestlab.key`, a digest of everything that went in: file
contents, the keys of cached trees, the recipe, and `org.ingestlab.parts`, the parts in layer
order, for `store.image_parts`). Its tag carries the key, so `store.ensure_image` builds only
when an input changed. One layer per part, so the engine's own history gives the size of each
part. Older images stay, like the other keyed caches (worktrees with other sources share the
engine and would otherwise rebuild each other's images).

One concern a module, lowest last (the contract in pyproject.toml holds the order):

- `store`: the images in the engine: `ensure_image`, `build_images`, `ensure_base`, sizes, parts.
- `recipes`: each component's entries, from the artifacts on disk.
- `jre` (the broker's jlink JRE), `flavours` (what minimal adds, what conventional leaves out),
  `elf` (ELF files and the libraries they load), `node_modules` (trimmed to what runs),
  `minbase` (the Debian minbase root).
- `context`: the build context and its Dockerfile.
- `contents`: an image's entries and parts, its key and tag.
"""
