"""Entry point for ``python -m abtest``."""

import os
import sys

# The simulator's numpy maths and faiss searches run on small batches, where waking a second
# BLAS/OpenMP thread costs more than it saves (benchmarks: 2.3x faster logging policy, 2.1x
# faster A/B engine on 2 cores). Must be set before numpy is imported; torch training sets
# its own thread count (models.train.TrainConfig.threads).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from abtest.cli.main import interrupted, main  # noqa: E402

try:
    code = main()
except KeyboardInterrupt:  # a second Ctrl-C that landed while the first was being reported
    code = interrupted()
sys.exit(code)
