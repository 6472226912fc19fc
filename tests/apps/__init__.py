"""Graphs and process roles the multi-process tests start as subprocesses."""
