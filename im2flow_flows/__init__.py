"""Prefect flows composing im2flow's tasks, and the `im2flow` command line."""
