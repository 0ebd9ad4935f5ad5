"""``python -m mtcnn_lab.cli``: the ``mtcnn-lab`` command."""

import sys

from mtcnn_lab.cli import main

sys.exit(main())
