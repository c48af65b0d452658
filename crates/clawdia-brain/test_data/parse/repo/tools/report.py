"""Builds a weekly report from task records."""

import json

# Keeps the tasks of one week and renders them.
class Report:
    """A report over a list of tasks."""

    def __init__(self, tasks):
        self.tasks = tasks

    def done(self):
        return [task for task in self.tasks if task["done"]]


def load(path):
    """Reads tasks from a JSON file."""
    with open(path) as handle:
        return json.load(handle)


@staticmethod
def render(report):
    return "\n".join(task["title"] for task in report.done())
