"""Apache Kafka, single-node KRaft, run from its own jars: Maven resolves them once into a
cache folder (the POM is written here), and the server's properties and log4j configuration
are written into the work folder at every start. Data lives in the work folder and survives
restarts."""

from __future__ import annotations

import base64
import logging
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from driftloop.local.brokers.detached import (
    DEFAULT_PORTS,
    HOST,
    DetachedBroker,
    file_lock,
    free_port,
    run_tool,
)
from streams.errors import BrokerError, ConfigError

logger = logging.getLogger(__name__)

#: The Apache Kafka release run by default (needs Java 17 or newer).
KAFKA_VERSION = "4.4.0"
_LOG4J_VERSION = "2.25.3"
_SLF4J_VERSION = "2.0.17"
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


class ApacheKafkaBroker(DetachedBroker):
    """Single-node KRaft Apache Kafka (broker and controller in one JVM)."""

    kind = "kafka"
    ready_timeout_s = 90.0
    stop_timeout_s = 30.0

    def __init__(
        self,
        workdir: Path,
        port: int = DEFAULT_PORTS["kafka"],
        *,
        version: str = KAFKA_VERSION,
        cache_dir: Path | None = None,
        heap: str = "512m",
        java: str | None = None,
        maven: str | None = None,
        sasl_users: Mapping[str, str] | None = None,
        sasl_port: int | None = None,
    ) -> None:
        super().__init__(workdir, port)
        if sasl_users and sasl_port is None:
            raise ConfigError("a SASL listener needs its own port (sasl_port)")
        for user, password in (sasl_users or {}).items():
            if not user.isidentifier() or any(c in password for c in '"\\\n'):
                raise ConfigError(f"SASL user {user!r}: use a plain name and a password "
                                  "without quotes, backslashes or newlines")
        self.sasl_users = dict(sasl_users or {})
        self.sasl_port = sasl_port
        self._version = version
        self.cache_dir = cache_dir or Path.home() / ".cache" / "driftloop" / f"kafka-{version}"
        self._heap = heap
        self._java = java
        self._maven = maven

    @property
    def version(self) -> str:
        return self._version

    @property
    def sasl_bootstrap(self) -> str | None:
        """The SASL_PLAINTEXT (PLAIN) listener's address, when ``sasl_users`` opened one."""
        return f"{HOST}:{self.sasl_port}" if self.sasl_users else None

    def _log_files(self) -> list[Path]:
        return [*super()._log_files(), self.workdir / "server.log"]

    def _prepare(self) -> tuple[list[str], str]:
        java = self._java or shutil.which("java")
        if java is None:
            raise BrokerError("Apache Kafka needs Java 17 or newer; `java` is not on PATH")
        libs = self.ensure_jars()
        data = self.workdir / "data"
        properties = self.workdir / "server.properties"
        log4j = self.workdir / "log4j2.xml"
        config = _server_properties(self.port, free_port(), data)
        if self.sasl_users and self.sasl_port is not None:
            config = _with_sasl_listener(config, self.sasl_port, self.sasl_users)
        properties.write_text(config)
        log4j.write_text(_LOG4J2_XML.format(log=self.workdir / "server.log"))
        jvm = [java, f"-Xmx{self._heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
        if not (data / "meta.properties").exists():
            cluster_id = new_cluster_id()
            run_tool([*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                  "-c", str(properties)], "format Kafka's storage", timeout_s=120)
        return [*jvm, "kafka.Kafka", str(properties)], str(properties)

    def ensure_jars(self) -> Path:
        """The folder of Kafka's jars, resolved with Maven on first use only."""
        libs, done = self.cache_dir / "libs", self.cache_dir / "libs.complete"
        if done.exists():
            return libs
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.cache_dir / ".lock"):
            if done.exists():
                return libs
            maven = self._maven or shutil.which("mvn")
            if maven is None:
                raise BrokerError("resolving Apache Kafka's jars needs Maven; `mvn` is not on PATH")
            (self.cache_dir / "pom.xml").write_text(_pom_xml(self._version))
            partial = self.cache_dir / "libs.partial"
            shutil.rmtree(partial, ignore_errors=True)
            logger.info("resolving Apache Kafka %s with Maven (once)", self._version,
                        extra={"cache": str(self.cache_dir)})
            run_tool([maven, "-q", "-B", f"{_DEPENDENCY_PLUGIN}:copy-dependencies",
                  f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
                 f"resolve Apache Kafka {self._version} with Maven",
                 cwd=self.cache_dir, timeout_s=900)
            shutil.rmtree(libs, ignore_errors=True)
            partial.rename(libs)
            done.write_text(self._version + "\n")
        return libs


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random KRaft cluster id: 16 bytes in url-safe base64, as Kafka makes them.

    One in 64 such ids starts with '-', which Kafka's storage tool reads as an option, so
    those are drawn again (Kafka's own ``Uuid.randomUuid`` does the same).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _server_properties(port: int, controller_port: int, data: Path) -> str:
    # A static voter set keeps the controller's address out of the formatted storage, so
    # the controller may take a different free port at every start.
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{controller_port}
listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}
advertised.listeners=PLAINTEXT://{HOST}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
"""


def _with_sasl_listener(config: str, port: int, users: Mapping[str, str]) -> str:
    """``config`` plus a SASL_PLAINTEXT listener on ``port`` taking PLAIN for ``users``
    (name -> password). Brokers and the controller keep talking over PLAINTEXT."""
    listener = f"SASL_PLAINTEXT://{HOST}:{port}"
    lines = []
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key in ("listeners", "advertised.listeners"):
            line = f"{key}={value},{listener}"
        elif key == "listener.security.protocol.map":
            line = f"{key}={value},SASL_PLAINTEXT:SASL_PLAINTEXT"
        lines.append(line)
    accounts = " ".join(f'user_{user}="{password}"' for user, password in users.items())
    lines += [
        "sasl.enabled.mechanisms=PLAIN",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        f"org.apache.kafka.common.security.plain.PlainLoginModule required {accounts};",
    ]
    return "\n".join(lines) + "\n"


_LOG4J2_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="{log}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""

def _pom_xml(kafka: str) -> str:
    artifacts = [("org.apache.kafka", "kafka_2.13", kafka),
                 ("org.apache.logging.log4j", "log4j-slf4j2-impl", _LOG4J_VERSION),
                 ("org.apache.logging.log4j", "log4j-core", _LOG4J_VERSION),
                 ("org.slf4j", "slf4j-api", _SLF4J_VERSION)]  # Kafka alone pulls slf4j 1.7
    dependencies = "".join(
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>\n" for group, artifact, version in artifacts
    )
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.driftloop</groupId><artifactId>kafka-runtime</artifactId>
  <version>{kafka}</version><packaging>pom</packaging>
  <dependencies>
{dependencies}  </dependencies>
</project>
"""
