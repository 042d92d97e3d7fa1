"""The parent side of a sweep, in the order a sweep runs (`command.run_sweep`):

- `space`, `params`, `space_checks`: the search-space file, its parameters, and its checks;
- `opening`: the study created, continued or joined, its settings kept, baselines queued;
- `preflight`: what every trial would trip over, found before any trial starts;
- `pool` with `slots` and `source`: the slots that run trials at once, each asking the study
  for its next trial under the budget lock; `recovery` sets right what dead workers left;
- `objective` with `runner`, `judge` and `telling`: one trial launched, its evals reported
  and pruned (`pruners`), its verdict told to Optuna; `deliveries` holds its MLflow writes
  while the tracking server is away;
- `finish` with `plots` and `view`: the last worker's plots, summary and promotion.

`context` holds what these share; `train` is `harness train`, one trial without a study.
"""
