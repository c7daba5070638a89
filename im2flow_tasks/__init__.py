"""Thin Prefect tasks over im2flow_core and im2flow_storage: one task carries seconds of work."""
