"""Splatting engines: the numpy reference (`reference`), the compiled CPU engine (`compiled`, numba kernels
in `cpu_kernels`), the torch engine (`torch_engine`, CUDA); `select.get_engine` picks one. The interface
they share is `base.Engine`."""

from .base import Engine
from .select import cuda_available, get_engine

__all__ = ["Engine", "cuda_available", "get_engine"]
