"""Expert-parallel MoE (examples/ep_moe.py) on GPUs with NCCL.

The EP layer on 2 GPUs must give the outputs and gradients (dx, router, expert weights
and biases, FP32 main_grad) of the same layer on one GPU with all experts local, for the
same inputs. Each test launches `torchrun --nproc-per-node N examples/ep_moe.py --check`
in a subprocess (NVLink multicast off in its environment) and reads its verdict.
Skipped, with the reason shown by `pytest -rs`, where there are too few GPUs, or (tests
marked `gpu`, see conftest.py) no SM90 GPU or no loadable libmoegemm.so. The variant with
pure-torch experts needs only 2 CUDA GPUs: it checks the NCCL exchange on its own.
"""

import importlib
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "ep_moe.py")
MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                 "NVSHMEM_DISABLE_NVLS": "1"}


def gpu_count():
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def need_gpus(n):
    have = gpu_count()
    if have < n:
        pytest.skip(f"needs {n} GPUs, found {have}")


def need_moegemm():
    try:
        importlib.import_module("moegemm")
    except Exception as e:  # ImportError, or a missing libmoegemm.so
        pytest.skip(f"moegemm is not importable: {type(e).__name__}: {e}")


def torchrun(nproc, *args, timeout=600):
    env = dict(os.environ, **MULTICAST_OFF)
    # The children import moegemm from wherever this process would.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", EXAMPLE, *args]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=timeout)
    out = r.stdout + r.stderr
    print(out)  # shown by pytest on failure, or with -s
    return r.returncode, out


@pytest.mark.parametrize("experts", [pytest.param("moegemm", marks=pytest.mark.gpu), "torch"])
def test_ep_2gpu_matches_one_gpu(experts):
    """2 ranks, NCCL, bf16: EP == all experts local (moegemm experts; and the pure-torch
    experts, which isolate the NCCL exchange from moegemm)."""
    need_gpus(2)
    if experts == "moegemm":
        need_moegemm()
    rc, out = torchrun(2, "--check", "--experts", experts)
    assert rc == 0 and "EP CHECK PASSED (world 2" in out, out[-6000:]


@pytest.mark.gpu
def test_ep_world1_nccl_matches_one_gpu():
    """World size 1 with NCCL: the full exchange path (counts and token all-to-all,
    regrouping) against the communication-free layer."""
    need_gpus(1)
    need_moegemm()
    rc, out = torchrun(1, "--check")
    assert rc == 0 and "EP CHECK PASSED (world 1" in out, out[-6000:]


@pytest.mark.gpu
def test_ep_2gpu_training_steps():
    need_gpus(2)
    need_moegemm()
    rc, out = torchrun(2, "--steps", "3", "--tokens", "2048", "--hidden", "512", "--ffn",
                       "256", "--num-experts", "8", "--top-k", "2")
    assert rc == 0, out[-6000:]
    losses = [float(line.split("loss")[1].split()[0]) for line in out.splitlines()
              if line.startswith("step ")]
    assert len(losses) == 3 and all(l == l and l < 1e4 for l in losses), out[-6000:]
