"""Archives served over HTTP: the run's servers (nginx in containers on an internal network) and the cost of
each read, from their access logs. ``servers.py`` is pure; ``runner/phases/serving.py`` starts and stops them."""
