"""What ``vecbench --help`` and each subcommand's ``--help`` show: the description and examples.

Every example is a command line that runs as shown in a POSIX shell (quoted where a shell would
otherwise read ``<``, ``|``, ``*`` or spaces); ``tests/cli/test_cli_help.py`` parses each of them.
"""

from __future__ import annotations

import argparse

DESCRIPTION = ("Benchmark compression pipelines and ANN indexes for embeddings against exact kNN "
               "of the original float32 vectors.")

#: ``--help`` epilogs: one or more command lines that run as shown (quoted for a POSIX shell).
EXAMPLES = {
    "vecbench": """examples:
  vecbench run --example quickstart          # the quickstart, no download needed
  vecbench describe hnswlib                  # one component's parameters
  vecbench COMMAND --help                    # each command's options and examples""",
    "run": """examples:
  vecbench run --example quickstart
  vecbench run experiment.yaml --results results/mine --jobs 2 --threads 1""",
    "validate": """examples:
  vecbench validate experiment.yaml
  vecbench validate --example quickstart""",
    "collect": """example:
  vecbench collect results/quickstart""",
    "list": """examples:
  vecbench list
  vecbench list indexes""",
    "describe": """examples:
  vecbench describe hnswlib
  vecbench describe float8""",
    "check": """examples:
  vecbench check hnswlib
  vecbench check recall --kind metrics""",
    "datasets": """examples:
  vecbench datasets list
  vecbench datasets info digits""",
    "datasets list": """example:
  vecbench datasets list""",
    "datasets info": """examples:
  vecbench datasets info digits
  vecbench datasets info 'synthetic: {n_base: 5000, dim: 64, intrinsic_dim: 8}'""",
    "datasets fetch": """example:
  vecbench datasets fetch beir-scifact --dest data""",
    "export": """example:
  vecbench export digits digits.hdf5 --format hdf5 --k 100""",
    "lid": """examples:
  vecbench lid digits
  vecbench lid 'synthetic: {n_base: 5000, dim: 64, intrinsic_dim: 8}' --k 20 --json""",
    "plot": """examples:
  vecbench plot results/quickstart --kind pareto -o pareto.png
  vecbench plot results/quickstart --kind pareto --where "index == 'hnswlib'" -o hnsw.png""",
    "report": """example:
  vecbench report results/quickstart""",
    "best": """example:
  vecbench best results/quickstart --budget 'bytes_per_vector<=256' --maximize recall@10""",
    "paired": """example:
  vecbench paired results/rag_storage --baseline "pipeline == 'float32' and index == 'flat'" \\
      --metric ndcg@10""",
    "compare": """example:
  vecbench compare results/before results/after --fail 'recall@10:-0.005,qps:-10%'""",
}


def add_examples(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Give every subcommand its epilog from EXAMPLES, printed as written."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                key = f"{prefix}{name}"
                sub.epilog = EXAMPLES.get(key)
                sub.formatter_class = argparse.RawDescriptionHelpFormatter
                add_examples(sub, f"{key} ")
