"""Postgres through psycopg 3: a pool, ordered append-only migrations, and the job store."""
