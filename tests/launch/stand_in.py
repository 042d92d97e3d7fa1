"""A stand-in for a trial process: it speaks the protocol (its events through the harness's own
writer, to the file the parent names), and does what the test's script in STAND_IN says, one
step after another:

    {"emit": {"event": KIND, FIELD: ...}}   an event
    {"raw": TEXT}                           a line that is not an event
    {"say": TEXT}                           a line of output (its log)
    {"train": true}                         a step event every 50 ms until SIGTERM
    {"ignore_sigterm": true}                SIGTERM does nothing from now on
    {"grandchild": PATH}                    a sleeping process in its group, its pid in PATH
    {"sleep": SECONDS}
    {"exit": CODE}                          (the default at the end: 0)
    {"kill": SIGNAL}                        itself

On SIGTERM (unless ignored) it ends as the harness's trial does: a `failed` event with reason
`killed`, exit code 13. Fast: it imports no torch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from harness.protocol import EVENTS_ENV, EXIT_CODES, KINDS, EventWriter, Failed, Step


def main() -> int:
    writer = EventWriter(os.environ[EVENTS_ENV])

    def stopped(signum: int, frame: Any) -> None:
        writer.emit(Failed(reason="killed", message="stopped by SIGTERM"))
        os._exit(EXIT_CODES["killed"])

    signal.signal(signal.SIGTERM, stopped)
    for action in json.loads(os.environ["STAND_IN"]):
        code = act(action, writer)
        if code is not None:
            return code
    return 0


def act(action: dict[str, Any], writer: EventWriter) -> int | None:
    if "emit" in action:
        fields = {k: v for k, v in action["emit"].items() if k != "event"}
        writer.emit(KINDS[action["emit"]["event"]](**fields))
    elif "raw" in action:
        with open(os.environ[EVENTS_ENV], "a") as f:
            f.write(action["raw"] + "\n")
    elif "say" in action:
        print(action["say"], flush=True)
    elif "train" in action:
        train(writer)
    elif "ignore_sigterm" in action:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif "grandchild" in action:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(action["grandchild"], "w") as f:
            f.write(str(child.pid))
    elif "sleep" in action:
        time.sleep(action["sleep"])
    elif "kill" in action:
        os.kill(os.getpid(), action["kill"])
        time.sleep(5)
    elif "exit" in action:
        return int(action["exit"])
    return None


def train(writer: EventWriter) -> None:
    step = 0
    while True:
        step += 1
        writer.emit(Step(step=step, total_steps=10**6, loss=2.0, learning_rate=1e-4,
                         grad_norm=1.0, tokens=64, padding_efficiency=1.0,
                         tokens_per_second=1000.0, epoch=0.0))
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
