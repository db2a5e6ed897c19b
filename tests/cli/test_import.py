import subprocess
import sys


def test_import_is_light():
    code = ("import sys, vecbench, vecbench.core.registry, vecbench.cli.commands; "
            "heavy = [m for m in ('faiss', 'hnswlib', 'umap', 'torch') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
