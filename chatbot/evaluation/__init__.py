"""Eval suite: gold set, metrics, runner, reports and the plain llama-index baseline."""
