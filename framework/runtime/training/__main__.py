"""`python -m framework.runtime.training RESOLVED`: the training job (see run.py)."""

import sys

from framework.runtime.training.run import main

sys.exit(main())
