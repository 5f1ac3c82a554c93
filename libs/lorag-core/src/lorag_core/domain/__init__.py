"""Pure domain rules shared by every service: no Kafka, Postgres, S3 or Chroma here."""
