"""Jupyter kernels for the notebook tests, started warm: forked from the server of
``tests/warm_python.py`` (JAX, Flax, optax and gradkit already imported) instead of a
fresh ``python -m ipykernel_launcher``, which spends ~2.5 s of CPU on those imports.

nbclient talks to the kernel as to any other (ZMQ channels, connection file); only the
launch differs. Use ``nbclient.NotebookClient(..., kernel_manager_class=WarmKernelManager)``.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from tests import warm_python


class _ProcessHandle:
    """The part of ``subprocess.Popen`` that jupyter_client uses, for a forked process."""

    stdin = stdout = stderr = None

    def __init__(self, process):
        self._process = process
        self.pid = process.pid

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self._process.join(timeout)
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self._process.kill()

    def terminate(self) -> None:
        self._process.terminate()


class _WarmProvisioner(LocalProvisioner):

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        env = kwargs.get("env") or dict(os.environ)
        if cmd[1:3] != ["-m", "ipykernel_launcher"] or not warm_python.can_start_warm(env):
            return await super().launch_kernel(cmd, **kwargs)
        self.cwd = kwargs.get("cwd") or os.getcwd()
        process = warm_python.start(cmd[1:], env=env, cwd=self.cwd)
        self.process = _ProcessHandle(process)
        # No process group: the forked kernel shares the test process's group, so signals
        # (interrupt, kill) go to the kernel alone.
        self.pid, self.pgid = process.pid, None
        return self.connection_info


class WarmKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels are forked warm (ipykernel kernels only)."""

    async def _async_pre_start_kernel(self, **kw: Any):
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = _WarmProvisioner(kernel_id=self.kernel_id,
                                                kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)
