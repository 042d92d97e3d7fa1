"""What crosses between a trial process and the process that launched it (a sweep, or `harness
train`), and nothing else does: the environment the parent sets, the events the child appends
to a file, the reasons a trial ends with and their exit codes, and the result the parent makes
of them. Both sides import this package; neither imports the other.

Events travel as JSON lines appended to a file the parent follows, rather than a pipe: a
data-parallel trial runs under `accelerate launch` (its processes are grandchildren of the
parent), a file survives the child's death with every event it managed to write, and it stays
in the trial's directory as a record. The names are here; the events in `events`, the file
they travel through in `channel`, the endings in `reasons`, the parent's view in `result`.
"""

from __future__ import annotations

from harness.protocol.channel import EventReader, Events, EventWriter, RankEvents
from harness.protocol.events import (
    KINDS,
    BaseEval,
    Checkpoint,
    CheckpointDamaged,
    Eval,
    Event,
    Failed,
    Finished,
    Garbled,
    HeldOut,
    HeldOutTest,
    Resumed,
    Retention,
    Samples,
    Selected,
    Started,
    Step,
    decode,
    encode,
)
from harness.protocol.reasons import (
    EXIT_CODES,
    FAILURES,
    Ending,
    Failure,
    Reason,
    StopRequest,
    exit_code,
)
from harness.protocol.result import TrialResult

TRIAL_MODULE = "harness.trial"
"""The module a trial process runs (`python -m harness.trial DIR`): how its processes are known."""
EVENTS_ENV = "HARNESS_EVENTS"
"""The events file the child appends to, made fresh by the parent for each run."""
PARENT_ENV = "HARNESS_PARENT"
"""`PID:START_TIME` of the process that runs the trial: the trial stops when it is gone."""
FAULT_ENV = "HARNESS_FAULT"
"""A fault the trial injects into itself (`harness.faults`), set per trial by a sweep."""

__all__ = [
    "EVENTS_ENV",
    "EXIT_CODES",
    "FAILURES",
    "FAULT_ENV",
    "KINDS",
    "PARENT_ENV",
    "TRIAL_MODULE",
    "BaseEval",
    "Checkpoint",
    "CheckpointDamaged",
    "Ending",
    "Eval",
    "Event",
    "EventReader",
    "EventWriter",
    "Events",
    "Failed",
    "Failure",
    "Finished",
    "Garbled",
    "HeldOut",
    "HeldOutTest",
    "RankEvents",
    "Reason",
    "Resumed",
    "Retention",
    "Samples",
    "Selected",
    "Started",
    "Step",
    "StopRequest",
    "TrialResult",
    "decode",
    "encode",
    "exit_code",
]
