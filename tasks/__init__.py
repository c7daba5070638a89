"""Thin Prefect tasks over im2flow_core and storage: one task carries seconds of work."""
