"""What runs inside a workload: the Spark jobs (ingest, aggregates, transforms), the
custom-code loader, and the Spark session they share (`runtime.sparkenv`)."""
