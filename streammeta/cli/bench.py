"""``streammeta bench``: the benchmarks, one :class:`~streammeta.cli.parser.Command` each, with
the config sections each takes as flags. Their options and handlers are in
:mod:`~streammeta.cli.bench_quality` and :mod:`~streammeta.cli.bench_system`."""

from streammeta.cli import bench_data, bench_quality, bench_system
from streammeta.cli.parser import Command

__all__ = ["BENCH", "BENCHMARKS"]

BENCHMARKS: tuple[Command, ...] = (
    Command(
        "adaptation",
        help="every learner on the same seeded streams: recovery, detection, loss, accuracy",
        description="Runs the meta-learner variants, the baselines and river's adaptive models "
        "prequentially on the same seeded records of each stream (micro-batch K=10; 1 on "
        "switching_sinusoid, MOCA's setting). streammeta's learners cut the stream into tasks "
        "themselves, the [segment] detector (the loss-jump test by default) giving their bank "
        "of fast learners switch candidates; '@oracle' learners are told the true switches, "
        "'@meta_off' ones do not meta-learn, '@single' is one fast learner that the same "
        "detector's boundaries reset (no bank), '@leader' predicts with the bank's best "
        "member alone, '@no_switch' has no switch candidate at all (streams without switches "
        "only); deep_river runs where its overlay is installed (make peers). Writes "
        "results.json, results.md (the targets and one table per stream) and one PNG per "
        "stream.",
        arguments=bench_quality.adaptation_arguments,
        sections=("learner", "segment"),
        run=bench_quality.adaptation,
    ),
    Command(
        "batch-sizes",
        help="the default learner and online_adam at micro-batches 1/10/64/256: same quality?",
        description="Runs the default learner (with the [segment] detector) and online_adam "
        "prequentially on the same seeded records of each stream at every micro-batch size, "
        "and checks that each size's accuracy stays within 2 points (MSE within 10%%) of the "
        "best size's, counting the records after the first 20%%. Writes results.json and "
        "results.md (a table per stream: score and records/s per size).",
        arguments=bench_quality.batch_sizes_arguments,
        sections=("learner", "segment"),
        run=bench_quality.batch_sizes,
    ),
    Command(
        "keys",
        help="many keys on one stream, each its own concept: per-key state against one state "
        "for all and per-key peers; new keys; records/s and RSS with 10,000 keys",
        description="On the same records of a keyed stream (200 keys interleaved at random, each "
        "labelling by its own random hyperplane of 4 raw features): streammeta with per-key "
        "state (meta-learning on and off), the same learner without keys, online_adam per key "
        "and river's logistic regression, HAT and ARF per key, micro-batch 10. Then 50 keys "
        "never seen before join: each learner's accuracy by a new key's own record count and "
        "the records it needs to reach its level. Then records/s and peak RSS with 10,000 keys "
        "against no keys, each in a process of its own. Writes results.json.",
        arguments=bench_data.keys_arguments,
        sections=("learner", "segment"),
        run=bench_data.keys,
    ),
    Command(
        "late-labels",
        help="labels 500 records after their records, through the real broker with kills: "
        "accuracy against labels inside the records, nothing lost",
        description="On the embedded broker with `streammeta run`: the same SEA records once "
        "with each label inside its record and once with every label published --delay "
        "records later ({id, y}, on the input topic or with --label-topic on its own), the "
        "second run killed with SIGKILL --kills times. Reports the accuracy of the published "
        "predictions against the true labels in both runs and checks that every record was "
        "predicted and every label joined or dead-lettered. Writes summary.json.",
        arguments=bench_data.late_labels_arguments,
        run=bench_data.late_labels,
    ),
    Command(
        "scale-out",
        help="one instance against two that share their meta-state and two that do not, on "
        "the same four-partition topic: post-boundary loss",
        description="On the embedded broker with `streammeta run`: a sinusoid stream whose "
        "tasks are spread over four partitions (by message key), learned by one instance "
        "reading all four, by two instances in one group sharing their meta-parameters on "
        "kafka.meta_topic, and by two that do not share. Reports the post-boundary loss (the "
        "first 20 records of each task) of the published predictions for each. Writes "
        "summary.json.",
        arguments=bench_data.scale_out_arguments,
        run=bench_data.scale_out,
    ),
    Command(
        "throughput",
        help="records/s of the learner at batch 1/32/256 and ms per meta-update",
        description="Measures the prequential learner's records/s at batch sizes 1, 32 and 256 "
        "(with and without meta-updates); the default learner with meta-updates inline and on "
        "a background thread and with meta-learning off beside online_adam, river's logistic/"
        "linear regression, HAT, ARF and deep-river (where installed) on the same records of "
        "sinusoid and SEA, each with its prequential score and post-boundary loss; one "
        "second-order meta-update (16 tasks x 5 steps) with vmap and with a per-task loop; "
        "peak RSS; then Kafka's raw ceiling and the service end to end per client.",
        arguments=bench_system.throughput_arguments,
        sections=("learner", "segment", "kafka", "service"),
        run=bench_system.throughput,
    ),
    Command(
        "profile",
        help="where the service's time goes: cProfile of the service end to end, by area",
        description="Publishes sinusoid records as single-record messages on the embedded "
        "broker and runs the service over them under cProfile; sums each function's own time "
        "by the part of the data path it belongs to (decode and encode, Kafka client, learner, "
        "meta-updates, segmentation, run loop, torch). Writes profile.md and profile.pstats "
        "(for snakeviz or pstats).",
        arguments=bench_system.profile_arguments,
        sections=("learner", "segment", "kafka", "service"),
        run=bench_system.profile,
    ),
    Command(
        "crash",
        help="kill -9 the service at random points and check that no record is lost",
        description="On the embedded broker: publishes a stream (a malformed message every "
        "250 records), starts `streammeta run` and kills it with SIGKILL after a random delay, "
        "--kills times, then drains the topic with a last run and checks every input offset "
        "for a prediction or a dead letter. Writes summary.json.",
        arguments=bench_system.crash_arguments,
        run=bench_system.crash,
    ),
    Command(
        "fuzz",
        help="send 40+ kinds of bad messages mixed with good ones through the real embedded "
        "broker, restart the service between rounds, check every good record got exactly one "
        "prediction and every bad one exactly one dead letter, strict JSON, no exit",
        description="Sends 40+ kinds of bad messages mixed with good ones through the real "
        "embedded broker, restarts the service between rounds, and checks that every good "
        "record got exactly one prediction and every bad one exactly one dead letter, that the "
        "output is strict JSON, and that the service never exits on its own.",
        arguments=bench_system.fuzz_arguments,
        run=bench_system.fuzz,
    ),
    Command(
        "dashboard",
        help="render the Grafana dashboard's main panels to a PNG from a demo run's metrics",
        description="Starts a real Prometheus (Debian's prometheus package, or the binary on "
        "PATH) scraping `streammeta demo` every second, runs the demo for --duration seconds, "
        "then draws the main panels of deploy/grafana/dashboards/streammeta.json from "
        "Prometheus' data with matplotlib. Writes dashboard.png, panels.json (series per "
        "panel), the demo's report and Prometheus' data to --out.",
        arguments=bench_system.dashboard_arguments,
        run=bench_system.dashboard,
    ),
)

#: The ``bench`` group; the benchmark chosen is in ``args.bench``.
_NAMES = [b.name for b in BENCHMARKS]
BENCH = Command(
    "bench",
    help=f"{', '.join(_NAMES[:-1])} and {_NAMES[-1]} benchmarks",
    subcommands=BENCHMARKS,
    metavar="BENCHMARK",
)
