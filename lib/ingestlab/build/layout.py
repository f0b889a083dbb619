"""Where things are inside the workbook's images, defined once: `build.images` puts each
program and its files there, and the container runtime's commands run them from there
(`stack.services.container_spec_for`, `stack.kafka.ContainerKafkaBroker`).

All images run with host networking and `--user root`; the runtime passes the command, env and
bind mounts:

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
"""

from __future__ import annotations

from ingestlab.build import artifacts

# The services: their sources and node_modules in the working directory.
APP_DIR = "/app"
RUST_BINARY = f"{APP_DIR}/{artifacts.RUST_BINARY_NAME}"
NODE_BINARY = "/usr/local/bin/node"
PYTHON_BINARY = "/usr/local/bin/python3"
PYTHON_LIB = "/usr/local/lib"  # the standard library is PYTHON_LIB/python3.X

# The broker: a JRE, the jars, the log4j2 config the native broker uses (same file name), a shell.
JAVA_HOME = "/opt/java"
JAVA_BINARY = f"{JAVA_HOME}/bin/java"
KAFKA_HOME = "/opt/kafka"
KAFKA_LIBS = f"{KAFKA_HOME}/libs"
KAFKA_CLASSPATH = f"{KAFKA_LIBS}/*"
KAFKA_LOG4J = f"{KAFKA_HOME}/config/{artifacts.KAFKA_LOG4J.name}"
SHELL = "/bin/sh"
PATH_ENV = f"{JAVA_HOME}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
