"""Running things: the Kafka broker, the services under test, and the protocol they share."""

from ingestlab.stack.component import Component, StartupError
from ingestlab.stack.kafka import TOPIC, KafkaBroker
from ingestlab.stack.process import NativeProcess
from ingestlab.stack.services import ServiceProcess
from ingestlab.stack.stack import Stack

__all__ = ["TOPIC", "Component", "KafkaBroker", "NativeProcess", "ServiceProcess", "Stack", "StartupError"]
