"""The command line: `im2flow` and its console (progress, summaries, log files)."""
