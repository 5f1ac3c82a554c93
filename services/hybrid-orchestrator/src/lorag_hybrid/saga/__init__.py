"""Hybrid jobs as sagas: plan the stages, run them as sub-jobs, compensate on failure."""
