"""MLflow: the runs of a study and its trials, the outbox that holds writes while the tracking
server is away, the Model Registry's promotion gate, and `harness pull`.
"""
