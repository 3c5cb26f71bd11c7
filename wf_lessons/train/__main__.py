import sys

from wf_lessons.train.cli import main

sys.exit(main())
