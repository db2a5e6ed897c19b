"""Runbook steps and the check of their active set, step by step (pure Python: ``vecbench
validate`` runs it without data). The parsing is :mod:`vecbench.run.runbook`'s."""

from __future__ import annotations

from dataclasses import dataclass

from vecbench.core.errors import ConfigError

OPERATIONS = ("insert", "delete", "replace", "search", "rebuild", "compact")
#: The fields each operation takes (big-ann-benchmarks' names).
FIELDS = {"insert": ("start", "end"), "delete": ("start", "end"),
          "replace": ("tags_start", "tags_end", "ids_start"),
          "search": (), "rebuild": (), "compact": ()}
#: What an operation asks of an index applied natively (see Index.capabilities).
NEEDS = {"insert": {"insert"}, "delete": {"delete"}, "replace": {"insert", "delete"}}
#: Steps a runbook may have (a typo in a generator should not make a million).
MAX_STEPS = 100_000


@dataclass(frozen=True)
class Step:
    operation: str
    start: int | None = None
    end: int | None = None
    tags_start: int | None = None
    tags_end: int | None = None
    ids_start: int | None = None
    where: str = ""      # the YAML path (or file and step number) of the step, for messages

    def canonical(self) -> dict:
        return {"operation": self.operation,
                **{name: getattr(self, name) for name in FIELDS[self.operation]}}

    def label(self) -> str:
        if self.operation in ("insert", "delete"):
            return f"{self.operation} [{self.start}, {self.end})"
        if self.operation == "replace":
            return (f"replace tags [{self.tags_start}, {self.tags_end}) with ids from "
                    f"{self.ids_start}")
        return self.operation


# ---------------------------------------------------------------------------------------------
# checking: the active set, step by step

def check_steps(steps: tuple[Step, ...], n_data: int | None, where: str = "runbook",
                max_pts: int | None = None) -> None:
    """Simulate the active tags: a delete of tags not present, an insert of tags present or
    past the data (``n_data`` ids, where known), more active points than ``max_pts`` (a
    big-ann file's bound on the points active at once), a search of an empty index: one line
    naming the step."""
    if len(steps) > MAX_STEPS:
        raise ConfigError(f"{len(steps)} steps; expected at most {MAX_STEPS}", where)
    active: set[int] = set()
    searched = False
    for step in steps:
        def fail(what: str) -> None:
            raise ConfigError(f"step {step.label()}: {what}", step.where)

        if step.operation in ("insert", "delete") and step.end <= step.start:
            fail(f"expected end > start, got start {step.start}, end {step.end}")
        if step.operation == "insert":
            if n_data is not None and step.end > n_data:
                fail(f"inserts past the data: ids must be < {n_data}, got end {step.end}")
            present = next((i for i in range(step.start, step.end) if i in active), None)
            if present is not None:
                fail(f"inserts id {present}, which is already present")
            active.update(range(step.start, step.end))
            if max_pts is not None and len(active) > max_pts:
                fail(f"{len(active)} points active; expected at most max_pts {max_pts}")
        elif step.operation == "delete":
            missing = next((i for i in range(step.start, step.end) if i not in active), None)
            if missing is not None:
                fail(f"deletes id {missing}, which is not present")
            active.difference_update(range(step.start, step.end))
        elif step.operation == "replace":
            if step.tags_end <= step.tags_start:
                fail(f"expected tags_end > tags_start, got {step.tags_start}, {step.tags_end}")
            count = step.tags_end - step.tags_start
            if n_data is not None and step.ids_start + count > n_data:
                fail(f"replaces with ids past the data: ids must be < {n_data}, got up to "
                     f"{step.ids_start + count - 1}")
            missing = next((i for i in range(step.tags_start, step.tags_end)
                            if i not in active), None)
            if missing is not None:
                fail(f"replaces tag {missing}, which is not present")
        elif step.operation in ("search", "rebuild", "compact") and not active:
            fail("the index is empty here; expected an insert before it")
        searched = searched or step.operation == "search"
    if not searched:
        raise ConfigError("expected at least one search step, got none", where)
