# SPDX-License-Identifier: Apache-2.0
"""A real multi-process run on JAX's own runtime (``jax.distributed.initialize``).

Two processes on localhost, 4 virtual CPU devices each, train the reference LM
(``python -m examples.lm.main --config.parallel=mesh``, tiny config) over one 8-device mesh;
the result must equal the single-process 8-device run (this pytest process, tests/conftest.py's 8
devices), and only process 0 may write files (metrics, config, plot, checkpoint metadata).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from examples.lm import trainer
from examples.lm.configs import default
from tests.helpers import ROOT
from tests.helpers import subprocess_env

TINY = dict(d_model=16, num_layers=1, num_heads=2, seq_len=8, batch_size=8,
            corpus_bytes=6000, eval_interval=3, eval_batches=1, log_interval=1, warmup_steps=1,
            num_steps=3, checkpoint_interval=3, parallel="mesh",
            # SGD with momentum, not Adam: Adam turns the rounding noise of gradients that
            # are zero in exact arithmetic (the key bias: softmax ignores it) into ±lr steps,
            # so its parameters cannot be compared across reduction orders; SGD's can.
            optimizer="sgd", learning_rate=0.3, opt_kwargs={"momentum": 0.9})

# Runs examples/lm/main.py as __main__ and records every file or directory this process
# creates, opens for writing, renames or removes under the workdir (Python's audit events:
# metrics, config.json, the plot, orbax's metadata; orbax's array data is written by
# tensorstore, whose files are checked by listing instead).
WRAPPER = r"""
import json, os, runpy, sys
workdir, record = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[3:]
writes = []

def hook(event, args):
    if event == "open" and args[0] is not None and not isinstance(args[0], int):
        mode, flags = args[1] or "r", args[2] or 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writes.append(os.fspath(args[0]))
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "shutil.rmtree"):
        writes.append(os.fspath(args[0]))

sys.addaudithook(hook)
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    if e.code not in (0, None):
        raise
finally:
    mine = [w for w in writes if os.path.abspath(w).startswith(workdir)]
    with open(record, "w") as f:
        json.dump(mine, f)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flags(config: dict) -> list[str]:
    return [f"--config.{k}={json.dumps(v) if isinstance(v, dict) else v}"
            for k, v in config.items()] + ["--config.progress=False"]


@pytest.mark.slow
def test_two_processes_train_like_one_process_on_eight_devices(tmp_path):
    workdir = tmp_path / "runs"
    wrapper = tmp_path / "record_writes.py"
    wrapper.write_text(WRAPPER)
    address = f"127.0.0.1:{_free_port()}"
    procs = []
    for pid in range(2):
        cmd = [sys.executable, str(wrapper), str(workdir), str(tmp_path / f"writes_{pid}.json"),
               str(ROOT / "examples" / "lm" / "main.py"), *_flags(TINY),
               f"--workdir={workdir}", f"--coordinator_address={address}",
               "--num_processes=2", f"--process_id={pid}"]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      env=subprocess_env(devices=4)))
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=900))  # generous: a loaded CI machine
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-4000:]
    assert "final val loss" in outs[0][0] and "final val loss" not in outs[1][0]

    # Only process 0 wrote: process 1 created, opened for writing or removed nothing.
    writes = [json.loads((tmp_path / f"writes_{pid}.json").read_text()) for pid in range(2)]
    assert writes[1] == [], writes[1]
    assert any(w.endswith("metrics.jsonl") for w in writes[0])
    assert any(w.endswith("config.json") for w in writes[0])
    assert not [f for f in (workdir / "sgd" / "checkpoints").rglob("*")
                if "process_1" in f.name]  # orbax wrote no array data for process 1

    # The same run in this process on one 8-device mesh.
    single = trainer.replace(default.get_config(),
                             **{**TINY, "checkpoint_interval": 0, "progress": False})
    want = trainer.train_and_evaluate(single, str(tmp_path / "single"))
    records = [json.loads(line) for line in
               (workdir / "sgd" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]  # every step once: one writer
    for got, ref in zip(records, want["history"], strict=True):
        for key in ("loss", "grad_norm", "lr"):
            np.testing.assert_allclose(got[key], ref[key], rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(records[-1]["val_loss"], want["final_val_loss"], rtol=1e-6)
    # The final parameters, restored from process 0's checkpoint.
    manager = ocp.CheckpointManager(workdir / "sgd" / "checkpoints")
    assert manager.latest_step() == 3
    template = {"params": want["params"], "opt_state": want["opt_state"]}
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    restored = manager.restore(3, args=ocp.args.StandardRestore(abstract))
    manager.close()
    got_leaves = jax.tree.leaves(restored["params"])
    want_leaves = jax.tree.leaves(want["params"])
    assert len(got_leaves) == len(want_leaves)
    for a, b in zip(got_leaves, want_leaves, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    print("max |Δparam| two processes vs one:", max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(got_leaves, want_leaves, strict=True)))
