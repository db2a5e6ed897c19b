"""Write the legacy (schema 2) fixture with the code at PYTHONPATH: ok, error, a Python crash
(in-process) and a worker signal crash (workers.crashed), then collect it."""
import shutil, sys
from pathlib import Path
from vecbench import runner, records, stages, workers, executors, results
from vecbench.experiment import load_experiment

out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
original = stages.insertion_order
def broken(unit, dataset):
    if unit.index.name == "hnswlib" and unit.ordering.name == "random" and not unit.pipeline:
        raise RuntimeError("a bug in an ordering")
    return original(unit, dataset)
stages.insertion_order = broken
exp = load_experiment(Path("exp.yaml"))
summary = runner.run_experiment(exp, out, threads=1, isolated=False)
print(summary.run, summary.failed)
# the int8 hnswlib random unit: its worker died by a signal
unit, key, n = [u for u in runner.unit_keys(exp, 1, 1)
                if u[0].index.name == "hnswlib" and u[0].pipeline][0]
folder = Path("wfolder"); shutil.rmtree(folder, ignore_errors=True); folder.mkdir()
(folder / "stderr").write_text("Fatal Python error: Segmentation fault\n\nCurrent thread 0x1 (most recent call first):\n  File \"x.py\", line 1 in build\n")
(folder / "stage").write_text("build")
class P:
    pid = 4242
    exitcode = -11
w = workers.Worker(executors.Task(unit, key, n), P(), folder, 1796666000.0)
outcome = workers.crashed(w, -11)
(out / "runs" / f"{key}.npz").unlink()
records.store_unit(out, outcome)
shutil.rmtree(folder)
results.collect(out)
