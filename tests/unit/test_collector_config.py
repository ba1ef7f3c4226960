"""Static checks of otel-collector-config.yaml and examples/docker-compose.yml, and of the
"At scale" files beside it (examples/otel-collector-at-scale.yaml, examples/relay/config.yml,
examples/jaeger-ui.json).

No collector or docker engine runs here, so these catch what would otherwise only show up as a
collector refusing to start: a pipeline naming an undefined component, a removed exporter, the
memory limiter in the wrong place, or compose wiring that points the exporter nowhere.

Each check is a function returning its problems; the tests run it on the real files, and on a
broken copy to prove the check can fail.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

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


# --- the "At scale" setup, the Relay and the way back from Jaeger to Sentry (docs/otlp.md) -------

AT_SCALE_PATH = ROOT / "examples" / "otel-collector-at-scale.yaml"
AT_SCALE_SERVICE = "otel-collector-at-scale"
JAEGER_UI_PATH = ROOT / "examples" / "jaeger-ui.json"
RELAY_DIR = ROOT / "examples" / "relay"
RELAY_TARGET = "/work/.relay"  # the image runs `relay run` in /work
SENTRY_EVENT_ID = "sentry.event_id"
_ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_TEMPLATE_PARAMETER = re.compile(r"#\{([^{}]*)\}")  # Jaeger UI's link template syntax


def _exporters_of(config: Config, pipeline: str) -> list[str]:
    return list((pipelines(config).get(pipeline) or {}).get("exporters") or [])


def sentry_otlp_problems(config: Config) -> list[str]:
    """Traces to Jaeger and to Sentry's OTLP traces endpoint, logs to Sentry's logs endpoint,
    through an otlphttp exporter that sends the DSN's public key in x-sentry-auth."""
    sentry = {
        eid: body or {}
        for eid, body in (config.get("exporters") or {}).items()
        if component_type(eid) == "otlphttp"
    }
    if not sentry:
        return ["no otlphttp exporter for Sentry"]
    problems = []
    for eid, body in sentry.items():
        for signal in ("traces", "logs"):
            endpoint = str(body.get(f"{signal}_endpoint") or "")
            if not endpoint.endswith(f"/integration/otlp/v1/{signal}"):
                problems.append(f"{eid}: {signal}_endpoint {endpoint!r} is not Sentry's")
        auth = str((body.get("headers") or {}).get("x-sentry-auth") or "")
        if not auth.startswith("sentry sentry_key="):
            problems.append(f"{eid}: no x-sentry-auth header with the public key")
    for pipeline, wanted in (("traces", "traces"), ("logs", "logs")):
        if not any(e in sentry for e in _exporters_of(config, pipeline)):
            problems.append(f"pipeline {pipeline}: nothing exports the {wanted} to Sentry")
    if not any(component_type(e) == "otlp" for e in _exporters_of(config, "traces")):
        problems.append("pipeline traces: no otlp exporter (Jaeger)")
    return problems


def mount_target(compose: Config, service: str, compose_dir: Path, path: Path) -> str | None:
    """Where ``service`` mounts ``path`` (a file or a directory), or None."""
    body = (compose.get("services") or {}).get(service) or {}
    for source, target in _bind_mounts(body):
        if (compose_dir / source).resolve() == path.resolve():
            return target
    return None


def _environment(service: Config) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # NAME=value, or NAME alone: passed through from the shell
        return {
            name: (value if sep else None) for name, sep, value in (e.partition("=") for e in env)
        }
    return {str(k): None if v is None else str(v) for k, v in env.items()}


def at_scale_compose_problems(compose: Config, compose_dir: Path, config: Config) -> list[str]:
    services = compose.get("services") or {}
    problems = []
    for name in (AT_SCALE_SERVICE, "relay"):
        if name not in services:
            problems.append(f"no {name} service")
        elif "at-scale" not in (services[name].get("profiles") or []):
            problems.append(f"{name}: not in the at-scale profile (would start by default)")
    if problems:
        return problems
    target = mount_target(compose, AT_SCALE_SERVICE, compose_dir, AT_SCALE_PATH)
    if target is None or PurePosixPath(target) != PurePosixPath(CONFIG_TARGET):
        problems.append(f"{AT_SCALE_PATH.name} is not mounted at {CONFIG_TARGET}")
    # Every ${env:NAME} of the config must reach the container.
    passed = _environment(services[AT_SCALE_SERVICE])
    wanted = set(_ENV_REFERENCE.findall(yaml.safe_dump(config)))
    problems += [
        f"{AT_SCALE_SERVICE}: {name} is not passed" for name in sorted(wanted - set(passed))
    ]
    relay_target = mount_target(compose, "relay", compose_dir, RELAY_DIR)
    if relay_target is None or PurePosixPath(relay_target) != PurePosixPath(RELAY_TARGET):
        problems.append(f"examples/relay is not mounted at {RELAY_TARGET}")
    return problems


def relay_problems(relay: Config, compose: Config) -> list[str]:
    settings = relay.get("relay") or {}
    problems = []
    if settings.get("mode") != "proxy":
        problems.append(f"mode {settings.get('mode')!r}: proxy needs no credentials")
    upstream = urlsplit(str(settings.get("upstream") or ""))
    if upstream.scheme not in ("http", "https") or not upstream.hostname:
        problems.append(f"upstream {settings.get('upstream')!r} is not a URL")
    port = settings.get("port", 3000)
    published = [str(p) for p in (compose["services"].get("relay") or {}).get("ports") or []]
    if not any(p.split("#")[0].strip().endswith(f":{port}") for p in published):
        problems.append(f"relay listens on {port}, which compose does not publish")
    if settings.get("host") != "0.0.0.0":
        problems.append("relay must listen on all interfaces inside its container")
    return problems


def jaeger_ui_problems(ui: Config, compose: Config, compose_dir: Path) -> list[str]:
    """Span events (Jaeger: logs) and span attributes (tags) holding sentry.event_id link to
    the error in Sentry; the template takes its value from that same item."""
    problems = []
    patterns = ui.get("linkPatterns") or []
    for kind in ("logs", "tags"):
        found = [p for p in patterns if p.get("type") == kind and p.get("key") == SENTRY_EVENT_ID]
        if not found:
            problems.append(f"no {kind} link pattern for {SENTRY_EVENT_ID}")
        for pattern in found:
            url, text = str(pattern.get("url") or ""), str(pattern.get("text") or "")
            for field, template in (("url", url), ("text", text)):
                unknown = set(_TEMPLATE_PARAMETER.findall(template)) - {SENTRY_EVENT_ID}
                if unknown:
                    problems.append(f"{kind} {field}: parameters {sorted(unknown)} never resolve")
            # As Jaeger fills it in: the value replaces the parameter, then it is a URL.
            event_id = "0123456789abcdef0123456789abcdef"
            parts = urlsplit(url.replace(f"#{{{SENTRY_EVENT_ID}}}", event_id))
            if parts.scheme != "https" or parse_qs(parts.query).get("query") != [event_id]:
                problems.append(f"{kind} url {url!r} does not search Sentry for the event id")
            if not text:
                problems.append(f"{kind}: no link text")
    jaeger = (compose.get("services") or {}).get("jaeger") or {}
    target = mount_target(compose, "jaeger", compose_dir, JAEGER_UI_PATH)
    if target is None:
        problems.append(f"{JAEGER_UI_PATH.name} is not mounted into jaeger")
    elif _environment(jaeger).get("QUERY_UI_CONFIG") != target:
        problems.append("QUERY_UI_CONFIG (--query.ui-config) does not name the mounted file")
    return problems


@pytest.fixture(scope="module")
def at_scale() -> Config:
    return load(AT_SCALE_PATH)


@pytest.fixture(scope="module")
def relay() -> Config:
    return load(RELAY_DIR / "config.yml")


@pytest.fixture(scope="module")
def jaeger_ui() -> Config:
    data = json.loads(JAEGER_UI_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_at_scale_collector_config_is_valid_like_the_quick_one(at_scale: Config) -> None:
    assert undefined_pipeline_components(at_scale) == []
    assert undefined_extensions(at_scale) == []
    assert otlp_receiver_problems(at_scale) == []
    assert memory_limiter_not_first(at_scale) == []
    assert removed_exporters(at_scale) == []


def test_at_scale_collector_sends_traces_to_jaeger_and_sentry_and_logs_to_sentry(
    at_scale: Config, compose: Config
) -> None:
    assert sentry_otlp_problems(at_scale) == []
    assert exporter_host_problems(at_scale, compose) == []


def test_at_scale_services_are_wired_in_compose(at_scale: Config, compose: Config) -> None:
    assert at_scale_compose_problems(compose, COMPOSE_PATH.parent, at_scale) == []


def test_relay_is_a_proxy_published_on_loopback(relay: Config, compose: Config) -> None:
    assert relay_problems(relay, compose) == []


def test_jaeger_links_sentry_event_ids_to_sentry(jaeger_ui: Config, compose: Config) -> None:
    assert jaeger_ui_problems(jaeger_ui, compose, COMPOSE_PATH.parent) == []


def _sentry_exporter(c: Config) -> Config:
    return c["exporters"]["otlphttp/sentry"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: _sentry_exporter(c).pop("logs_endpoint"), id="no logs endpoint"),
        pytest.param(
            lambda c: _sentry_exporter(c).update(traces_endpoint="https://h/api/1/otlp/v1/traces"),
            id="not the integration path",
        ),
        pytest.param(lambda c: _sentry_exporter(c).pop("headers"), id="no auth header"),
        pytest.param(lambda c: c["service"]["pipelines"].pop("logs"), id="logs pipeline missing"),
        pytest.param(
            lambda c: _traces(c).update(exporters=["otlphttp/sentry"]), id="jaeger dropped"
        ),
    ],
)
def test_sentry_otlp_check_detects(at_scale: Config, change: Callable[[Config], None]) -> None:
    assert sentry_otlp_problems(_edit(at_scale, change)) != []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c["services"][AT_SCALE_SERVICE].pop("profiles"), id="no profile"),
        pytest.param(
            lambda c: c["services"][AT_SCALE_SERVICE].update(environment=["SENTRY_PROJECT_URL"]),
            id="public key not passed",
        ),
        pytest.param(
            lambda c: c["services"][AT_SCALE_SERVICE].update(
                volumes=["../otel-collector-config.yaml:" + CONFIG_TARGET]
            ),
            id="the quick config mounted",
        ),
        pytest.param(
            lambda c: c["services"]["relay"].update(volumes=["./relay:/etc/relay:ro"]),
            id="relay config where relay does not look",
        ),
        pytest.param(lambda c: c["services"].pop("relay"), id="no relay"),
    ],
)
def test_at_scale_compose_check_detects(
    at_scale: Config, compose: Config, change: Callable[[Config], None]
) -> None:
    broken = _edit(compose, change)
    assert at_scale_compose_problems(broken, COMPOSE_PATH.parent, at_scale) != []


@pytest.mark.parametrize(
    ("relay_change", "compose_change"),
    [
        pytest.param(lambda r: r["relay"].update(mode="managed"), lambda c: None, id="managed"),
        pytest.param(lambda r: r["relay"].update(upstream="sentry"), lambda c: None, id="no url"),
        pytest.param(lambda r: r["relay"].update(port=3001), lambda c: None, id="other port"),
        pytest.param(
            lambda r: r["relay"].update(host="127.0.0.1"), lambda c: None, id="container loopback"
        ),
    ],
)
def test_relay_check_detects(
    relay: Config,
    compose: Config,
    relay_change: Callable[[Config], None],
    compose_change: Callable[[Config], None],
) -> None:
    assert relay_problems(_edit(relay, relay_change), _edit(compose, compose_change)) != []


def _first_pattern(ui: Config) -> Config:
    return ui["linkPatterns"][0]


@pytest.mark.parametrize(
    ("ui_change", "compose_change"),
    [
        pytest.param(
            lambda u: u.update(linkPatterns=u["linkPatterns"][1:]), lambda c: None, id="no logs"
        ),
        pytest.param(
            lambda u: _first_pattern(u).update(key="event_id"), lambda c: None, id="wrong key"
        ),
        pytest.param(
            lambda u: _first_pattern(u).update(
                url="https://h/organizations/o/issues/?query=#{sentry.event.id}"
            ),
            lambda c: None,
            id="unresolvable parameter",
        ),
        pytest.param(
            lambda u: _first_pattern(u).update(url="https://h/organizations/o/issues/"),
            lambda c: None,
            id="no event id in the url",
        ),
        pytest.param(
            lambda u: None,
            lambda c: c["services"]["jaeger"]["environment"].pop("QUERY_UI_CONFIG"),
            id="config not given to jaeger",
        ),
        pytest.param(
            lambda u: None, lambda c: c["services"]["jaeger"].pop("volumes"), id="not mounted"
        ),
    ],
)
def test_jaeger_ui_check_detects(
    jaeger_ui: Config,
    compose: Config,
    ui_change: Callable[[Config], None],
    compose_change: Callable[[Config], None],
) -> None:
    broken = jaeger_ui_problems(
        _edit(jaeger_ui, ui_change), _edit(compose, compose_change), COMPOSE_PATH.parent
    )
    assert broken != []
