"""The services the flows run on: the Dask cluster, the temporary Prefect API, and the checks that MLflow,
Prefect and Dask answer. Below the flows: it imports no flow and no CLI."""
