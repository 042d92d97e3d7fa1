"""MLflow: the store and its client (`store`), a trial's run (`trial_run`, params and values as
written in `values`, its adapter as a logged model in `logged_model`), a study's run
(`study_run`, `notes`), the outbox that holds writes while the server is away (`outbox`), the
Model Registry's gate and promotion (`gate`, `promotion`, `usage`), and getting an adapter back
(`refs`, `download`, `pull`, `export`, `answers`); `harness ui` (`ui`); who ran a run, at which
commit (`provenance`).
"""
