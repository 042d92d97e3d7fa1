"""The parent side of a sweep: the search space, the slots that run trials at once, the runner
that launches each trial and reads its events, the objective that reports to Optuna and prunes,
and the finish (plots, parent run, promotion). `harness train` (one trial without a study) uses
the same runner.
"""
