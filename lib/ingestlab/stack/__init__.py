"""Running the study's parts: the Kafka broker, the services under test, the topic read back,
the slow link, the reference endpoints, and `Stack`, which starts them together.

Each runs natively (`host.process.NativeProcess`) or in a container
(`engine.container.ContainerProcess`), as the stack's runtime says (`stack.stack.runtime_for`,
from `StudyConfig.runtime`).
"""

from ingestlab.stack.kafka import TOPIC, ContainerKafkaBroker, KafkaBroker
from ingestlab.stack.services import ContainerService, ServiceProcess
from ingestlab.stack.stack import ContainerRuntime, NativeRuntime, Stack, runtime_for

__all__ = ["TOPIC", "ContainerKafkaBroker", "ContainerRuntime", "ContainerService", "KafkaBroker",
           "NativeRuntime", "ServiceProcess", "Stack", "runtime_for"]
