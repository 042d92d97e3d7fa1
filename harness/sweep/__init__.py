"""A study's orchestration, in the order a sweep runs (`command.run_sweep`):

- `opening`: the study created, continued or joined, its settings kept, baselines queued;
- `preflight`: what every trial would trip over, found before any trial starts;
- `pool` with `slots` and `source`: the slots that run trials at once, each asking the study
  for its next trial under the budget lock; `recovery` sets right what dead workers left;
- `objective` with `judge` and `telling`: one trial launched (`harness.launch`), its evals
  reported and pruned, its verdict told to Optuna; `deliveries` holds its MLflow writes while
  the tracking server is away;
- `finish` with `plots` and `view`: the last worker's plots, summary and promotion.

`context` holds what these share. The search space is `harness.space`; one trial's process is
`harness.launch`.
"""
