"""The gateway's plain functions: what each route does, with its dependencies passed in."""
