"""`python -m harness.trial DIR`: one trial, as the runner launches it."""

from __future__ import annotations

import sys

from harness.trial.recipe import main

sys.exit(main())
