"""`harness eval`: models (the base, registered versions, trial runs, adapter or merged
directories) scored side by side on a data file or a study's split, by loss and by the task
metrics of their answers, in the terminal and in MLflow."""
