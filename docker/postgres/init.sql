-- Run once by the postgres image, when its data volume is still empty (files in
-- /docker-entrypoint-initdb.d), as POSTGRES_USER (`harness`). The image has already created
-- POSTGRES_DB, `optuna`: the Optuna study storage. These two are MLflow's.

-- MLflow's backend store: experiments, runs, metrics, the model registry.
CREATE DATABASE mlflow;

-- MLflow's basic-auth users and permissions (database_uri in docker/mlflow/basic_auth.ini).
CREATE DATABASE mlflow_auth;
