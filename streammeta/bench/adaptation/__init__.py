"""The adaptation benchmark: every learner on the same seeded records of every stream.

The yardstick is the strongest plain learner: ``online_adam`` (the same MLP on standardized
inputs, Adam, never reset), deep-river's MLP (where its overlay is installed: a process of its
own, see :mod:`streammeta.bench.deep_river`) and river's logistic/linear regression, Hoeffding
Adaptive Tree and ARF, on the same raw records. streammeta's learners cut the stream into tasks
themselves, with the configured segmenter (ADWIN on the loss by default) reading each learner's
own losses; ``@oracle`` learners are told the true switches instead, to show what perfect
segmentation would give; ``@meta_off`` is the default learner with meta-learning switched off
(initialization and optimizer frozen at their starting values), to show what meta-learning
adds.

Per learner it reports the prequential loss and accuracy, recovery samples and post-boundary
loss, detection delay, detected fraction and false alarms per 10,000 records, and records/s.
On streams with known switch points recovery is timed from the **true** switch (the time a user
waits, detection delay included), and every learner recovers to the same level: the default
meta-learner's at the end of the previous task. Figures count only what follows a warm-up
(``min_task`` tasks), so they measure a meta-learner that has learned online from the stream
alone. Learners run in worker processes, one torch thread each.

The package: :mod:`.variants` (the learners a run can compare), :mod:`.plan` (what a run does,
each stream prepared for it), :mod:`.scoring` (the figures), :mod:`.targets` (the goals checked)
and :mod:`.running` (the workers and the files written).
"""

from streammeta.bench.adaptation.plan import AdaptationPlan
from streammeta.bench.adaptation.running import run_adaptation
from streammeta.bench.adaptation.variants import DEFAULT_LEARNERS, VARIANTS, YARDSTICK

__all__ = ["DEFAULT_LEARNERS", "VARIANTS", "YARDSTICK", "AdaptationPlan", "run_adaptation"]
