"""Evaluations of apsgen's labels against human ones."""
