"""`python -m harness.trial DIR`: one trial, as the runner launches it."""

from __future__ import annotations

from harness.trial.parallel import exit_process
from harness.trial.recipe import main

exit_process(main())
