"""The Optuna study a sweep's workers share: its storage (journal file, SQLite, PostgreSQL,
MySQL), samplers seeded per trial and the LoRA-informed start, the pruners, the budget every
worker draws from, and the liveness of running trials (heartbeats, trials whose worker died and
their one retry). It knows nothing of MLflow: the sweep closes a lost trial's run.
"""
