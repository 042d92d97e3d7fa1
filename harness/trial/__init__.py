"""The child side of a trial: what `python -m harness.trial DIR` runs (each process of a
data-parallel trial, under `accelerate launch`).

`recipe` reads top to bottom: config -> `setup` (data, model, LoRA, optimizer) -> base eval
(`evaluation`) -> `loop` (training, with evals and `checkpoint`s) -> eval -> `samples` ->
`adapter`. `stopping` is how a SIGTERM or the parent's end reaches the loop; `parallel` is what
changes when a trial runs data-parallel; `batching` is the seeded batch order. Nothing here
talks to Optuna or MLflow: a trial only writes its directory and its events.
"""
