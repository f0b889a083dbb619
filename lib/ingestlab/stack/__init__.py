"""Running things: the Kafka broker, the services under test, and the protocol they share.

Each runs natively (`NativeProcess`) or in a container (`ContainerProcess`), as the stack's
runtime says (`stack.stack.runtime_for`, from `StudyConfig.runtime`).
"""

from ingestlab.stack.component import Component, StartupError
from ingestlab.stack.container import ContainerProcess
from ingestlab.stack.kafka import TOPIC, ContainerKafkaBroker, KafkaBroker
from ingestlab.stack.process import NativeProcess
from ingestlab.stack.services import ContainerService, ServiceProcess
from ingestlab.stack.stack import ContainerRuntime, NativeRuntime, Stack, runtime_for

__all__ = ["TOPIC", "Component", "ContainerKafkaBroker", "ContainerProcess", "ContainerRuntime",
           "ContainerService", "KafkaBroker", "NativeProcess", "NativeRuntime", "ServiceProcess", "Stack",
           "StartupError", "runtime_for"]
