"""bench/gpu.py runs where only torch and torchvision are installed (the GPU machine's environment)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = """
import sys
for name in ("yaml", "streamlit", "plotly", "umap"):
    sys.modules[name] = None  # any import of them now fails, as on a machine without them
sys.path.insert(0, "bench")
import torch
import gpu
device = torch.device("cpu")
teacher, info, _, stats = gpu.random_teacher(gpu.CPU, device)
loop = gpu.recover_configs(gpu.CPU, 2, 2, False)["loop (eager fp32)"]
row = gpu.time_recover(loop, teacher, info, stats, device)
flops = gpu.recover_flops(loop, teacher, stats, info, device)
print(row["us_per_image_iteration"] > 0, row["compiled_while_timed"], flops > 0)
"""


def test_the_gpu_benchmark_runs_an_eager_row_without_yaml_or_the_app_packages():
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "0", "True"]
