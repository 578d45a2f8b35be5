"""The nightly pipeline: ``crmtool run pipeline.yaml`` chains steps over dated inputs.

:mod:`.spec` reads and checks the pipeline file (untrusted data: JSON Schema, file:line errors,
paths kept inside a root folder); :mod:`.registry` holds the step kinds (open: a new kind plugs
in with one :func:`~crmtool.pipeline.registry.register` call); :mod:`.steps` registers the
built-in ones; :mod:`.runner` runs them into a versioned folder per run, publishes ``latest``
only when every step passed and keeps old versions by the retention setting.
"""

from crmtool.pipeline.runner import PipelineResult, plan_pipeline, run_pipeline
from crmtool.pipeline.spec import PipelineSpec, load_pipeline

__all__ = ["PipelineResult", "PipelineSpec", "load_pipeline", "plan_pipeline", "run_pipeline"]
