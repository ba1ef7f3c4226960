"""Static checks of otel-collector-config.yaml and examples/docker-compose.yml.

No collector or docker engine runs here, so these catch what would otherwise only show up as a
collector refusing to start: a pipeline naming an undefined component, a removed exporter, the
memory limiter in the wrong place, or compose wiring that points the exporter nowhere.

Each check is a function returning its problems; the tests run it on the real files, and on a
broken copy to prove the check can fail.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "otel-collector-config.yaml"
COMPOSE_PATH = ROOT / "examples" / "docker-compose.yml"
COLLECTOR_SERVICE = "otel-collector"
CONFIG_TARGET = "/etc/otelcol-contrib/config.yaml"
PIPELINE_KINDS = ("receivers", "processors", "exporters")
# Exporter types dropped from the collector: `logging` (use `debug`), `jaeger` (use `otlp`).
REMOVED_EXPORTERS = frozenset({"logging", "jaeger", "jaeger_thrift"})

Config = dict[str, Any]


def load(path: Path) -> Config:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: top level must be a mapping"
    return data


def component_type(component_id: str) -> str:
    """`otlp/jaeger` is a component of type `otlp` named `jaeger`."""
    return component_id.split("/", 1)[0]


def pipelines(config: Config) -> dict[str, Config]:
    return (config.get("service") or {}).get("pipelines") or {}


def endpoint_host_port(endpoint: str) -> tuple[str, int]:
    # Accepts `host:port` as well as `http://host:port` / `https://host:port/path`.
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    assert parts.hostname and parts.port, f"endpoint without host:port: {endpoint!r}"
    return parts.hostname, parts.port


# --- checks on the collector configuration ------------------------------------------------------


def undefined_pipeline_components(config: Config) -> list[str]:
    problems = []
    for name, pipeline in pipelines(config).items():
        for kind in PIPELINE_KINDS:
            defined = config.get(kind) or {}
            # The full id must be defined: `otlp/jaeger` is not satisfied by plain `otlp`.
            problems += [
                f"pipeline {name}: {kind[:-1]} {cid!r} is not defined"
                for cid in pipeline.get(kind) or []
                if cid not in defined
            ]
        # The collector refuses a pipeline without receivers or exporters.
        problems += [
            f"pipeline {name}: no {kind}"
            for kind in ("receivers", "exporters")
            if not pipeline.get(kind)
        ]
    if not pipelines(config):
        problems.append("service.pipelines is empty")
    return problems


def undefined_extensions(config: Config) -> list[str]:
    defined = config.get("extensions") or {}
    enabled = (config.get("service") or {}).get("extensions") or []
    return [f"extension {eid!r} is not defined" for eid in enabled if eid not in defined]


def otlp_receiver_problems(config: Config) -> list[str]:
    receivers = {
        rid: body
        for rid, body in (config.get("receivers") or {}).items()
        if component_type(rid) == "otlp"
    }
    if not receivers:
        return ["no otlp receiver"]
    problems = []
    for rid, body in receivers.items():
        protocols = (body or {}).get("protocols") or {}
        for protocol, port in (("grpc", 4317), ("http", 4318)):
            endpoint = (protocols.get(protocol) or {}).get("endpoint")
            if endpoint is None:
                problems.append(f"{rid}: no {protocol} endpoint")
            elif endpoint_host_port(endpoint)[1] != port:
                problems.append(f"{rid}: {protocol} endpoint {endpoint!r} is not on :{port}")
    return problems


def memory_limiter_not_first(config: Config) -> list[str]:
    problems = []
    for name, pipeline in pipelines(config).items():
        processors = pipeline.get("processors") or []
        if not processors or component_type(processors[0]) != "memory_limiter":
            problems.append(f"pipeline {name}: processors {processors} do not start with it")
    return problems


def removed_exporters(config: Config) -> list[str]:
    return [
        f"exporter {eid!r} uses a removed type"
        for eid in config.get("exporters") or {}
        if component_type(eid) in REMOVED_EXPORTERS
    ]


# --- checks on the compose file -----------------------------------------------------------------


def _bind_mounts(service: Config) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):  # short syntax: SOURCE:TARGET[:MODE]
            source, _, rest = volume.partition(":")
            mounts.append((source, rest.split(":", 1)[0]))
        elif volume.get("type") == "bind":  # long syntax
            mounts.append((volume.get("source", ""), volume.get("target", "")))
    return mounts


def config_mount_problems(compose: Config, compose_dir: Path, config_path: Path) -> list[str]:
    service = (compose.get("services") or {}).get(COLLECTOR_SERVICE)
    if service is None:
        return [f"no {COLLECTOR_SERVICE} service"]
    for source, target in _bind_mounts(service):
        # Compose resolves relative sources against the compose file's directory.
        if (compose_dir / source).resolve() == config_path.resolve():
            if PurePosixPath(target) == PurePosixPath(CONFIG_TARGET):
                return []
            return [f"config mounted at {target!r}, the image reads {CONFIG_TARGET}"]
    return [f"{config_path.name} is not mounted into {COLLECTOR_SERVICE}"]


def exporter_host_problems(config: Config, compose: Config) -> list[str]:
    services = compose.get("services") or {}
    problems = []
    for eid, body in (config.get("exporters") or {}).items():
        endpoint = (body or {}).get("endpoint")
        if component_type(eid) != "otlp" or endpoint is None:
            continue
        host, _ = endpoint_host_port(endpoint)
        # Inside the compose network a service is reached by its name.
        if host not in services:
            problems.append(f"exporter {eid!r} sends to {host!r}, not a compose service")
        elif not str(services[host].get("image", "")).startswith("jaegertracing/"):
            problems.append(f"exporter {eid!r} sends to {host!r}, which is not Jaeger")
    if not any(component_type(eid) == "otlp" for eid in config.get("exporters") or {}):
        problems.append("no otlp exporter")
    return problems


def image_and_port_problems(compose: Config) -> list[str]:
    problems = []
    for name, service in (compose.get("services") or {}).items():
        image = str(service.get("image", ""))
        tag = image.rpartition(":")[2] if ":" in image else ""
        if not tag or tag == "latest":
            problems.append(f"{name}: image {image!r} is not pinned")
        problems += [
            f"{name}: port {port!r} is not bound to 127.0.0.1"
            for port in service.get("ports") or []
            if not str(port).startswith("127.0.0.1:")
        ]
    return problems


# --- the real files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> Config:
    return load(CONFIG_PATH)


@pytest.fixture(scope="module")
def compose() -> Config:
    return load(COMPOSE_PATH)


def test_pipeline_components_are_defined(config: Config) -> None:
    assert undefined_pipeline_components(config) == []


def test_service_extensions_are_defined(config: Config) -> None:
    assert config["service"].get("extensions"), "the health_check extension should be enabled"
    assert undefined_extensions(config) == []


def test_otlp_receiver_has_grpc_4317_and_http_4318(config: Config) -> None:
    assert otlp_receiver_problems(config) == []


def test_memory_limiter_is_first_processor(config: Config) -> None:
    assert memory_limiter_not_first(config) == []


def test_no_removed_exporter_types(config: Config) -> None:
    assert removed_exporters(config) == []


def test_compose_mounts_the_collector_config(compose: Config) -> None:
    assert config_mount_problems(compose, COMPOSE_PATH.parent, CONFIG_PATH) == []


def test_exporter_endpoint_host_is_the_jaeger_service(config: Config, compose: Config) -> None:
    assert exporter_host_problems(config, compose) == []
    jaeger_env = compose["services"]["jaeger"].get("environment") or {}
    assert str(jaeger_env.get("COLLECTOR_OTLP_ENABLED")).lower() == "true"


def test_compose_images_pinned_and_ports_on_loopback(compose: Config) -> None:
    assert image_and_port_problems(compose) == []


# --- each check catches a broken copy -----------------------------------------------------------


def _edit(data: Config, change: Callable[[Config], None]) -> Config:
    broken = copy.deepcopy(data)
    change(broken)
    return broken


def _traces(c: Config) -> Config:
    return c["service"]["pipelines"]["traces"]


def _rename_exporter(c: Config, old: str, new: str) -> None:
    c["exporters"][new] = c["exporters"].pop(old)
    _traces(c)["exporters"] = [new if e == old else e for e in _traces(c)["exporters"]]


CONFIG_BREAKAGES: list[tuple[str, Callable[[Config], list[str]], Callable[[Config], None]]] = [
    (
        "exporter referenced but undefined",
        undefined_pipeline_components,
        lambda c: _traces(c)["exporters"].append("otlphttp/tempo"),
    ),
    (
        "only the type of a named id defined",
        undefined_pipeline_components,
        lambda c: c["exporters"].update({"otlp": c["exporters"].pop("otlp/jaeger")}),
    ),
    (
        "processor referenced but undefined",
        undefined_pipeline_components,
        lambda c: c["processors"].pop("batch"),
    ),
    (
        "receiver referenced but undefined",
        undefined_pipeline_components,
        lambda c: _traces(c).update(receivers=["otlp", "zipkin"]),
    ),
    (
        "pipeline without exporters",
        undefined_pipeline_components,
        lambda c: _traces(c).pop("exporters"),
    ),
    ("extension undefined", undefined_extensions, lambda c: c["extensions"].clear()),
    (
        "grpc on the wrong port",
        otlp_receiver_problems,
        lambda c: c["receivers"]["otlp"]["protocols"]["grpc"].update(endpoint="0.0.0.0:14317"),
    ),
    (
        "http protocol missing",
        otlp_receiver_problems,
        lambda c: c["receivers"]["otlp"]["protocols"].pop("http"),
    ),
    ("no otlp receiver", otlp_receiver_problems, lambda c: c["receivers"].clear()),
    (
        "memory_limiter after batch",
        memory_limiter_not_first,
        lambda c: _traces(c).update(processors=["batch", "memory_limiter"]),
    ),
    (
        "logging exporter",
        removed_exporters,
        lambda c: _rename_exporter(c, "debug", "logging"),
    ),
    (
        "jaeger exporter",
        removed_exporters,
        lambda c: _rename_exporter(c, "otlp/jaeger", "jaeger"),
    ),
]


@pytest.mark.parametrize(
    ("check", "change"),
    [pytest.param(check, change, id=name) for name, check, change in CONFIG_BREAKAGES],
)
def test_config_check_detects(
    config: Config, check: Callable[[Config], list[str]], change: Callable[[Config], None]
) -> None:
    assert check(config) == []
    assert check(_edit(config, change)) != []


def _collector(c: Config) -> Config:
    return c["services"][COLLECTOR_SERVICE]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: _collector(c).pop("volumes"), id="no volumes"),
        pytest.param(
            lambda c: _collector(c).update(
                volumes=["./otel-collector-config.yaml:" + CONFIG_TARGET]
            ),
            id="source relative to the wrong directory",
        ),
        pytest.param(
            lambda c: _collector(c).update(
                volumes=["../otel-collector-config.yaml:/etc/otelcol/config.yaml"]
            ),
            id="wrong target",
        ),
        pytest.param(lambda c: c["services"].pop(COLLECTOR_SERVICE), id="no collector service"),
    ],
)
def test_mount_check_detects(compose: Config, change: Callable[[Config], None]) -> None:
    assert config_mount_problems(_edit(compose, change), COMPOSE_PATH.parent, CONFIG_PATH) != []


@pytest.mark.parametrize(
    ("config_change", "compose_change"),
    [
        pytest.param(
            lambda c: c["exporters"]["otlp/jaeger"].update(endpoint="localhost:4317"),
            lambda c: None,
            id="exporter to localhost",
        ),
        pytest.param(
            lambda c: None,
            lambda c: c["services"].update(tracing=c["services"].pop("jaeger")),
            id="jaeger service renamed",
        ),
        pytest.param(
            lambda c: None,
            lambda c: c["services"]["jaeger"].update(image="busybox:1.36"),
            id="service is not jaeger",
        ),
        pytest.param(
            lambda c: _rename_exporter(c, "otlp/jaeger", "otlphttp/jaeger"),
            lambda c: None,
            id="no otlp exporter",
        ),
    ],
)
def test_exporter_host_check_detects(
    config: Config,
    compose: Config,
    config_change: Callable[[Config], None],
    compose_change: Callable[[Config], None],
) -> None:
    broken = exporter_host_problems(_edit(config, config_change), _edit(compose, compose_change))
    assert broken != []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda c: c["services"]["jaeger"].update(image="jaegertracing/all-in-one"),
            id="untagged image",
        ),
        pytest.param(
            lambda c: c["services"]["jaeger"].update(image="jaegertracing/all-in-one:latest"),
            id="latest tag",
        ),
        pytest.param(lambda c: _collector(c).update(ports=["4318:4318"]), id="port on all hosts"),
    ],
)
def test_image_and_port_check_detects(compose: Config, change: Callable[[Config], None]) -> None:
    assert image_and_port_problems(_edit(compose, change)) != []
