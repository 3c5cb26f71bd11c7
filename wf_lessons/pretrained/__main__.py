import sys

from wf_lessons.pretrained import main

sys.exit(main())
