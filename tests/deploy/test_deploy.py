"""The deployment files agree with each other and with the service: compose, the image, the
Prometheus config and rules, Grafana's provisioning and dashboard, the Kubernetes manifests.
Offline and fast; docker compose, promtool and kubectl run where they are installed and are
skipped, saying why, where they are not."""

from __future__ import annotations

import base64
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from streammeta.cli import build_parser
from streammeta.config import Config, load_config
from streammeta.streams import make_stream
from tests.deploy.helpers import (
    DASHBOARD,
    DEPLOY,
    PROMETHEUS_SERIES,
    PROMETHEUS_YML,
    ROOT,
    RULES,
    dashboard,
    dashboard_queries,
    declared_metrics,
    load_yaml,
    load_yaml_all,
    metric_names,
    panels,
    recorded_metrics,
    rules,
    to_promql,
)

COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_CUDA = DEPLOY / "compose.cuda.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
SETTINGS = DEPLOY / "streammeta.toml"
DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "streammeta.yaml"
K8S = DEPLOY / "k8s"
TOPIC_VARS = (
    "STREAMMETA_KAFKA__INPUT_TOPIC",
    "STREAMMETA_KAFKA__OUTPUT_TOPIC",
    "STREAMMETA_KAFKA__DLQ_TOPIC",
)
ALERTS = {
    "StreammetaDown",
    "StreammetaAdaptationSlowerThanBaseline",
    "StreammetaNoMetaUpdates",
    "StreammetaConsumerLagGrowing",
    "StreammetaDeadLetterRatioHigh",
    "StreammetaCheckpointStale",
    "StreammetaBoundaryStorm",
}
#: What the dashboard must show: throughput, lag, loss, recovery, speedup, detections, learned
#: rates, meta-updates, dead letters, checkpoints, device and build.
DASHBOARD_METRICS = {
    "streammeta_records_total",
    "streammeta_predictions_total",
    "streammeta_consumer_lag_records",
    "streammeta_prequential_loss",
    "streammeta_recovery_samples_bucket",
    "streammeta_speedup",
    "streammeta_boundaries_total",
    "streammeta_detection_delay_records_bucket",
    "streammeta_learned_lr_mean",
    "streammeta_learned_lr_stddev",
    "streammeta_meta_updates_total",
    "streammeta_meta_update_duration_seconds_bucket",
    "streammeta_dead_letters_total",
    "streammeta_checkpoint_age_seconds",
    "streammeta_device_info",
    "streammeta_build_info",
}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml(COMPOSE)["services"]
    return services


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _streammeta_config(env: dict[str, str]) -> Config:
    """The configuration a container with ``env`` and the mounted settings file loads."""
    fields = {
        k: v for k, v in env.items() if k.startswith("STREAMMETA_") and k != "STREAMMETA_CONFIG"
    }
    return load_config(SETTINGS, env=fields)


def _volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """``(source, target)`` of every volume of a compose service, short or long syntax."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target = v.split(":")[:2]
        else:
            source, target = v.get("source", ""), v["target"]
        out.append((source, target))
    return out


def _metrics_port() -> int:
    return int(_env(_services()["learner"])["STREAMMETA_METRICS__PORT"])


# --- compose -------------------------------------------------------------------------------


def test_compose_has_every_service_each_with_an_image_or_a_build() -> None:
    services = _services()
    assert {"kafka", "topics", "learner", "simulator", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"service {name}: no image, no build"


def test_compose_builds_and_mounts_only_paths_that_exist() -> None:
    data = load_yaml(COMPOSE)
    named = set(data.get("volumes") or {})
    for name, service in data["services"].items():
        build = service.get("build")
        if build is not None:
            build = {"context": build} if isinstance(build, str) else build
            context = (DEPLOY / build["context"]).resolve()
            assert context.is_dir(), f"service {name}: build context {context} is missing"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"service {name}: {dockerfile} is missing"
        for source, _ in _volumes(service):
            if source.startswith((".", "/")):
                assert (DEPLOY / source).resolve().exists(), f"service {name}: mounts {source}"
            else:
                assert source in named, f"service {name}: volume {source!r} is not declared"
        for env_file in service.get("env_file", []):
            assert (DEPLOY / env_file).is_file(), f"service {name}: env_file {env_file}"


def test_compose_kafka_is_one_kraft_node_without_zookeeper() -> None:
    kafka = _services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _env(kafka)
    assert not any("ZOOKEEPER" in k for k in env)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = dict(
        re.fullmatch(r"(\w+)://[^:]*:(\d+)", item).groups()  # type: ignore[union-attr]
        for item in env["KAFKA_LISTENERS"].split(",")
    )
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(listeners) <= set(protocols)
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    voter = f"{env['KAFKA_NODE_ID']}@{kafka['hostname']}:{listeners[controller]}"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voter
    advertised = {item.split("://")[0] for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert advertised <= set(listeners) - {controller}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a Kafka Uuid
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"  # one broker


def test_compose_creates_the_topics_before_the_learner_and_simulator_start() -> None:
    services = _services()
    topics = services["topics"]
    assert topics["image"] == services["kafka"]["image"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    script = " ".join(topics["command"])
    assert "kafka-topics.sh" in script and "--create" in script
    for var in TOPIC_VARS:
        assert f"$${var}" in script, f"the topics service does not create ${var}"
        names = {_env(services[s])[var] for s in ("topics", "learner")}
        assert len(names) == 1, f"{var}: the learner and the topics service disagree: {names}"
    assert (
        _env(services["simulator"])["STREAMMETA_KAFKA__INPUT_TOPIC"]
        == (_env(services["learner"])["STREAMMETA_KAFKA__INPUT_TOPIC"])
    )
    for name in ("learner", "simulator"):
        wait = services[name]["depends_on"]["topics"]["condition"]
        assert wait == "service_completed_successfully", name


def test_compose_learner_and_simulator_load_a_valid_config_for_one_stream() -> None:
    services = _services()
    for name in ("learner", "simulator"):
        env = _env(services[name])
        mounts = dict((target, source) for source, target in _volumes(services[name]))
        assert mounts[env["STREAMMETA_CONFIG"]] == "./streammeta.toml", name
        _streammeta_config(env)  # unknown keys and bad values raise ConfigError
        args = build_parser().parse_args(services[name]["command"])
        assert args.command == {"learner": "run", "simulator": "simulate"}[name]
    config = _streammeta_config(_env(services["learner"]))
    stream = make_stream(config.stream.name, task_length=config.stream.task_length)
    assert (stream.task, stream.n_features, stream.n_classes) == (
        config.learner.task,
        config.learner.n_features,
        config.learner.n_classes,
    ), "the learner's model does not fit the simulated stream"


def test_compose_learner_exposes_metrics_and_keeps_checkpoints_on_a_volume() -> None:
    learner = _services()["learner"]
    env = _env(learner)
    port = _metrics_port()
    assert f"{port}:{port}" in learner["ports"]
    named = dict((target, source) for source, target in _volumes(learner))
    assert not named[env["STREAMMETA_SERVICE__CHECKPOINT_DIR"]].startswith((".", "/"))
    probe = " ".join(learner["healthcheck"]["test"])
    assert f":{port}/healthz" in probe


def test_compose_config_with_docker_compose() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH: `docker compose config` not run")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("the docker client has no compose plugin: `docker compose config` not run")
    for files in ([COMPOSE], [COMPOSE, COMPOSE_CUDA]):
        cmd = [docker, "compose", *(a for f in files for a in ("-f", str(f))), "config", "-q"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_compose_cuda_override_builds_the_cuda_variant_and_reserves_a_gpu() -> None:
    override = load_yaml(COMPOSE_CUDA)["services"]
    assert set(override) <= set(_services())
    learner = override["learner"]
    assert learner["build"]["args"]["TORCH_INDEX_URL"]
    assert learner["image"] != _services()["learner"]["image"]  # the CPU image stays as it is
    devices = learner["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    env = {**_env(_services()["learner"]), **_env(learner)}
    assert _streammeta_config(env).learner.device == "cuda"


# --- the image -----------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_installs_torch_then_the_project_and_runs_as_a_user() -> None:
    steps = _instructions()
    args = dict(a.split("=", 1) for kind, a in steps if kind == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert [a for kind, a in steps if kind == "FROM"] == ["${PYTHON_IMAGE}"]
    make_torch = re.search(r"^TORCH_VERSION \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert make_torch and args["TORCH_VERSION"] == make_torch.group(1)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    runs = [a for kind, a in steps if kind == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if '"torch==${TORCH_VERSION}"' in r)
    project_at = next(i for i, r in enumerate(runs) if 'pip install ".[fast]"' in r)
    assert "--index-url" in runs[torch_at] and torch_at < project_at
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "fast" in extras
    user = [a for kind, a in steps if kind == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert [a for kind, a in steps if kind == "ENTRYPOINT"] == ['["streammeta"]']
    assert [a for kind, a in steps if kind == "EXPOSE"] == [str(_metrics_port())]


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: the last pattern that matches it or one
    of its parent folders decides, ``!`` patterns keep."""

    def regex(pattern: str) -> str:
        out = re.escape(pattern.strip("/"))
        out = out.replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        out = out.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        return out

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        if any(re.fullmatch(regex(pattern.lstrip("!")), p) for p in prefixes):
            ignored = not keep
    return ignored


def test_dockerfile_copies_only_what_the_build_context_keeps() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    copies = [a for kind, a in _instructions() if kind == "COPY" and "--from" not in a]
    assert copies
    for copy in copies:
        *sources, _ = shlex.split(copy)
        for source in (s for s in sources if not s.startswith("--")):
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not _dockerignored(source, patterns), f"COPY {source}: .dockerignore drops it"
            if (ROOT / source).is_dir():
                kept = list((ROOT / source).rglob("*.py"))
                assert kept and not any(
                    _dockerignored(str(f.relative_to(ROOT)), patterns) for f in kept
                ), source
    for heavy in (".venv", ".git", "bench-out", "tests", "deploy", "streammeta/__pycache__/x.pyc"):
        assert _dockerignored(heavy, patterns), f"{heavy} would be sent to the docker daemon"


# --- Prometheus ----------------------------------------------------------------------------


def test_prometheus_scrapes_the_learner_and_loads_the_rules() -> None:
    config = load_yaml(PROMETHEUS_YML)
    files = [PROMETHEUS_YML.parent / f for f in config["rule_files"]]
    assert files == [RULES]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "streammeta")
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    learners = sorted(name for name in _services() if name.startswith("learner"))
    assert targets == [f"{name}:{_metrics_port()}" for name in learners]
    assert job["scrape_interval"] in ("5s", "15s")
    datasource = load_yaml(DATASOURCE)["datasources"][0]
    assert datasource["jsonData"]["timeInterval"] == job["scrape_interval"]
    prometheus = _services()["prometheus"]
    config_file = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    mounts = dict((target, source) for source, target in _volumes(prometheus))
    assert mounts[str(Path(config_file.split("=", 1)[1]).parent)] == "./prometheus"


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    assert set(alerts) >= ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name
        assert "for" in rule, name
    used = " ".join(r["expr"] for r in rules())
    for name in recorded_metrics():
        assert name in used, f"recording rule {name} is read by no rule"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("histogram_quantile(0.9, sum by (learner, le) (increase(m_bucket[15m])))", {"m_bucket"}),
        ("a > ignoring (learner) b", {"a", "b"}),
        ('sum(rate(x{outcome="dead_letter"}[5m])) / sum(rate(x[5m]))', {"x"}),
        ("increase(c_total[10m]) == 0 and on (job, instance) d > 0", {"c_total", "d"}),
        ("max(t) * 1e3", {"t"}),
        ("deriv(r:x:sum[15m]) > 0", {"r:x:sum"}),
        ("sum by (i) (y - y offset 5s) > 0", {"y"}),
        ('label_replace(z, "dst", "$1", "src", "(.*)")', {"z"}),
    ],
)
def test_metric_names_finds_the_series_an_expression_reads(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_dashboard_and_rules_read_only_metrics_the_service_declares() -> None:
    known = declared_metrics() | recorded_metrics() | PROMETHEUS_SERIES
    queries = dashboard_queries(dashboard())
    queries += [(f"rule {r.get('alert') or r['record']}", r["expr"]) for r in rules()]
    for variable in dashboard()["templating"]["list"]:
        found = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["query"])
        assert found, f"variable {variable['name']}: {variable['query']}"
        queries.append((f"variable {variable['name']}", found.group(1)))
    problems = []
    for where, expr in queries:
        names = metric_names(to_promql(expr))
        if not names:
            problems.append(f"{where}: reads no metric: {expr}")
        if unknown := names - known:
            problems.append(f"{where}: {sorted(unknown)} are not exported by the service")
    assert not problems, "\n".join(problems)


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (`make prometheus-tools`: Debian's prometheus)")
    return promtool


def test_promtool_accepts_the_config_and_the_rules() -> None:
    promtool = _promtool()
    for args in (["check", "config", str(PROMETHEUS_YML)], ["check", "rules", str(RULES)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_alert_unit_tests_pass() -> None:
    """deploy/prometheus/rules_test.yml: each alert fires on the instance that breaks its
    condition and not on the healthy or idle ones."""
    promtool = _promtool()
    tests = DEPLOY / "prometheus" / "rules_test.yml"
    done = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", tests.read_text()))
    assert tested >= ALERTS


# --- Grafana -------------------------------------------------------------------------------


def test_dashboard_is_grafana_json_whose_queries_name_the_provisioned_datasource() -> None:
    dash = dashboard()
    uid = load_yaml(DATASOURCE)["datasources"][0]["uid"]
    assert dash["uid"] and 36 <= dash["schemaVersion"] <= 41
    ids = [p["id"] for p in dash["panels"]] + [
        p["id"] for row in dash["panels"] for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
    for panel in panels(dash):
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == uid, panel["title"]
    queried = [a for a in dash["annotations"]["list"] if not a.get("builtIn")]
    queried += dash["templating"]["list"]
    assert all(item["datasource"]["uid"] == uid for item in queried)


def test_dashboard_shows_what_an_operator_needs() -> None:
    dash = dashboard()
    shown = set().union(*(metric_names(to_promql(e)) for _, e in dashboard_queries(dash)))
    assert shown >= DASHBOARD_METRICS, f"missing: {sorted(DASHBOARD_METRICS - shown)}"
    boundaries = [a for a in dash["annotations"]["list"] if a["name"] == "Task boundaries"]
    assert boundaries and boundaries[0]["enable"]
    assert "streammeta_boundaries_total" in boundaries[0]["target"]["expr"]
    loss = next(p for p in panels(dash) if p["title"] == "Prequential loss")
    assert "{{learner}}" in loss["targets"][0]["legendFormat"]  # meta and baseline apart
    quantiles = [
        t["expr"]
        for p in panels(dash)
        for t in p["targets"]
        if "recovery_samples_bucket" in t["expr"]
    ]
    assert any("histogram_quantile(0.5" in q and "learner" in q for q in quantiles)


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    grafana = _services()["grafana"]
    mounts = dict((source, target) for source, target in _volumes(grafana))
    provider = load_yaml(PROVIDER)["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == mounts["./grafana/dashboards"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = _env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent == Path(mounts["./grafana/dashboards"])
    assert (DASHBOARD.parent / Path(home).name).is_file()
    datasource = load_yaml(DATASOURCE)["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert (
        datasource["url"]
        == "http://prometheus:" + _services()["prometheus"]["ports"][0].split(":")[1]
    )


# --- Kubernetes ----------------------------------------------------------------------------


def _manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += load_yaml_all(path)
    return docs


def test_k8s_manifests_are_complete_and_refer_to_each_other() -> None:
    docs = _manifests()
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc
    by_kind: dict[str, dict[str, Any]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    deployments = by_kind["Deployment"] | by_kind["StatefulSet"]
    assert set(deployments) == {"streammeta-learner", "streammeta-simulator"}
    maps = by_kind["ConfigMap"]
    for name, deployment in deployments.items():
        claims = {t["metadata"]["name"] for t in deployment["spec"].get("volumeClaimTemplates", [])}
        claims |= set(by_kind.get("PersistentVolumeClaim", {}))
        spec = deployment["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        assert container["image"], name
        build_parser().parse_args(container["args"])
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in maps, name
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in maps, name
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name
        for mount in pod["containers"][0].get("volumeMounts", []):
            volumes = {v["name"] for v in pod.get("volumes", [])}
            assert mount["name"] in volumes | claims, name
    (service,) = by_kind["Service"].values()
    learner = deployments["streammeta-learner"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= learner["metadata"]["labels"].items()
    (container,) = learner["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    assert int(env["STREAMMETA_METRICS__PORT"]) == ports["metrics"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "metrics" and port["port"] == ports["metrics"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["STREAMMETA_SERVICE__CHECKPOINT_DIR"] == mounts["checkpoints"]


def test_k8s_configmaps_hold_the_deploy_settings_and_valid_variables() -> None:
    maps = {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == "ConfigMap"}
    assert maps["streammeta-config"]["data"]["streammeta.toml"] == SETTINGS.read_text()
    env = maps["streammeta-env"]["data"]
    config = _streammeta_config(env)  # the file plus the variables: a valid configuration
    assert config.kafka.bootstrap_servers
    assert env["STREAMMETA_CONFIG"] == "/etc/streammeta/streammeta.toml"
    compose_topics = _env(_services()["learner"])
    assert all(env[v] == compose_topics[v] for v in TOPIC_VARS)


def _k8s_learner_env() -> dict[str, str]:
    """The variables the learner's container gets: its ConfigMaps (envFrom), then its env."""
    docs = _manifests()
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    learner = next(d for d in docs if d["metadata"]["name"] == "streammeta-learner")
    (container,) = learner["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    env.update({e["name"]: str(e["value"]) for e in container.get("env", [])})
    return env


def test_every_learner_deployment_serves_metrics_on_every_interface() -> None:
    """metrics.host defaults to loopback, out of reach of Prometheus and the probes in a
    container: compose (CPU and CUDA), Kubernetes and the image itself set 0.0.0.0."""
    compose = _env(_services()["learner"])
    cuda = {**compose, **_env(load_yaml(COMPOSE_CUDA)["services"]["learner"])}
    for where, env in (("compose", compose), ("compose.cuda", cuda), ("k8s", _k8s_learner_env())):
        metrics = _streammeta_config(env).metrics
        assert (metrics.host, metrics.port) == ("0.0.0.0", _metrics_port()), where
    image_env = [a for kind, a in _instructions() if kind == "ENV"]
    assert "STREAMMETA_METRICS__HOST=0.0.0.0" in image_env


def test_k8s_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_k8s_kustomize_renders_with_kubectl() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the manifests were checked as YAML only")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert len(rendered) == len(_manifests())
    images = {
        c["image"]
        for d in rendered
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"streammeta:0.1.0"}
    assert {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"} == {
        "streammeta"
    }


def test_two_learners_share_one_group_and_their_meta_state_in_compose_and_k8s() -> None:
    """Scale-out as deployed: the learners of compose are one consumer group on an input topic
    with a partition each, each with its own checkpoint volume and host port, sharing the
    meta-state topic (created compacted); Kubernetes runs two replicas of a StatefulSet, a
    checkpoint volume per pod, with the same meta topic."""
    services = _services()
    learners = [services[n] for n in sorted(services) if n.startswith("learner")]
    assert len(learners) == 2
    envs = [_env(s) for s in learners]
    assert len({e["STREAMMETA_KAFKA__GROUP"] for e in envs}) == 1
    assert len({e["STREAMMETA_KAFKA__META_TOPIC"] for e in envs}) == 1
    assert len({dict((t, s) for s, t in _volumes(s))["/var/lib/streammeta/checkpoints"]
                for s in learners}) == 2  # fmt: skip
    assert len({p for s in learners for p in s["ports"]}) == 2
    script = " ".join(services["topics"]["command"])
    assert "--partitions 2" in script and "cleanup.policy=compact" in script
    learner = next(d for d in _manifests() if d["metadata"]["name"] == "streammeta-learner")
    assert learner["kind"] == "StatefulSet" and learner["spec"]["replicas"] == 2
    assert (
        _k8s_learner_env()["STREAMMETA_KAFKA__META_TOPIC"]
        == envs[0]["STREAMMETA_KAFKA__META_TOPIC"]
    )
