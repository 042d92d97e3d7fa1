"""The child side of a trial: what `accelerate launch -m harness.trial DIR` runs.

`recipe` reads top to bottom (config -> data -> model -> LoRA -> base eval -> train -> eval ->
samples -> adapter); the stages it calls live beside it: `batching`, `checkpoint`,
`evaluation`, `samples`, `adapter`, and `parallel` for data-parallel trials. Nothing here talks
to Optuna or MLflow: a trial only writes its directory and its events.
"""
