"""modeldeploy's reference model server: a TorchScript classifier behind the Seldon
Python wrapper (seldon-core 1.17.1), with integrity checks, an output-class counter
and configurable fault injection."""

__version__ = "0.1.0"
