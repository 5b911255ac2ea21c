"""The Kafka source and sink, run over both clients against the real embedded broker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streammeta.config import KafkaConfig
from streammeta.io import (
    Backoff,
    CommitFailedError,
    Connection,
    DeliveryError,
    KafkaIOError,
    Partition,
    RebalanceListener,
    Source,
    TransientKafkaError,
    available_clients,
    ensure_topics,
    kafka_client,
    open_sink,
    open_source,
)
from tests.io.conftest import CLIENTS, make_config, start_broker
from tests.io.helpers import drain, produce

pytestmark = pytest.mark.broker

Config = Callable[..., KafkaConfig]


class Recorder(RebalanceListener):
    """Records the events; optionally commits the position on revoke or seeks on assign."""

    def __init__(self, source: Source, *, commit_on_revoke: bool = False, skip: int = 0) -> None:
        self.source = source
        self.commit_on_revoke = commit_on_revoke
        self.skip = skip
        self.events: list[tuple[str, list[Partition]]] = []

    def on_assigned(self, partitions: list[Partition]) -> None:
        self.events.append(("assigned", partitions))
        if self.skip:
            for p, offset in self.source.committed(partitions).items():
                self.source.seek(p, (offset or 0) + self.skip)

    def on_revoked(self, partitions: list[Partition]) -> None:
        self.events.append(("revoked", partitions))
        if self.commit_on_revoke:
            self.source.commit({p: pos for p in partitions if (pos := self.source.position(p))})

    def on_lost(self, partitions: list[Partition]) -> None:
        self.events.append(("lost", partitions))


def test_produce_then_poll_every_message_with_offsets_keys_and_headers(
    kafka_cfg: Config, client: str
) -> None:
    cfg = kafka_cfg()
    assert ensure_topics(cfg, [cfg.input_topic], client=client) == [cfg.input_topic]
    assert ensure_topics(cfg, [cfg.input_topic], client=client) == []
    n = 50
    values = [b'{"x": [%d]}' % i for i in range(n)]
    keys = [b"k%d" % (i % 3) for i in range(n)]
    produce(cfg, client, values, keys=keys, headers=[[("n", b"%d" % i)] for i in range(n)])
    tp = (cfg.input_topic, 0)
    with open_source(cfg, client=client) as source:
        assert source.partitions(cfg.input_topic) == [0]
        source.assign([tp])
        got = drain(source, n)
        assert [m.offset for m in got] == list(range(n))
        assert [m.value for m in got] == values
        assert [m.key for m in got] == keys
        assert [list(m.headers) for m in got] == [[("n", b"%d" % i)] for i in range(n)]
        assert all(m.topic == cfg.input_topic and m.partition == 0 for m in got)
        assert all(m.timestamp > 1_600_000_000_000 for m in got)
        assert source.position(tp) == n and source.highwater(tp) == n
        assert source.lag() == {tp: 0}
        assert source.poll(10, 0.2) == []


def _filled(kafka_cfg: Config, client: str, n: int) -> tuple[KafkaConfig, tuple[str, int]]:
    """A fresh input topic holding ``n`` empty records, and its partition 0."""
    cfg = kafka_cfg()
    ensure_topics(cfg, [cfg.input_topic], client=client)
    produce(cfg, client, [b"{}"] * n)
    return cfg, (cfg.input_topic, 0)


def test_lag_is_highwater_minus_position(kafka_cfg: Config, client: str) -> None:
    cfg, tp = _filled(kafka_cfg, client, 30)
    with open_source(cfg, client=client) as source:
        source.assign([tp])
        assert source.lag() == {}  # nothing fetched yet: the highwater is unknown
        got = drain(source, 10, max_records=10)
        assert len(got) == 10
        assert source.highwater(tp) == 30
        assert source.lag() == {tp: 20}


def test_pause_stops_fetching_and_resume_goes_on_without_gaps(
    kafka_cfg: Config, client: str
) -> None:
    cfg, tp = _filled(kafka_cfg, client, 20)
    with open_source(cfg, client=client) as source:
        source.assign([tp])
        first = drain(source, 5, max_records=5)
        source.pause([tp])
        assert source.paused() == {tp}
        assert all(source.poll(100, 0.2) == [] for _ in range(3))
        source.resume([tp])
        assert source.paused() == set()
        rest = drain(source, 15)
        assert [m.offset for m in first + rest] == list(range(20))


def test_seek_moves_the_next_poll(kafka_cfg: Config, client: str) -> None:
    cfg, tp = _filled(kafka_cfg, client, 10)
    with open_source(cfg, client=client) as source:
        source.assign([tp])
        source.seek(tp, 7)
        assert [m.offset for m in drain(source, 3)] == [7, 8, 9]
        source.seek(tp, 2)
        assert [m.offset for m in drain(source, 8)] == list(range(2, 10))
        with pytest.raises(ValueError, match="next offset to read"):
            source.seek(tp, -1)
        with pytest.raises(KafkaIOError, match="not assigned"):
            source.seek(("elsewhere", 0), 0)


def test_group_resumes_after_commits_made_in_revoke_and_by_commit(
    kafka_cfg: Config, client: str
) -> None:
    """A member commits in ``on_revoked`` while closing; the next member of the group starts
    there, commits explicitly; a third seeks from ``on_assigned`` (committed + 3)."""
    cfg = kafka_cfg()
    ensure_topics(cfg, [cfg.input_topic], client=client)
    produce(cfg, client, [b"%d" % i for i in range(40)])
    tp = (cfg.input_topic, 0)

    first = open_source(cfg, client=client)
    first_events = Recorder(first, commit_on_revoke=True)
    first.subscribe([cfg.input_topic], first_events)
    assert [m.offset for m in drain(first, 10, max_records=10)] == list(range(10))
    first.close()
    assert first_events.events == [("assigned", [tp]), ("revoked", [tp])]

    with open_source(cfg, client=client) as second:
        second.subscribe([cfg.input_topic])
        assert [m.offset for m in drain(second, 5, max_records=5)] == list(range(10, 15))
        second.commit({tp: 15})
        assert second.committed([tp]) == {tp: 15}
        with pytest.raises(ValueError, match="must be an int >= 0"):
            second.commit({tp: -3})

    with open_source(cfg, client=client) as third:
        third.subscribe([cfg.input_topic], Recorder(third, skip=3))
        assert drain(third, 1, max_records=1)[0].offset == 18


def test_listener_errors_surface_from_poll(kafka_cfg: Config, client: str) -> None:
    class Broken(RebalanceListener):
        def on_assigned(self, partitions: list[Partition]) -> None:
            raise RuntimeError("restore failed")

    cfg = kafka_cfg()
    ensure_topics(cfg, [cfg.input_topic], client=client)
    with open_source(cfg, client=client) as source:
        source.subscribe([cfg.input_topic], Broken())
        with pytest.raises(RuntimeError, match="restore failed"):
            drain(source, 0, until=lambda _: False, timeout_s=30.0)


@pytest.mark.parametrize("late", [False, True], ids=["together", "late-joiner-busy"])
def test_two_members_share_partitions_without_losing_records(
    kafka_cfg: Config, client: str, late: bool
) -> None:
    """Two members of one group, each polled by its own thread as in two processes, split the
    partitions and between them read every record; also when the second joins late and both
    spend most of their time working between short polls."""
    cfg = kafka_cfg()
    ensure_topics(cfg, [cfg.input_topic], partitions=2, client=client)
    n = 60
    produce(cfg, client, [b"%d" % i for i in range(n)], keys=[b"key-%d" % i for i in range(n)])
    stop = threading.Event()
    got: list[set[tuple[int, int]]] = [set(), set()]
    owned: list[set[Partition]] = [set(), set()]
    errors: list[BaseException] = []

    def member(i: int) -> None:
        try:
            with open_source(cfg, client=client) as source:
                source.subscribe([cfg.input_topic])
                while not stop.is_set():
                    got[i].update((m.partition, m.offset) for m in source.poll(5, 0.05))
                    owned[i] = source.assignment()
                    time.sleep(0.3 if late else 0.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=member, args=(i,)) for i in range(2)]
    deadline = time.monotonic() + 60
    threads[0].start()
    while late and not got[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    threads[1].start()
    try:
        while len(got[0] | got[1]) < n or not all(len(mine) == 1 for mine in owned):
            assert not errors and time.monotonic() < deadline, f"{owned} {got} {errors}"
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors
    assert owned[0] | owned[1] == {(cfg.input_topic, 0), (cfg.input_topic, 1)}
    assert {p for p, _ in got[0] | got[1]} == {0, 1}
    assert len(got[0] | got[1]) == n


def test_source_and_sink_survive_a_broker_restart(tmp_path: Path, client: str) -> None:
    """The embedded broker keeps nothing across a restart: the topic comes back empty (created
    again, or by the producer's metadata request with the broker's default partitions), the
    group is unknown, and the records produced before the outage are gone. The source and the
    sink carry on: what is produced after the restart arrives, and commits work again."""
    broker = start_broker(tmp_path)
    try:
        cfg = make_config(broker.bootstrap)
        ensure_topics(cfg, [cfg.input_topic], client=client)
        with open_sink(cfg, client=client) as sink, open_source(cfg, client=client) as source:
            source.subscribe([cfg.input_topic])
            for i in range(5):
                sink.produce(cfg.input_topic, b"before-%d" % i)
            sink.flush(30.0)
            assert len(drain(source, 5)) == 5

            broker.restart()
            backoff = Backoff(initial_s=0.2, max_s=2.0, seed=0)
            deadline = time.monotonic() + 120
            while True:
                try:
                    ensure_topics(cfg, [cfg.input_topic], client=client)
                    for i in range(20):
                        sink.produce(cfg.input_topic, b"after-%d" % i)
                    sink.flush(20.0)
                    break
                except (TransientKafkaError, DeliveryError):
                    assert time.monotonic() < deadline
                    backoff.wait()
            after = drain(
                source,
                0,
                timeout_s=90.0,
                until=lambda got: got[-1:] and got[-1].value == b"after-19",
            )
            assert all(m.value.startswith(b"after-") for m in after if m.value)
            tp, done = (after[-1].topic, after[-1].partition), after[-1].offset + 1
            while True:  # the group is new to the restarted broker: the member joins it again
                try:
                    source.commit({tp: done})
                    break
                except (CommitFailedError, TransientKafkaError):
                    assert time.monotonic() < deadline
                    source.poll(100, 0.2)
            # right after the group re-forms this broker may still answer with the old state
            while source.committed([tp]) != {tp: done}:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        broker.stop()


def test_flush_raises_when_the_broker_is_down(tmp_path: Path, client: str) -> None:
    broker = start_broker(tmp_path)
    try:
        cfg = make_config(broker.bootstrap)
        ensure_topics(cfg, [cfg.input_topic], client=client)
        with open_sink(cfg, client=client) as sink:
            sink.produce(cfg.input_topic, b"first")
            sink.flush(30.0)
            assert sink.pending() == 0
            broker.stop()
            sink.produce(cfg.input_topic, b"lost")
            time.sleep(0.5)
            assert sink.pending() == 1  # not acknowledged: what backpressure counts
            with pytest.raises(DeliveryError) as error:
                sink.flush(1.0)
            assert error.value.undelivered == 1
            broker.start()
            ensure_topics(cfg, [cfg.input_topic], client=client)
            # the same sink delivers again; right after a topic is created, the embedded broker
            # can answer a produce with UNKNOWN_SERVER_ERROR, which kafka-python does not retry
            # (seen once in a loaded CI run), so one more try is allowed
            for attempt in range(2):
                sink.produce(cfg.input_topic, b"again")
                try:
                    sink.flush(60.0)
                    break
                except DeliveryError:
                    assert attempt == 0
                    time.sleep(1.0)
    finally:
        broker.stop()


@pytest.mark.skipif("confluent" not in available_clients(), reason="needs confluent-kafka")
def test_both_clients_put_a_key_on_the_same_partition(kafka_cfg: Config) -> None:
    cfg = kafka_cfg()
    ensure_topics(cfg, [cfg.input_topic], partitions=2)
    keys = [b"tenant-%d" % i for i in range(24)]
    placed = {}
    for name in ("kafka-python", "confluent"):
        produce(cfg, name, [name.encode()] * len(keys), keys=keys)
    with open_source(cfg) as source:
        source.assign([(cfg.input_topic, 0), (cfg.input_topic, 1)])
        for m in drain(source, 2 * len(keys)):
            placed.setdefault(m.value, {})[m.key] = m.partition
    assert placed[b"kafka-python"] == placed[b"confluent"]
    assert set(placed[b"confluent"].values()) == {0, 1}


@pytest.mark.parametrize("client_name", CLIENTS)
def test_settings_are_the_same_for_both_clients_and_hide_secrets(client_name: str) -> None:
    cfg = make_config(
        "b1:9092,b2:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        ssl_cafile="/ca.pem",
        ssl_certfile="/cert.pem",
        ssl_keyfile="/key.pem",
    )
    secrets = {"sasl_password": "pw-sasl", "ssl_key_password": "pw-key"}
    conn = Connection.from_config(cfg, secrets)
    assert "pw-" not in repr(conn) and "pw-" not in conn.describe()
    rename = kafka_client(client_name).settings
    settings = rename(conn.settings())
    names = {
        "kafka-python": (
            "bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username",
            "sasl_plain_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password",
        ),
        "confluent": (
            "bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.username",
            "sasl.password", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
            "ssl.key.password",
        ),
    }[client_name]  # fmt: skip
    assert [settings[name] for name in names] == [
        "b1:9092,b2:9092", "SASL_SSL", "SCRAM-SHA-512", "svc", "pw-sasl", "/ca.pem",
        "/cert.pem", "/key.pem", "pw-key",
    ]  # fmt: skip
    plain = Connection.from_config(make_config("b:1", sasl_username="svc"), secrets)
    assert not {"sasl_plain_password", "sasl.password", "ssl_password", "ssl.key.password"} & set(
        rename(plain.settings())
    )


def test_clients_do_not_show_secrets(kafka_cfg: Config, client: str) -> None:
    cfg = kafka_cfg(sasl_username="svc")
    secrets = {"sasl_password": "pw-sasl", "ssl_key_password": "pw-key"}
    with (
        open_source(cfg, secrets, client=client) as source,
        open_sink(cfg, secrets, client=client) as sink,
    ):
        for thing in (source, sink):
            assert "pw-" not in repr(thing) and cfg.bootstrap_servers in repr(thing)


def test_admin_configuration_dump_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    import streammeta.io.kafka_python  # noqa: F401 (installs the filter)

    with caplog.at_level(logging.DEBUG, logger="kafka.admin.client"):
        logging.getLogger("kafka.admin.client").debug(
            "Starting KafkaAdminClient with configuration: %s", {"sasl_plain_password": "pw"}
        )
    assert "pw" not in caplog.text


def test_missing_bootstrap_servers_names_the_fix() -> None:
    with pytest.raises(ValueError, match="streammeta broker"):
        open_source(KafkaConfig())
