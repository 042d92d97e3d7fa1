"""The Optuna study a sweep's workers share: its storage (journal file, SQLite, PostgreSQL,
MySQL), samplers seeded per trial, the budget every worker draws from, and the liveness of
running trials (heartbeats, trials whose worker died and their one retry).
"""
