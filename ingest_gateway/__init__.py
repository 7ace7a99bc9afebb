"""The ingest gateway: validates transactions, publishes them to Kafka, serves alerts."""
